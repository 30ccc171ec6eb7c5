"""Event triggers: ``@trigger`` functions the runner polls, starting a workflow when one fires.

A trigger is a plain (sync or async) zero-argument function returning
:meth:`TriggerResult.fire` (optionally with a context for the new execution) or
:meth:`TriggerResult.skip`. Decorating registers it process-wide; every runner in the process
polls it every ``poll_interval``. On a shared database a poll tick is claimed atomically
(``UPDATE ... WHERE last_poll_at <= now - interval``), so several runners do not all fire for
the same tick. Unless ``allow_concurrent``, a trigger does not start its workflow again while
its previous execution is still running. The runner's side (polling, cron triggers, the trigger
API) is :mod:`cloaca.runner.trigger_runner`.

This module stays free of SQLAlchemy at import time (``cloaca.trigger`` is exported lazily).
"""

from __future__ import annotations

import asyncio
import inspect
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cloaca.context import Context


class TriggerResult:
    """What a trigger function returns: fire (with an optional context) or skip.

    ``TriggerResult(should_fire, context=None)`` is upstream's constructor;
    :meth:`fire` and :meth:`skip` are the usual spellings.
    """

    __slots__ = ("_context", "_fire")

    def __init__(
        self, should_fire: bool, context: Context | Mapping[str, Any] | None = None
    ) -> None:
        if context is not None and not isinstance(context, Context):
            context = Context(context)
        self._fire = bool(should_fire)
        self._context = context

    @staticmethod
    def fire(context: Context | Mapping[str, Any] | None = None) -> TriggerResult:
        """Start the workflow, with ``context`` as its initial context."""
        return TriggerResult(True, context)

    @staticmethod
    def skip() -> TriggerResult:
        """Do nothing this time."""
        return TriggerResult(False)

    @property
    def should_fire(self) -> bool:
        """True when the workflow should start."""
        return self._fire

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
        return f"TriggerResult(should_fire={self._fire})"


@dataclass(frozen=True)
class TriggerSpec:
    """A registered trigger: its ``name``, the ``workflow`` it starts (None: not bound to one,
    so it fires nothing), how often it is polled (``poll_interval`` seconds) and the function.

    A cron trigger (``cron`` set) is not polled: the runner registers a cron schedule of
    ``workflow`` on ``cron`` in ``timezone`` and the function is never called.
    """

    name: str
    workflow: str | None
    poll_interval: float
    fn: Callable[[], Any]
    allow_concurrent: bool = False
    cron: str | None = None
    timezone: str | None = None


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


DEFAULT_POLL_INTERVAL = "30s"


def trigger(
    fn: Callable[[], Any] | None = None,
    *,
    name: str | None = None,
    on: str | None = None,
    poll_interval: float | int | str | None = None,
    cron: str | None = None,
    timezone: str | None = None,
    allow_concurrent: bool = False,
    workflow: str | None = None,
) -> Any:
    """Register a function as a trigger for the workflow named by ``on`` (see the module
    docstring).

    ``poll_interval`` defaults to ``"30s"``. With ``cron=`` (and optionally ``timezone=``) the
    runner schedules ``on`` on that expression instead of polling. ``workflow=`` is this
    library's older name for ``on=``.

    Raises
    ------
    ValueError
        ``cron`` together with ``poll_interval``; ``cron`` without ``on``; ``on`` and
        ``workflow`` naming different workflows; a bad interval or cron expression.

    Examples
    --------
    >>> @trigger(on="ingest", poll_interval="10s")      # doctest: +SKIP
    ... def new_files():
    ...     files = list_inbox()
    ...     return TriggerResult.fire({"files": files}) if files else TriggerResult.skip()
    """
    if on is not None and workflow is not None and on != workflow:
        raise ValueError(f"trigger: on={on!r} and workflow={workflow!r} disagree; give on= only")
    target = on if on is not None else workflow
    if cron is not None:
        if poll_interval is not None:
            raise ValueError("trigger: give either cron= or poll_interval=, not both")
        if target is None:
            raise ValueError("trigger: a cron trigger needs on= (the workflow it schedules)")
        from cloaca.runner.cron_expr import validate_cron

        validate_cron(cron, timezone or "UTC")
    elif timezone is not None:
        raise ValueError("trigger: timezone= applies to cron= triggers only")
    interval = parse_interval(poll_interval if poll_interval is not None else DEFAULT_POLL_INTERVAL)

    def decorate(func: Callable[[], Any]) -> Callable[[], Any]:
        spec = TriggerSpec(
            name=name or func.__name__,
            workflow=target,
            poll_interval=interval,
            fn=func,
            allow_concurrent=allow_concurrent,
            cron=cron,
            timezone=timezone,
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
