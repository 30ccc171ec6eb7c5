# Upstream embed tutorial 04 (Python tab): the task inside a workflow, run as in tutorial 01.
import cloaca

# Attempt counter shared across retries of `flaky`.
_attempts = {"flaky": 0}

with cloaca.WorkflowBuilder("retries") as builder:
    builder.description("A task that fails twice, then succeeds")

    @cloaca.task(
        retry_attempts=3,
        retry_backoff="exponential",
        retry_delay_ms=500,
    )
    def flaky(context):
        _attempts["flaky"] += 1
        attempt = _attempts["flaky"]
        if attempt < 3:
            # Fail the first two attempts; the runner retries per the policy.
            raise RuntimeError(f"transient failure (attempt {attempt})")
        print(f"flaky succeeded on attempt {attempt}")
        return context


runner = cloaca.DefaultRunner("sqlite:///app.db")
result = runner.execute("retries", cloaca.Context())
print("status:", result.status)
runner.shutdown()
