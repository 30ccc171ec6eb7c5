"""Task lifecycle events emitted by the scheduler (for live widgets, progress bars, storage)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

# event kinds, in lifecycle order
WORKFLOW_STARTED = "workflow_started"
TASK_STARTED = "task_started"
TASK_RETRYING = "task_retrying"
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
