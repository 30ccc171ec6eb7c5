# Upstream embed tutorial 07 (Python tabs), in one script.
import cloaca
import random

with cloaca.WorkflowBuilder("file_processing") as builder:
    builder.description("Process incoming files")

    @cloaca.task()
    def validate_file(context):
        filename = context.get("filename", "unknown")
        context.set("validated", True)
        print(f"Validated: {filename}")
        return context

    @cloaca.task(dependencies=["validate_file"])
    def process_file(context):
        filename = context.get("filename", "unknown")
        print(f"Processing: {filename}")
        context.set("processed", True)
        return context


@cloaca.trigger(
    name="file_watcher",
    on="file_processing",       # the workflow this trigger fires
    poll_interval="5s",
    allow_concurrent=False
)
def file_watcher():
    # Check for new files (simulated)
    if random.randint(1, 10) == 5:
        ctx = cloaca.Context({"filename": "data_123.csv"})
        return cloaca.TriggerResult.fire(ctx)
    return cloaca.TriggerResult.skip()


# The @cloaca.trigger decorator already registered file_watcher at import
# time, so constructing the runner starts the poll loop for it.
runner = cloaca.DefaultRunner("sqlite://triggers.db")

# List the registered trigger schedules
for schedule in runner.list_trigger_schedules():
    print(f"{schedule['trigger_name']} -> {schedule['workflow_name']}")

# Enable or disable a trigger at runtime
runner.set_trigger_enabled("file_watcher", False)
runner.set_trigger_enabled("file_watcher", True)

# Inspect execution history
for execution in runner.get_trigger_execution_history("file_watcher"):
    print(f"Started: {execution['started_at']}")

runner.shutdown()
