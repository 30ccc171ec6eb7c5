"""The execution event log: lifecycle events recorded as they happen, numbered per execution.

The runner turns each scheduler event into a row of ``execution_events`` (see
:mod:`cloaca.runner.driver`), written by the write-behind :class:`~cloaca.runner.writer.Writer`
in the same transaction as the row updates it goes with. ``sequence_num`` is assigned at write
time after the execution's stored events, inside the transaction that holds the execution's
ownership fence, so numbers are gap-free and increasing across retries, restarts and
take-overs by another runner. A resumed execution's second ``workflow_started`` is recorded as
``workflow_resumed``.

Event types: ``task_created``, ``workflow_started``, ``workflow_resumed``, ``task_started``,
``task_failed`` (one per failed attempt; ``data.will_retry`` tells whether another follows),
``task_retrying``, ``task_recovered`` (an attempt lost with its runner or worker, re-run under
the task's recovery budget), ``task_completed``, ``task_skipped``, ``workflow_completed``,
``workflow_failed``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select

from cloaca.storage.models import execution_events as ee

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from cloaca.storage import Store

TASK_CREATED = "task_created"
WORKFLOW_STARTED = "workflow_started"
WORKFLOW_RESUMED = "workflow_resumed"
WORKFLOW_ENDS = frozenset({"workflow_completed", "workflow_failed"})


@dataclass(frozen=True)
class EventRecord:
    """One stored event; ``data`` is a JSON object as text (or None), ``created_at`` epoch s."""

    execution_id: str
    sequence_num: int
    event_type: str
    task_id: str | None
    data: str | None
    created_at: float


def event(
    kind: str, task_id: str | None = None, data: dict[str, Any] | None = None,
    at: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """An event as queued on the writer (``Writer.record_event``).

    Parameters
    ----------
    kind:
        The event type (see the module docstring).
    task_id:
        The task's node key, or None for a workflow event.
    data:
        Details (attempt, error, ...), stored as JSON.
    at:
        When it happened (epoch seconds; default now).
    """
    return {
        "event_type": kind,
        "task_id": task_id,
        "data": json.dumps(data) if data is not None else None,
        "created_at": at if at is not None else time.time(),
    }


def insert_events(conn: Connection, rows: list[tuple[str, dict[str, Any]]]) -> None:
    """Number and insert ``(execution_id, event)`` pairs, in order, inside the caller's
    transaction."""
    eids = {eid for eid, _ in rows}
    last: dict[str, int] = {
        eid: int(seq)
        for eid, seq in conn.execute(
            select(ee.c.execution_id, func.max(ee.c.sequence_num))
            .where(ee.c.execution_id.in_(eids))
            .group_by(ee.c.execution_id)
        )
    }
    started = set(
        conn.scalars(
            select(ee.c.execution_id).where(
                ee.c.execution_id.in_(eids), ee.c.event_type == WORKFLOW_STARTED
            )
        )
    )
    out = []
    for eid, ev in rows:
        if ev["event_type"] == WORKFLOW_STARTED:
            if eid in started:
                ev = {**ev, "event_type": WORKFLOW_RESUMED}
            started.add(eid)
        seq = last.get(eid, 0) + 1
        last[eid] = seq
        out.append({**ev, "execution_id": eid, "sequence_num": seq})
    conn.execute(insert(ee), out)


def list_events(store: Store, execution_id: str, after: int = 0) -> list[EventRecord]:
    """The events of ``execution_id`` with ``sequence_num > after``, oldest first."""
    q = (
        select(ee)
        .where(ee.c.execution_id == execution_id, ee.c.sequence_num > after)
        .order_by(ee.c.sequence_num)
    )
    with store.read() as conn:
        return [
            EventRecord(
                r.execution_id, r.sequence_num, r.event_type, r.task_id, r.data, r.created_at
            )
            for r in conn.execute(q)
        ]
