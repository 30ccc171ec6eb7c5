"""Executors: where the one scheduler's task attempts run.

``"local"`` (the default) runs tasks in this process — and packaged tasks in their local worker
subprocesses — with no executor object at all. ``"dask"`` is
:class:`~cloaca.execution.executors.dask.DaskExecutor`. :func:`make_executor` turns the runner's
``executor``/``dask_scheduler`` settings into one; Dask is imported only when it is chosen.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cloaca.execution.executors.dask import DaskExecutor

EXECUTORS = ("local", "dask")


def make_executor(
    executor: str, dask_scheduler: str | None, *, default_timeout: float | None = None
) -> DaskExecutor | None:
    """The executor for a runner's settings (None for ``"local"``).

    Parameters
    ----------
    executor:
        ``"local"`` or ``"dask"``.
    dask_scheduler:
        The Dask scheduler address (``tcp://host:8786``); required for ``"dask"``.
    default_timeout:
        Seconds for tasks that set no ``timeout_seconds``.

    Raises
    ------
    ValueError
        An unknown executor, or ``"dask"`` without ``dask_scheduler``.
    ExecutorError
        The Dask scheduler cannot be reached.
    """
    if executor == "local":
        return None
    if executor != "dask":
        close = difflib.get_close_matches(executor, EXECUTORS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown executor {executor!r}; use one of {EXECUTORS}.{hint}")
    if not dask_scheduler:
        raise ValueError(
            "executor='dask' needs dask_scheduler, the scheduler address (tcp://host:8786)"
        )
    try:
        from cloaca.execution.executors.dask import DaskExecutor
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ValueError(
            f"executor='dask' needs the dask extra ({exc}); pip install 'cloaca-nb[dask]'"
        ) from None
    return DaskExecutor(dask_scheduler, default_timeout=default_timeout)


__all__ = ["EXECUTORS", "make_executor"]
