"""The runner's side of triggers: polling registered triggers, binding cron triggers to cron
schedules, and the trigger API of :class:`~cloaca.runner.DefaultRunner` (schedules with
upstream's keys, enable/disable, fire history).

The decorator, :class:`~cloaca.runner.triggers.TriggerResult` and the process-wide registry live
in :mod:`cloaca.runner.triggers`.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from cloaca.runner.triggers import TriggerSpec, call_trigger, registered_triggers

if TYPE_CHECKING:
    from cloaca.runner.config import DefaultRunnerConfig
    from cloaca.storage import Store

log = logging.getLogger("cloaca.runner")


class TriggerMixin:
    """The trigger part of :class:`~cloaca.runner.DefaultRunner`."""

    store: Store
    config: DefaultRunnerConfig
    runner_id: str

    def _init_triggers(self) -> None:
        self._trigger_due: dict[str, float] = {}
        self._trigger_rows: set[tuple[str, str | None, float]] = set()
        self._trigger_last: dict[str, str] = {}
        self._trigger_crons: set[tuple[str, str, str, str]] = set()

    def _trigger_tick(self) -> float | None:
        """Poll due triggers; return seconds until the next one is due."""
        from cloaca.runner import trigger_store

        known = set(self.known_workflows())  # type: ignore[attr-defined]
        bound = [s for s in registered_triggers() if s.workflow in known]
        for spec in bound:
            if spec.cron is not None:
                self._bind_cron_trigger(spec)
        specs = [s for s in bound if s.cron is None]
        if not specs:
            return None
        mono = time.monotonic()
        for spec in specs:
            key = (spec.name, spec.workflow, spec.poll_interval)
            if key not in self._trigger_rows:
                trigger_store.ensure_row(self.store, spec)
                self._trigger_rows.add(key)
            if mono < self._trigger_due.get(spec.name, 0.0):
                continue
            self._trigger_due[spec.name] = mono + spec.poll_interval
            if trigger_store.claim_tick(self.store, spec):
                self._poll_trigger(spec)
        return max(0.0, min(self._trigger_due[s.name] for s in specs) - time.monotonic())

    def _bind_cron_trigger(self, spec: TriggerSpec) -> None:
        """Register the cron schedule a ``@trigger(cron=...)`` declares (once per database)."""
        key = (spec.name, spec.workflow or "", spec.cron or "", spec.timezone or "UTC")
        if key in self._trigger_crons:
            return
        tz = spec.timezone or "UTC"
        existing = self.list_cron_schedules(limit=10_000)  # type: ignore[attr-defined]
        if not any(
            (s["workflow_name"], s["cron_expression"], s["timezone"])
            == (spec.workflow, spec.cron, tz)
            for s in existing
        ):
            self.register_cron_workflow(spec.workflow, spec.cron, tz)  # type: ignore[attr-defined]
        self._trigger_crons.add(key)

    def _poll_trigger(self, spec: TriggerSpec) -> None:
        from cloaca.runner import trigger_store

        try:
            result = call_trigger(spec)
        except Exception:
            log.exception("trigger %r raised; treated as skip", spec.name)
            return
        if result.is_skip_result():
            return
        if not spec.allow_concurrent and trigger_store.previous_running(self.store, spec.name):
            log.info("trigger %r fired while its last execution runs; skipped", spec.name)
            return
        context = result.context.to_dict() if result.context is not None else {}
        eid = self.submit(spec.workflow, context, origin="trigger")  # type: ignore[attr-defined]
        trigger_store.record_fire(self.store, spec.name, eid, json.dumps(context))

    # ------------------------------------------------------------------ API
    def list_trigger_schedules(
        self, enabled_only: bool = False, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Triggers known to this database (registered by any runner that polled them)."""
        from cloaca.runner import trigger_store

        self._trigger_tick_rows()
        return trigger_store.list_rows(self.store, enabled_only, limit, offset)

    def get_trigger_schedule(self, name: str) -> dict[str, Any] | None:
        """One trigger as a dict (upstream's keys ``id``, ``trigger_name``, ``workflow_name``,
        ``poll_interval_ms``, ``allow_concurrent``, ``enabled``, ``last_poll_at``,
        ``created_at``, ``updated_at``, plus ``name``, ``poll_interval`` and
        ``last_fired_at``); None when no trigger has that name, as upstream."""
        from cloaca.runner import trigger_store

        self._trigger_tick_rows()
        return trigger_store.get_row(self.store, name)

    def set_trigger_enabled(self, name: str, enabled: bool) -> None:
        """Enable or disable polling of a trigger (for every runner on this database).

        Raises
        ------
        ValueError
            When no trigger has that name (naming it and the known ones).
        """
        from cloaca.runner import trigger_store

        self._trigger_tick_rows()
        trigger_store.set_enabled(self.store, name, enabled)

    def get_trigger_execution_history(
        self, name: str, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Executions a trigger started, newest first: upstream's keys ``id``,
        ``schedule_id``, ``context_hash``, ``workflow_execution_id``, ``started_at``,
        ``completed_at``, ``created_at``, plus ``execution_id``, ``fired_at``, ``context`` and
        ``status``; an unknown name has no history (an empty list)."""
        from cloaca.runner import trigger_store

        return trigger_store.history(self.store, name, limit, offset)

    def _trigger_tick_rows(self) -> None:
        from cloaca.runner import trigger_store

        for spec in registered_triggers():
            if spec.workflow is None or spec.cron is not None:
                continue  # not bound to a workflow / scheduled by cron, not polled
            key = (spec.name, spec.workflow, spec.poll_interval)
            if key not in self._trigger_rows:
                trigger_store.ensure_row(self.store, spec)
                self._trigger_rows.add(key)
