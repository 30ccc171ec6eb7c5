"""Task lifecycle events emitted by the scheduler (for live widgets, progress bars, storage)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

# event kinds, in lifecycle order
WORKFLOW_STARTED = "workflow_started"
TASK_STARTED = "task_started"
TASK_RETRYING = "task_retrying"
TASK_RECOVERED = "task_recovered"
TASK_COMPLETED = "task_completed"
TASK_FAILED = "task_failed"
TASK_SKIPPED = "task_skipped"
WORKFLOW_COMPLETED = "workflow_completed"
WORKFLOW_FAILED = "workflow_failed"


@dataclass(frozen=True)
class TaskEvent:
    """One lifecycle event.

    ``task_id`` is None for workflow events; ``attempt`` is 1-based; ``duration`` (seconds) is
    set on completion/failure; ``error`` is a one-line message on failure/retry/skip;
    ``context`` is the task's output (``task_completed``) or the final context
    (``workflow_*``) as a plain dict; ``error_type`` is the exception's type name on
    ``task_failed`` / ``task_retrying`` (e.g. ``"KeyError"``); ``delta`` and ``removed`` are
    what a completed task changed against its input (keys written, keys deleted), which is
    what the durable runner stores.

    ``task_started`` is sent when the task's body actually starts (a task waiting for a free
    thread or package worker is not started yet). ``task_recovered`` means the attempt
    ``attempt`` was lost with the process running it (a package worker killed from outside)
    and the task runs again under its recovery budget, not its retry policy.
    """

    kind: str
    task_id: str | None = None
    attempt: int = 0
    at: float = 0.0
    duration: float | None = None
    error: str | None = None
    context: dict[str, Any] | None = None
    error_type: str | None = None
    delta: dict[str, Any] | None = None
    removed: tuple[str, ...] = ()


EventCallback = Callable[[TaskEvent], "None | Awaitable[None]"]


BODY_STARTED: ContextVar[Callable[[], None] | None] = ContextVar(
    "cloaca_body_started", default=None
)
"""Set by the scheduler around an ``async`` task that reports its own start (see
:func:`report_started`)."""


def report_started() -> None:
    """Tell the scheduler that the running task's body starts now.

    Called by ``async`` task functions that first wait for a resource before the task's own
    code runs (a packaged task waits for a free worker process); ``task_started`` is emitted
    then, not when the wait began. Outside a scheduler run it does nothing.
    """
    hook = BODY_STARTED.get()
    if hook is not None:
        hook()
