"""Executions as the API shows them: summaries, details, per-task records and events.

Events come from the runner's event log (:mod:`cloaca.runner.event_log`), recorded as they
happened and numbered per execution, so they are the same after a restart, on every server
process and for executions resumed by another runner. Their ids are stable (UUIDs derived from
the execution and the sequence number), which lets the WebSocket stream send each event once.
Executions recorded before the event log existed get events derived from their rows instead.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloaca.runner.event_log import EventRecord
    from cloaca.runner.history import ExecutionRecord, TaskRecord
    from cloaca.workflow import Workflow

_NS = uuid.UUID("6f1c3e1a-8d1b-4c57-9f0e-2f6a1c9b7d30")
TERMINAL = ("Completed", "Failed", "Cancelled")


def iso(value: datetime | None) -> str | None:
    """RFC 3339 text of a timestamp (UTC), or None."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def local_name(task_key: str) -> str:
    """A task's id within its workflow (``package::id`` → ``id``)."""
    return task_key.rpartition("::")[2]


def execution_summary(rec: ExecutionRecord) -> dict[str, Any]:
    """One item of ``GET /executions``."""
    return {
        "id": rec.id,
        "workflow_name": rec.workflow_name,
        "status": rec.status,
        "started_at": iso(rec.started_at or rec.created_at),
        "completed_at": iso(rec.finished_at) if rec.status in TERMINAL else None,
        "trigger_origin": rec.origin,
    }


def execution_detail(tenant: str, rec: ExecutionRecord) -> dict[str, Any]:
    """``GET /executions/{id}``: Cloacina's fields plus ``context``, ``error`` and timings."""
    done = rec.status in TERMINAL
    return {
        "tenant_id": tenant,
        "execution_id": rec.id,
        "status": rec.status,
        "workflow_name": rec.workflow_name,
        "workflow_version": rec.workflow_version,
        "created_at": iso(rec.created_at),
        "started_at": iso(rec.started_at),
        "completed_at": iso(rec.finished_at) if done else None,
        "context": rec.final_context if done else None,
        "input_context": rec.context,
        "error": rec.error_message,
    }


def task_records(rec: ExecutionRecord, workflow: Workflow | None) -> list[dict[str, Any]]:
    """``GET /executions/{id}/tasks`` items, in topological order."""
    created = iso(rec.created_at) or ""
    out = []
    for t in rec.tasks:
        spec = workflow.tasks.get(t.task_id) if workflow is not None else None
        max_attempts = spec.retry.max_attempts if spec is not None else max(t.attempts, 1)
        out.append(
            {
                "id": _uid(rec.id, "task", t.task_id),
                "task_name": local_name(t.task_id),
                "status": t.status,
                "started_at": iso(t.started_at),
                "completed_at": iso(t.finished_at),
                "attempt": t.attempts,
                "max_attempts": max(max_attempts, t.attempts),
                "created_at": created,
                "updated_at": iso(t.finished_at or t.started_at) or created,
                "last_error": t.error_message,
                "error_details": t.error_type,
                "sub_status": t.skip_reason,
                "traceback": t.traceback,
            }
        )
    return out


def events(rec: ExecutionRecord, log: list[EventRecord]) -> list[dict[str, Any]]:
    """``GET /executions/{id}/events``: the execution's events, oldest first."""
    if not log:
        return derived_events(rec)
    return [event_view(e) for e in log]


def event_view(e: EventRecord) -> dict[str, Any]:
    """One stored event as the API shows it."""
    return {
        "id": _uid(e.execution_id, "event", str(e.sequence_num)),
        "execution_id": e.execution_id,
        "event_type": e.event_type,
        "event_data": e.data,
        "task_name": local_name(e.task_id) if e.task_id else None,
        "created_at": iso(datetime.fromtimestamp(e.created_at, UTC)),
        "sequence_num": e.sequence_num,
    }


def derived_events(rec: ExecutionRecord) -> list[dict[str, Any]]:
    """Events rebuilt from an execution's rows (executions older than the event log)."""
    raw: list[tuple[str, str | None, datetime | None, dict[str, Any] | None]] = []
    raw += [("task_created", t.task_id, rec.created_at, None) for t in rec.tasks]
    if rec.started_at is not None:
        raw.append(("workflow_started", None, rec.started_at, None))
    task_events: list[tuple[float, int, int, Any]] = []
    for pos, t in enumerate(rec.tasks):
        for rank, item in _task_events(t):
            when = item[2]
            task_events.append((when.timestamp() if when else 0.0, rank, pos, item))
    raw += [item for *_, item in sorted(task_events, key=lambda e: e[:3])]
    if rec.status == "Completed":
        raw.append(("workflow_completed", None, rec.finished_at, {"status": rec.status}))
    elif rec.status in ("Failed", "Cancelled"):
        raw.append(("workflow_failed", None, rec.finished_at, {"error": rec.error_message}))
    return [
        {
            "id": _uid(rec.id, kind, task or ""),
            "execution_id": rec.id,
            "event_type": kind,
            "event_data": json.dumps(data) if data is not None else None,
            "task_name": local_name(task) if task else None,
            "created_at": iso(when or rec.created_at),
            "sequence_num": seq,
        }
        for seq, (kind, task, when, data) in enumerate(raw, start=1)
    ]


def _task_events(t: TaskRecord) -> list[tuple[int, Any]]:
    out: list[tuple[int, Any]] = []
    if t.started_at is not None:
        out.append((0, ("task_started", t.task_id, t.started_at, {"attempt": max(t.attempts, 1)})))
    if t.status == "Completed":
        out.append((1, ("task_completed", t.task_id, t.finished_at, {"attempt": t.attempts})))
    elif t.status == "Failed":
        data = {"attempt": t.attempts, "error": t.error_message, "error_type": t.error_type}
        out.append((1, ("task_failed", t.task_id, t.finished_at, data)))
    elif t.status == "Skipped":
        out.append((1, ("task_skipped", t.task_id, t.finished_at, {"reason": t.skip_reason})))
    return out


def _uid(execution_id: str, kind: str, task: str) -> str:
    return str(uuid.uuid5(_NS, f"{execution_id}|{kind}|{task}"))
