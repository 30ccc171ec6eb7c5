"""Task callbacks with upstream's signatures (reference/python-api/task.md, "Task Callbacks"):
``on_success(task_id, context)``, ``on_failure(task_id, error: str, context)``, errors in a
callback isolated."""

from __future__ import annotations

import pickle
from typing import Any

import cloaca
from cloaca.errors import ErrorText, TaskExecutionError


def test_upstream_monitoring_example() -> None:
    log: list[str] = []

    def log_success(task_id: str, context: Any) -> None:
        log.append(f"Task '{task_id}' completed successfully")

    def alert_failure(task_id: str, error: str, context: Any) -> None:
        log.append(f"ALERT: Task '{task_id}' failed: {error}")

    with cloaca.WorkflowBuilder("callbacks-doc") as builder:

        @cloaca.task(id="monitored_task", on_success=log_success, on_failure=alert_failure)
        def monitored_task(context: Any) -> Any:
            context.set("result", 42)
            return context

        @cloaca.task(id="doomed", on_failure=alert_failure, retry_attempts=1)
        def doomed(context: Any) -> Any:
            raise RuntimeError("disk full")

    result = builder.build().run()
    assert result.tasks["monitored_task"].status == "Completed"
    assert sorted(log) == [
        "ALERT: Task 'doomed' failed: RuntimeError: disk full",
        "Task 'monitored_task' completed successfully",
    ]


def test_buggy_callback_does_not_fail_the_task() -> None:
    def buggy_callback(task_id: str, context: Any) -> None:
        raise Exception("Callback error!")

    @cloaca.task(id="resilient_task", on_success=buggy_callback)
    def resilient_task(context: Any) -> Any:
        return context

    result = cloaca.WorkflowBuilder("callbacks-buggy").add_task(resilient_task).build().run()
    assert result.status == "Completed"


def test_error_text_is_a_str_that_keeps_the_structured_error() -> None:
    err = TaskExecutionError("bad input", task_id="t", error_type="ValueError", traceback="tb")
    text = ErrorText(err)
    assert text == "ValueError: bad input" and isinstance(text, str)
    assert (text.task_id, text.error_type, text.message, text.traceback) == (
        "t", "ValueError", "bad input", "tb",
    )  # fmt: skip
    again = pickle.loads(pickle.dumps(text))
    assert again == text and again.error_type == "ValueError" and again.error.task_id == "t"
