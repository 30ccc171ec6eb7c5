"""Event triggers: ``@trigger`` functions the runner polls, starting a workflow when one fires.

A trigger is a plain (sync or async) zero-argument function returning
:meth:`TriggerResult.fire` (optionally with a context for the new execution) or
:meth:`TriggerResult.skip`. Decorating registers it process-wide; every runner in the process
polls it every ``poll_interval``. On a shared database a poll tick is claimed atomically
(``UPDATE ... WHERE last_poll_at <= now - interval``), so several runners do not all fire for
the same tick. Unless ``allow_concurrent``, a trigger does not start its workflow again while
its previous execution is still running.

This module stays free of SQLAlchemy at import time (``cloaca.trigger`` is exported lazily).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cloaca.context import Context

if TYPE_CHECKING:
    from cloaca.runner.config import DefaultRunnerConfig
    from cloaca.storage import Store

log = logging.getLogger("cloaca.runner")


class TriggerResult:
    """What a trigger function returns: fire (with an optional context) or skip."""

    __slots__ = ("_context", "_fire")

    def __init__(self, fire: bool, context: Context | None = None) -> None:
        self._fire = fire
        self._context = context

    @staticmethod
    def fire(context: Context | Mapping[str, Any] | None = None) -> TriggerResult:
        """Start the workflow, with ``context`` as its initial context."""
        if context is not None and not isinstance(context, Context):
            context = Context(context)
        return TriggerResult(True, context)

    @staticmethod
    def skip() -> TriggerResult:
        """Do nothing this time."""
        return TriggerResult(False)

    def is_fire_result(self) -> bool:
        """True when the workflow should start."""
        return self._fire

    def is_skip_result(self) -> bool:
        """True when nothing should happen."""
        return not self._fire

    @property
    def context(self) -> Context | None:
        """The context to start the workflow with (fire results only)."""
        return self._context

    def __repr__(self) -> str:
        return "TriggerResult.fire(...)" if self._fire else "TriggerResult.skip()"


@dataclass(frozen=True)
class TriggerSpec:
    """A registered trigger: its ``name``, the ``workflow`` it starts, how often it is polled
    (``poll_interval`` seconds) and the function."""

    name: str
    workflow: str
    poll_interval: float
    fn: Callable[[], Any]
    allow_concurrent: bool = False


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_interval(value: float | int | str) -> float:
    """Seconds from ``5``, ``0.5``, ``"100ms"``, ``"5s"``, ``"2m"`` or ``"1h"``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ValueError(f"invalid poll_interval {value!r}; use seconds or '100ms'/'5s'/'1m'")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"poll_interval must be positive, got {value!r}")
    return seconds


_triggers: dict[str, TriggerSpec] = {}
_lock = threading.Lock()


def trigger(
    fn: Callable[[], Any] | None = None,
    *,
    workflow: str,
    name: str | None = None,
    poll_interval: float | int | str = "5s",
    allow_concurrent: bool = False,
) -> Any:
    """Register a function as a trigger for ``workflow`` (see the module docstring).

    Examples
    --------
    >>> @trigger(workflow="ingest", poll_interval="10s")      # doctest: +SKIP
    ... def new_files():
    ...     files = list_inbox()
    ...     return TriggerResult.fire({"files": files}) if files else TriggerResult.skip()
    """

    def decorate(func: Callable[[], Any]) -> Callable[[], Any]:
        spec = TriggerSpec(
            name=name or func.__name__,
            workflow=workflow,
            poll_interval=parse_interval(poll_interval),
            fn=func,
            allow_concurrent=allow_concurrent,
        )
        with _lock:
            _triggers[spec.name] = spec
        func.__cloaca_trigger__ = spec  # type: ignore[attr-defined]
        return func

    return decorate(fn) if fn is not None else TriggerDecorator(decorate)


class TriggerDecorator:
    """What ``@trigger(...)`` returns (upstream's name): calling it on the poll function
    registers the trigger and returns the function."""

    def __init__(self, decorate: Callable[[Callable[[], Any]], Callable[[], Any]]) -> None:
        self._decorate = decorate

    def __call__(self, func: Callable[[], Any]) -> Callable[[], Any]:
        """Register ``func`` as the trigger's poll function."""
        return self._decorate(func)


def registered_triggers() -> list[TriggerSpec]:
    """Every trigger registered in this process."""
    with _lock:
        return list(_triggers.values())


def unregister_trigger(name: str) -> None:
    """Forget a trigger (no error when unknown)."""
    with _lock:
        _triggers.pop(name, None)


def call_trigger(spec: TriggerSpec) -> TriggerResult:
    """Call a trigger function (awaiting it if async) and check what it returned."""
    out = spec.fn()
    if inspect.isawaitable(out):
        out = asyncio.run(_await(out))
    if out is None:
        return TriggerResult.skip()
    if not isinstance(out, TriggerResult):
        raise TypeError(
            f"trigger {spec.name!r} returned {type(out).__name__}; "
            "return TriggerResult.fire(context) or TriggerResult.skip()"
        )
    return out


async def _await(awaitable: Any) -> Any:
    return await awaitable


class TriggerMixin:
    """The trigger part of :class:`~cloaca.runner.DefaultRunner`."""

    store: Store
    config: DefaultRunnerConfig
    runner_id: str

    def _init_triggers(self) -> None:
        self._trigger_due: dict[str, float] = {}
        self._trigger_rows: set[tuple[str, str, float]] = set()
        self._trigger_last: dict[str, str] = {}

    def _trigger_tick(self) -> float | None:
        """Poll due triggers; return seconds until the next one is due."""
        from cloaca.runner import trigger_store

        known = set(self.known_workflows())  # type: ignore[attr-defined]
        specs = [s for s in registered_triggers() if s.workflow in known]
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

    def get_trigger_schedule(self, name: str) -> dict[str, Any]:
        """One trigger as a dict (``name``, ``workflow_name``, ``poll_interval``,
        ``enabled``, ``last_poll_at``, ``last_fired_at``); KeyError when unknown."""
        from cloaca.runner import trigger_store

        self._trigger_tick_rows()
        return trigger_store.get_row(self.store, name)

    def set_trigger_enabled(self, name: str, enabled: bool) -> None:
        """Enable or disable polling of a trigger (for every runner on this database)."""
        from cloaca.runner import trigger_store

        self._trigger_tick_rows()
        trigger_store.set_enabled(self.store, name, enabled)

    def get_trigger_execution_history(
        self, name: str, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Executions a trigger started, newest first: ``execution_id``, ``fired_at``,
        ``context``, ``status``."""
        from cloaca.runner import trigger_store

        return trigger_store.history(self.store, name, limit, offset)

    def _trigger_tick_rows(self) -> None:
        from cloaca.runner import trigger_store

        for spec in registered_triggers():
            key = (spec.name, spec.workflow, spec.poll_interval)
            if key not in self._trigger_rows:
                trigger_store.ensure_row(self.store, spec)
                self._trigger_rows.add(key)
