# Upstream embed tutorial 05 (Python tab).
import cloaca
import time

with cloaca.WorkflowBuilder("daily_report") as builder:
    builder.description("Daily business analytics report")

    @cloaca.task()
    def daily_report(context):
        from datetime import datetime
        report_data = {"generated_at": datetime.now().isoformat(), "total_orders": 150}
        print(f"Daily report generated: {report_data}", flush=True)
        context.set("report_data", report_data)
        return context

# Turn on cron scheduling in the runner config.
config = cloaca.DefaultRunnerConfig(
    enable_cron_scheduling=True,
    cron_poll_interval_seconds=5,  # check for due schedules every 5s
)
runner = cloaca.DefaultRunner.with_config(":memory:", config)

# Register the workflow against a cron expression + timezone.
# "*/30 * * * * *" is a 6-field cron (leading seconds): every 30 seconds.
# Returns the new schedule's id.
schedule_id = runner.register_cron_workflow("daily_report", "*/30 * * * * *", "UTC")
print(f"Cron schedule registered (ID: {schedule_id})")

# Let it run, then shut down.
time.sleep(65)
runner.shutdown()

# The recovery configuration from the same page.
config = cloaca.DefaultRunnerConfig(
    enable_cron_scheduling=True,
    cron_enable_recovery=True,            # re-run lost executions
    cron_recovery_interval_seconds=30,
    cron_max_catchup_executions=50,       # cap catchup to avoid a storm
)
