"""Reading past executions back: listing, per-task records with context snapshots, and
rebuilding an :class:`~cloaca.execution.result.ExecutionResult` from the database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from cloaca.context import Context
from cloaca.execution.result import ExecutionResult, TaskResult
from cloaca.runner.outputs import rebuild_outputs
from cloaca.runner.recovery import task_result_from_row
from cloaca.storage import Store
from cloaca.storage.models import pipeline_executions as pe
from cloaca.storage.models import task_executions as te

TERMINAL = ("Completed", "Failed")


def _dt(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def _load(text: str | None) -> dict[str, Any] | None:
    return json.loads(text) if text else None


@dataclass
class TaskRecord:
    """One task of a stored execution; ``output`` is the context the task produced."""

    task_id: str
    status: str
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    error_type: str | None
    error_message: str | None
    traceback: str | None
    skip_reason: str | None
    output: dict[str, Any] | None

    @property
    def output_context(self) -> Context | None:
        """The task's output as a :class:`Context` (None unless it completed)."""
        return Context._trusted(dict(self.output)) if self.output is not None else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (timestamps as ISO strings)."""
        d = dict(self.__dict__)
        for key in ("started_at", "finished_at"):
            d[key] = d[key].isoformat() if d[key] else None
        return d


@dataclass
class ExecutionRecord:
    """A stored execution; ``tasks`` is filled by ``get_execution`` (empty in listings)."""

    id: str
    workflow_name: str
    workflow_version: str | None
    status: str
    origin: str
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    error_message: str | None
    recovery_count: int
    context: dict[str, Any] | None = None
    final_context: dict[str, Any] | None = None
    tasks: list[TaskRecord] = field(default_factory=list)

    @property
    def execution_id(self) -> str:
        """Alias of ``id``."""
        return self.id

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, when both are known."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (timestamps as ISO strings)."""
        d = {k: v for k, v in self.__dict__.items() if k != "tasks"}
        for key in ("created_at", "started_at", "finished_at"):
            d[key] = d[key].isoformat() if d[key] else None
        d["tasks"] = [t.to_dict() for t in self.tasks]
        return d


def _record(row: Any, full: bool) -> ExecutionRecord:
    return ExecutionRecord(
        id=row.id,
        workflow_name=row.workflow_name,
        workflow_version=row.workflow_version,
        status=row.status,
        origin=row.origin,
        created_at=_dt(row.created_at),
        started_at=_dt(row.started_at),
        finished_at=_dt(row.finished_at),
        error_message=row.error_message,
        recovery_count=row.recovery_count,
        context=_load(row.context) if full else None,
        final_context=_load(row.final_context) if full else None,
    )


def list_executions(
    store: Store,
    workflow_name: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[ExecutionRecord]:
    """Executions, newest first, optionally filtered by workflow and status."""
    cols = [c for c in pe.c if c.name not in ("context", "final_context", "selection")]
    q = select(*cols).order_by(pe.c.created_at.desc(), pe.c.id).limit(limit).offset(offset)
    if workflow_name is not None:
        q = q.where(pe.c.workflow_name == workflow_name)
    if status is not None:
        q = q.where(pe.c.status == status)
    with store.read() as conn:
        return [_record(row, full=False) for row in conn.execute(q)]


def count_executions(store: Store, workflow_name: str | None = None) -> int:
    """How many executions are stored (for one workflow, or all)."""
    q = select(func.count()).select_from(pe)
    if workflow_name is not None:
        q = q.where(pe.c.workflow_name == workflow_name)
    with store.read() as conn:
        return int(conn.execute(q).scalar_one())


def _fetch(store: Store, execution_id: str) -> tuple[Any, list[Any]] | None:
    """The execution row and its task rows (in workflow order), or None when unknown."""
    with store.read() as conn:
        row = conn.execute(select(pe).where(pe.c.id == execution_id)).first()
        if row is None:
            return None
        task_rows = conn.execute(
            select(te).where(te.c.execution_id == execution_id).order_by(te.c.position)
        ).all()
    return row, list(task_rows)


def get_execution(store: Store, execution_id: str) -> ExecutionRecord | None:
    """One execution with its contexts and task records, or None when unknown."""
    found = _fetch(store, execution_id)
    if found is None:
        return None
    row, task_rows = found
    record = _record(row, full=True)
    outputs = rebuild_outputs(record.context or {}, [t._mapping for t in task_rows])
    record.tasks = [
        TaskRecord(
            task_id=t.task_id,
            status=t.status,
            attempts=t.attempts,
            started_at=_dt(t.started_at),
            finished_at=_dt(t.finished_at),
            error_type=t.error_type,
            error_message=t.error_message,
            traceback=t.traceback,
            skip_reason=t.skip_reason,
            output=outputs.get(t.task_id),
        )
        for t in task_rows
    ]
    return record


def load_result(store: Store, execution_id: str) -> ExecutionResult | None:
    """Rebuild the :class:`ExecutionResult` of a finished execution (None if unknown)."""
    found = _fetch(store, execution_id)
    if found is None:
        return None
    row, task_rows = found
    tasks: dict[str, TaskResult] = {}
    for t in task_rows:
        tasks[t.task_id] = task_result_from_row(dict(t._mapping))
    return ExecutionResult(
        workflow_name=row.workflow_name,
        status=row.status,
        final_context=Context._trusted(_load(row.final_context) or {}),
        tasks=tasks,
        started_at=row.started_at or row.created_at,
        finished_at=row.finished_at or row.created_at,
        execution_id=row.id,
        workflow_version=row.workflow_version,
    )
