"""Database side of triggers: schedule rows, atomic poll ticks, fire history."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, or_, select, update

from cloaca.runner.triggers import TriggerSpec
from cloaca.storage import Store
from cloaca.storage.models import pipeline_executions as pe
from cloaca.storage.models import trigger_executions as tx
from cloaca.storage.models import trigger_schedules as ts


def _dt(ts_: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts_, UTC) if ts_ is not None else None


def ensure_row(store: Store, spec: TriggerSpec) -> None:
    """Insert the trigger's row, or refresh its workflow and interval."""
    with store.write() as conn:
        res = conn.execute(
            update(ts)
            .where(ts.c.name == spec.name)
            .values(
                workflow_name=spec.workflow,
                poll_interval=spec.poll_interval,
                allow_concurrent=spec.allow_concurrent,
            )
        )
        if res.rowcount == 0:
            conn.execute(
                insert(ts),
                [
                    {
                        "name": spec.name,
                        "workflow_name": spec.workflow,
                        "poll_interval": spec.poll_interval,
                        "allow_concurrent": spec.allow_concurrent,
                        "enabled": True,
                        "created_at": time.time(),
                    }
                ],
            )


def claim_tick(store: Store, spec: TriggerSpec) -> bool:
    """Take this poll tick (False if disabled or another runner polled it just now)."""
    now = time.time()
    with store.write() as conn:
        res = conn.execute(
            update(ts)
            .where(
                ts.c.name == spec.name,
                ts.c.enabled.is_(True),
                or_(
                    ts.c.last_poll_at.is_(None), ts.c.last_poll_at <= now - spec.poll_interval * 0.9
                ),
            )
            .values(last_poll_at=now)
        )
        return bool(res.rowcount)


def previous_running(store: Store, name: str) -> bool:
    """True when the last execution this trigger started has not ended."""
    with store.read() as conn:
        status = conn.scalar(
            select(pe.c.status)
            .select_from(tx.join(pe, pe.c.id == tx.c.execution_id))
            .where(tx.c.trigger_name == name)
            .order_by(tx.c.fired_at.desc())
            .limit(1)
        )
    return status in ("Pending", "Running")


def record_fire(store: Store, name: str, execution_id: str, context: str) -> None:
    """Record that ``name`` fired and started ``execution_id``."""
    now = time.time()
    with store.write() as conn:
        conn.execute(
            insert(tx),
            [
                {
                    "trigger_name": name,
                    "execution_id": execution_id,
                    "fired_at": now,
                    "context": context,
                }
            ],
        )
        conn.execute(update(ts).where(ts.c.name == name).values(last_fired_at=now))


def _row(r: Any) -> dict[str, Any]:
    created = _dt(r.created_at)
    return {
        # upstream's keys
        "id": r.name,
        "trigger_name": r.name,
        "workflow_name": r.workflow_name,
        "poll_interval_ms": round(r.poll_interval * 1000),
        "allow_concurrent": bool(r.allow_concurrent),
        "enabled": bool(r.enabled),
        "last_poll_at": _dt(r.last_poll_at),
        "created_at": created,
        "updated_at": created,
        # ours
        "name": r.name,
        "poll_interval": r.poll_interval,
        "last_fired_at": _dt(r.last_fired_at),
    }


def list_rows(store: Store, enabled_only: bool, limit: int, offset: int) -> list[dict[str, Any]]:
    """Trigger rows by name."""
    q = select(ts).order_by(ts.c.name).limit(limit).offset(offset)
    if enabled_only:
        q = q.where(ts.c.enabled.is_(True))
    with store.read() as conn:
        return [_row(r) for r in conn.execute(q)]


def get_row(store: Store, name: str) -> dict[str, Any] | None:
    """One trigger row; None when unknown (as upstream)."""
    with store.read() as conn:
        r = conn.execute(select(ts).where(ts.c.name == name)).first()
    return _row(r) if r is not None else None


def set_enabled(store: Store, name: str, enabled: bool) -> None:
    """Enable or disable a trigger.

    Raises
    ------
    ValueError
        When no trigger has that name (naming it and the known ones).
    """
    with store.write() as conn:
        res = conn.execute(update(ts).where(ts.c.name == name).values(enabled=bool(enabled)))
        known = [] if res.rowcount else [n for (n,) in conn.execute(select(ts.c.name))]
    if res.rowcount == 0:
        raise ValueError(
            f"Trigger not found: {name!r}; known triggers: {sorted(known) or 'none'} "
            "(a trigger is known once a runner that has its workflow polled it)"
        )


def history(store: Store, name: str, limit: int, offset: int) -> list[dict[str, Any]]:
    """Executions started by trigger ``name``, newest first."""
    q = (
        select(tx, pe.c.status, pe.c.finished_at)
        .select_from(tx.outerjoin(pe, pe.c.id == tx.c.execution_id))
        .where(tx.c.trigger_name == name)
        .order_by(tx.c.fired_at.desc(), tx.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with store.read() as conn:
        return [
            {
                # upstream's keys
                "id": r.id,
                "schedule_id": r.trigger_name,
                "context_hash": hashlib.sha256((r.context or "{}").encode()).hexdigest(),
                "workflow_execution_id": r.execution_id,
                "started_at": _dt(r.fired_at),
                "completed_at": _dt(r.finished_at),
                "created_at": _dt(r.fired_at),
                # ours
                "trigger_name": r.trigger_name,
                "execution_id": r.execution_id,
                "fired_at": _dt(r.fired_at),
                "context": json.loads(r.context) if r.context else None,
                "status": r.status,
            }
            for r in conn.execute(q)
        ]
