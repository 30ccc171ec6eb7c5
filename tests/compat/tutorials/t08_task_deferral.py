# Upstream embed tutorial 08 is shown in Rust only; this is its Python form, written from the
# Python TaskHandle reference (a second parameter named `handle`, handle.defer_until(...)).
import cloaca

with cloaca.WorkflowBuilder("deferred_pipeline") as builder:
    builder.description("Pipeline demonstrating deferred task execution")

    @cloaca.task()
    def wait_for_data(context, handle):
        print("wait_for_data: Starting — will defer until data is ready")
        polls = {"count": 0}

        def data_ready():
            polls["count"] += 1
            print(f"wait_for_data: polling external source (attempt {polls['count']})")
            return polls["count"] >= 3  # data becomes ready after 3 polls

        handle.defer_until(data_ready, poll_interval_ms=500)
        print(f"wait_for_data: Data is ready after {polls['count']} polls — slot reclaimed")
        context.set("external_data", {"status": "ready", "records": 42})
        return context

    @cloaca.task(dependencies=["wait_for_data"])
    def process_data(context):
        data = context.get("external_data")
        records = data.get("records", 0)
        context.set("processed_count", records)
        context.set("processing_complete", True)
        print(f"process_data: Processed {records} records")
        return context


runner = cloaca.DefaultRunner.with_config(
    "sqlite://deferred-tasks.db", cloaca.DefaultRunnerConfig.default()
)
result = runner.execute("deferred_pipeline", cloaca.Context())
print(f"Status: {result.status}")
if result.final_context.get("processed_count") is not None:
    print(f"Processed {result.final_context.get('processed_count')} records")
runner.shutdown()
