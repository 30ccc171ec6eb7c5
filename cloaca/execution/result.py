"""Result objects: what a run returns (status, final context, per-task records)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cloaca.context import Context
from cloaca.errors import TaskExecutionError

PENDING, RUNNING, COMPLETED, FAILED, SKIPPED = (
    "Pending",
    "Running",
    "Completed",
    "Failed",
    "Skipped",
)


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


@dataclass
class TaskResult:
    """The record of one task in one execution.

    ``status`` is one of Pending, Running, Completed, Failed, Skipped; ``skip_reason`` says why
    a task was skipped (``"upstream failed: X"`` or ``"trigger rule false"``); ``error`` is the
    :class:`TaskExecutionError` of the last failed attempt; ``delta`` the keys the task set
    (``removed`` the keys it deleted).
    """

    task_id: str
    status: str = PENDING
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    error: TaskExecutionError | None = None
    skip_reason: str | None = None
    delta: dict[str, Any] = field(default_factory=dict)
    removed: tuple[str, ...] = ()

    @property
    def duration(self) -> float | None:
        """Seconds from the first attempt's start to the end, if both are known."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def error_message(self) -> str | None:
        """The failure as text, or None."""
        return str(self.error) if self.error else None

    @property
    def traceback(self) -> str | None:
        """The formatted traceback of the failure, or None."""
        return self.error.traceback if self.error else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary (no context values)."""
        return {
            "task_id": self.task_id,
            "status": self.status,
            "attempts": self.attempts,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "duration": self.duration,
            "error": self.error_message,
            "error_type": self.error.error_type if self.error else None,
            "skip_reason": self.skip_reason,
        }


@dataclass
class ExecutionResult:
    """What a workflow run returns.

    ``status`` is ``"Completed"`` or ``"Failed"``; ``final_context`` merges the writes of every
    completed task in topological order; ``tasks`` holds one :class:`TaskResult` per selected
    task, in topological order. Upstream's ``WorkflowResult`` fields are all here
    (``status``, ``start_time``, ``end_time``, ``final_context``, ``error_message``);
    ``cloaca.WorkflowResult`` is this class.
    """

    workflow_name: str
    status: str
    final_context: Context
    tasks: dict[str, TaskResult]
    started_at: float
    finished_at: float
    execution_id: str | None = None
    workflow_version: str | None = None

    @property
    def error_message(self) -> str | None:
        """The first failed task's error (topological order), or None on success."""
        for rec in self.tasks.values():
            if rec.status == FAILED:
                return rec.error_message
        return None

    @property
    def error(self) -> TaskExecutionError | None:
        """The first failed task's :class:`TaskExecutionError`, or None."""
        for rec in self.tasks.values():
            if rec.status == FAILED:
                return rec.error
        return None

    @property
    def start_time(self) -> str:
        """When the run started, as an RFC 3339 string (upstream's ``WorkflowResult`` field)."""
        return datetime.fromtimestamp(self.started_at, UTC).isoformat()

    @property
    def end_time(self) -> str | None:
        """When the run ended, as an RFC 3339 string (upstream's ``WorkflowResult`` field)."""
        return _iso(self.finished_at)

    @property
    def duration(self) -> float:
        """Wall-clock seconds of the run."""
        return self.finished_at - self.started_at

    @property
    def succeeded(self) -> bool:
        """True when status is Completed."""
        return self.status == COMPLETED

    def raise_for_status(self) -> None:
        """Raise the first task error when the run failed."""
        err = self.error
        if self.status != COMPLETED and err is not None:
            raise err

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly summary of the run and its tasks."""
        return {
            "workflow": self.workflow_name,
            "execution_id": self.execution_id,
            "status": self.status,
            "error": self.error_message,
            "duration": self.duration,
            "tasks": [t.to_dict() for t in self.tasks.values()],
        }

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for rec in self.tasks.values():
            counts[rec.status] = counts.get(rec.status, 0) + 1
        return (
            f"ExecutionResult({self.workflow_name!r}, status={self.status!r}, "
            f"tasks={counts}, duration={self.duration:.3f}s)"
        )


#: upstream's name of the result :meth:`DefaultRunner.execute` returns
WorkflowResult = ExecutionResult
