# Upstream embed tutorial 06 (Python tabs). The two URLs are adjusted to the reader's server,
# as the page asks ("adjust the URL to yours"): here they come from the environment.
import os

import cloaca

database_url = os.environ.get(
    "TUTORIAL_DATABASE_URL", "postgresql://cloacina:cloacina@localhost:5432/cloacina"
)

with cloaca.WorkflowBuilder("customer_processing") as builder:
    builder.description("Process customer data in isolated tenant environment")

    @cloaca.task()
    def process_customer_data(context):
        tenant_id = context.get("tenant_id")
        context.set("processed_records", 1250)
        context.set("processing_completed", True)
        return context

# One schema per tenant — created on first use.
tenant_runners = {
    tid: cloaca.DefaultRunner.with_schema(database_url, tid)
    for tid in ["acme_corp", "globex_inc", "initech"]
}

for tenant_id, runner in tenant_runners.items():
    context = cloaca.Context({"tenant_id": tenant_id})
    result = runner.execute("customer_processing", context)
    if result.status == "Completed":
        records = result.final_context.get("processed_records")
        print(f"Tenant {tenant_id} completed: {records} records")

for runner in tenant_runners.values():
    runner.shutdown()

# Provisioning a tenant with dedicated credentials
admin = cloaca.DatabaseAdmin(
    os.environ.get(
        "TUTORIAL_ADMIN_URL", "postgresql://admin:admin_password@localhost:5432/myapp"
    )
)

tenant_config = cloaca.TenantConfig(
    schema_name="tenant_acme_corp",
    username="acme_corp_user",
    password=""  # Auto-generate secure password
)

credentials = admin.create_tenant(tenant_config)

# Runner scoped to the tenant's dedicated credentials.
tenant_runner = cloaca.DefaultRunner(credentials.connection_string)
result = tenant_runner.execute("customer_processing", cloaca.Context({"tenant_id": "acme"}))
print(f"Dedicated tenant: {result.status}")
tenant_runner.shutdown()
