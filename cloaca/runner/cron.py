"""Cron schedules: the runner API (register, list, update, enable, delete, history, stats)
and the tick that starts executions on time.

Timing. A schedule stores ``next_run_at`` (UTC epoch seconds, computed with croniter in the
schedule's timezone). The service thread wakes at the earliest ``next_run_at`` (and at least
every ``cron_poll_interval_seconds`` to see schedules written by other runners).

Claiming. Firing a schedule is one transaction: lock the schedule row (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), record each started slot in
``cron_executions`` (unique per schedule and slot) and advance ``next_run_at``; the
executions are started right after the commit. Two runners never start the same slot.

Missed runs. When several slots are due at once (the runners were down), the runner starts
the most recent ``cron_max_catchup_executions`` of them (at least one; default 100, as
Cloacina). Slots older than
``cron_max_recovery_age_seconds`` are dropped. A slot that was claimed but whose execution
never got written (the runner died in between) is *lost*: with ``cron_enable_recovery`` it
is started again after ``cron_lost_threshold_minutes``, at most
``cron_max_recovery_attempts`` times, checked every ``cron_recovery_interval_seconds``.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select, update

from cloaca.runner.cron_expr import cron_iter, next_run, validate_cron
from cloaca.storage.models import cron_executions as ce
from cloaca.storage.models import cron_schedules as cs
from cloaca.storage.models import pipeline_executions as pe

if TYPE_CHECKING:
    from cloaca.runner.config import DefaultRunnerConfig
    from cloaca.storage import Store

_MAX_SLOTS = 10_000  # never enumerate more due slots than this in one tick


def _dt(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def _schedule_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "workflow_name": row.workflow_name,
        "cron_expression": row.cron_expression,
        "timezone": row.timezone,
        "enabled": bool(row.enabled),
        "next_run_at": _dt(row.next_run_at),
        "last_run_at": _dt(row.last_run_at),
        "created_at": _dt(row.created_at),
        "updated_at": _dt(row.updated_at),
    }


class CronMixin:
    """The cron part of :class:`~cloaca.runner.DefaultRunner`."""

    store: Store
    config: DefaultRunnerConfig
    runner_id: str

    def _init_cron(self) -> None:
        self._cron_next_check = 0.0
        self._cron_next_recovery = 0.0
        self._cron_changes = 0  # bumped by every schedule change (any thread)

    def _cron_changed(self) -> None:
        self._cron_changes += 1
        self._cron_next_check = 0.0
        service = getattr(self, "_service", None)
        if service is not None:
            service.wake()

    # ------------------------------------------------------------------ API
    def register_cron_workflow(
        self, workflow_name: str, cron_expression: str, timezone: str = "UTC"
    ) -> str:
        """Run ``workflow_name`` on a cron schedule; return the schedule id.

        ``cron_expression`` has five fields (minute hour day month weekday) or, seconds
        first, six or seven (second minute hour day month weekday [year]); it is read in
        ``timezone`` (an IANA name). See :mod:`cloaca.runner.cron_expr`.
        """
        validate_cron(cron_expression, timezone)
        now = time.time()
        sid = str(uuid.uuid4())
        row = {
            "id": sid,
            "workflow_name": workflow_name,
            "cron_expression": cron_expression,
            "timezone": timezone,
            "enabled": True,
            "next_run_at": next_run(cron_expression, timezone, now),
            "created_at": now,
            "updated_at": now,
        }
        with self.store.write() as conn:
            conn.execute(insert(cs), [row])
        self._cron_changed()
        return sid

    def list_cron_schedules(
        self, enabled_only: bool = False, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Schedules (oldest first) as dicts; see :meth:`get_cron_schedule`."""
        q = select(cs).order_by(cs.c.created_at, cs.c.id).limit(limit).offset(offset)
        if enabled_only:
            q = q.where(cs.c.enabled.is_(True))
        with self.store.read() as conn:
            return [_schedule_dict(r) for r in conn.execute(q)]

    def get_cron_schedule(self, schedule_id: str) -> dict[str, Any]:
        """The schedule as a dict: ``id``, ``workflow_name``, ``cron_expression``,
        ``timezone``, ``enabled``, ``next_run_at``, ``last_run_at`` (UTC datetimes) ...

        Raises KeyError when there is no such schedule.
        """
        with self.store.read() as conn:
            row = conn.execute(select(cs).where(cs.c.id == schedule_id)).first()
        if row is None:
            raise KeyError(f"no cron schedule {schedule_id!r}")
        return _schedule_dict(row)

    def update_cron_schedule(
        self, schedule_id: str, cron_expression: str, timezone: str | None = None
    ) -> None:
        """Change a schedule's expression (and timezone); its next run is recomputed."""
        current = self.get_cron_schedule(schedule_id)
        tz = timezone or current["timezone"]
        validate_cron(cron_expression, tz)
        now = time.time()
        self._update_schedule(
            schedule_id,
            cron_expression=cron_expression,
            timezone=tz,
            next_run_at=next_run(cron_expression, tz, now),
            updated_at=now,
        )

    def set_cron_schedule_enabled(self, schedule_id: str, enabled: bool) -> None:
        """Enable or disable a schedule; re-enabling does not start missed runs."""
        current = self.get_cron_schedule(schedule_id)
        now = time.time()
        values: dict[str, Any] = {"enabled": bool(enabled), "updated_at": now}
        if enabled and not current["enabled"]:
            values["next_run_at"] = next_run(current["cron_expression"], current["timezone"], now)
        self._update_schedule(schedule_id, **values)

    def delete_cron_schedule(self, schedule_id: str) -> None:
        """Delete a schedule and its run history (executions stay)."""
        with self.store.write() as conn:
            conn.execute(delete(ce).where(ce.c.schedule_id == schedule_id))
            res = conn.execute(delete(cs).where(cs.c.id == schedule_id))
        if res.rowcount == 0:
            raise KeyError(f"no cron schedule {schedule_id!r}")
        self._cron_changed()

    def _update_schedule(self, schedule_id: str, **values: Any) -> None:
        with self.store.write() as conn:
            res = conn.execute(update(cs).where(cs.c.id == schedule_id).values(**values))
        if res.rowcount == 0:
            raise KeyError(f"no cron schedule {schedule_id!r}")
        self._cron_changed()

    def get_cron_execution_history(
        self, schedule_id: str, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Runs started by a schedule, newest slot first: ``scheduled_time``,
        ``execution_id``, ``claimed_at``, ``status`` (of the execution; ``Lost`` if it was
        never written)."""
        q = (
            select(ce, pe.c.status)
            .select_from(ce.outerjoin(pe, pe.c.id == ce.c.execution_id))
            .where(ce.c.schedule_id == schedule_id)
            .order_by(ce.c.scheduled_time.desc())
            .limit(limit)
            .offset(offset)
        )
        with self.store.read() as conn:
            return [
                {
                    "id": r.id,
                    "schedule_id": r.schedule_id,
                    "scheduled_time": _dt(r.scheduled_time),
                    "claimed_at": _dt(r.claimed_at),
                    "execution_id": r.execution_id,
                    "status": r.status or "Lost",
                    "recovery_attempts": r.recovery_attempts,
                }
                for r in conn.execute(q)
            ]

    def get_cron_execution_stats(self, since: datetime | None = None) -> dict[str, Any]:
        """Counts of cron-started executions since ``since`` (default: all time):
        ``total_executions``, ``successful_executions``, ``failed_executions``,
        ``running_executions``, ``lost_executions`` and ``success_rate`` (0..1)."""
        q = (
            select(pe.c.status, func.count())
            .select_from(ce.outerjoin(pe, pe.c.id == ce.c.execution_id))
            .group_by(pe.c.status)
        )
        if since is not None:
            q = q.where(ce.c.scheduled_time >= since.timestamp())
        with self.store.read() as conn:
            counts = {status or "Lost": int(n) for status, n in conn.execute(q)}
        total = sum(counts.values())
        ok, failed = counts.get("Completed", 0), counts.get("Failed", 0)
        return {
            "total_executions": total,
            "successful_executions": ok,
            "failed_executions": failed,
            "running_executions": counts.get("Running", 0) + counts.get("Pending", 0),
            "lost_executions": counts.get("Lost", 0),
            "success_rate": ok / (ok + failed) if ok + failed else 0.0,
        }

    # ------------------------------------------------------------------ the tick
    def _cron_tick(self) -> float | None:
        """Start due runs; return seconds until the next check."""
        mono = time.monotonic()
        cfg = self.config
        if cfg.cron_enable_recovery and mono >= self._cron_next_recovery:
            self._cron_next_recovery = mono + cfg.cron_recovery_interval_seconds
            self._recover_lost_cron_runs()
        if mono < self._cron_next_check:
            return self._cron_next_check - mono
        now = time.time()
        changes = self._cron_changes
        known = self.known_workflows()  # type: ignore[attr-defined]
        with self.store.read() as conn:
            due = list(
                conn.scalars(
                    select(cs.c.id).where(
                        cs.c.enabled.is_(True),
                        cs.c.next_run_at <= now,
                        cs.c.workflow_name.in_(known),
                    )
                )
            )
        for sid in due:
            self._fire_schedule(sid)
        with self.store.read() as conn:
            earliest = conn.scalar(
                select(func.min(cs.c.next_run_at)).where(
                    cs.c.enabled.is_(True), cs.c.workflow_name.in_(known)
                )
            )
        wait = cfg.cron_poll_interval_seconds
        if earliest is not None:
            wait = min(wait, max(earliest - time.time(), 0.0))
        if changes != self._cron_changes:
            wait = 0.0  # a schedule changed while this tick read them: look again now
        self._cron_next_check = time.monotonic() + wait
        return wait

    def _fire_schedule(self, schedule_id: str) -> None:
        cfg = self.config
        now = time.time()
        starts: list[tuple[str, str, float]] = []
        with self.store.write() as conn:
            q = select(cs).where(
                cs.c.id == schedule_id, cs.c.enabled.is_(True), cs.c.next_run_at <= now
            )
            if self.store.supports_skip_locked:
                q = q.with_for_update(skip_locked=True)
            row = conn.execute(q).first()
            if row is None:
                return  # another runner fired it
            start = datetime.fromtimestamp(row.next_run_at - 1, ZoneInfo(row.timezone))
            it = cron_iter(row.cron_expression, start)
            slots: list[float] = []
            while len(slots) < _MAX_SLOTS:
                slot = float(it.get_next(float))
                if slot > now:
                    break
                slots.append(slot)
            slots = [s for s in slots if now - s <= cfg.cron_max_recovery_age_seconds]
            for slot in slots[-max(1, int(cfg.cron_max_catchup_executions)) :]:
                eid = str(uuid.uuid4())
                conn.execute(
                    insert(ce),
                    [
                        {
                            "schedule_id": row.id,
                            "scheduled_time": slot,
                            "execution_id": eid,
                            "claimed_at": now,
                            "claimed_by": self.runner_id,
                            "recovery_attempts": 0,
                        }
                    ],
                )
                starts.append((row.workflow_name, eid, slot))
            conn.execute(
                update(cs)
                .where(cs.c.id == row.id)
                .values(
                    next_run_at=next_run(row.cron_expression, row.timezone, now),
                    last_run_at=now if starts else row.last_run_at,
                )
            )
        for workflow_name, eid, _slot in starts:
            self._create(  # type: ignore[attr-defined]
                workflow_name, None, None, None, None, "cron", run=True, execution_id=eid
            )

    def _recover_lost_cron_runs(self) -> None:
        cfg = self.config
        now = time.time()
        lost_before = now - cfg.cron_lost_threshold_minutes * 60
        q = (
            select(ce.c.id, ce.c.execution_id, cs.c.workflow_name)
            .select_from(
                ce.join(cs, cs.c.id == ce.c.schedule_id).outerjoin(pe, pe.c.id == ce.c.execution_id)
            )
            .where(
                pe.c.id.is_(None),
                ce.c.claimed_at <= lost_before,
                ce.c.scheduled_time >= now - cfg.cron_max_recovery_age_seconds,
                ce.c.recovery_attempts < cfg.cron_max_recovery_attempts,
                cs.c.workflow_name.in_(self.known_workflows()),  # type: ignore[attr-defined]
            )
        )
        with self.store.write() as conn:
            if self.store.supports_skip_locked:
                q = q.with_for_update(skip_locked=True, of=ce)
            lost = conn.execute(q).all()
            for run_id, _old, _wf in lost:
                conn.execute(
                    update(ce)
                    .where(ce.c.id == run_id)
                    .values(
                        execution_id=None,
                        claimed_at=now,
                        claimed_by=self.runner_id,
                        recovery_attempts=ce.c.recovery_attempts + 1,
                    )
                )
        for run_id, _old, workflow_name in lost:
            eid = str(uuid.uuid4())
            with self.store.write() as conn:
                conn.execute(update(ce).where(ce.c.id == run_id).values(execution_id=eid))
            self._create(  # type: ignore[attr-defined]
                workflow_name, None, None, None, None, "cron", run=True, execution_id=eid
            )
