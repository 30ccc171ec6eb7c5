"""``register_package_tasks``: a loaded package's tasks as ordinary :class:`~cloaca.task.TaskSpec`.

Each manifest task becomes a spec (through the one converter,
:func:`cloaca.packaging.spec_codec.entry_to_spec`) whose ``fn`` is an ``async`` proxy: it sends the
context to the package's worker pool and returns the output. Its ``on_success``/``on_failure``
callbacks are proxies too: they run the package's callback in a worker of the same pool. Everything
else (dependencies, retry policy, trigger rules, timeouts, sub-DAG selection, context merging) is
the one scheduler's job, exactly as for in-process tasks.
Tasks are added under the package name as namespace (``"data-pipeline-example::fetch-data"``); a
dependency ``"other-package::task-id"`` names a task of another loaded package and is resolved
when the workflow is built, so packages may be loaded in any order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from cloaca.packaging.spec_codec import entry_to_spec
from cloaca.task import SourceInfo, TaskSpec
from cloaca.task_registry import TaskRegistry, qualify

if TYPE_CHECKING:
    from cloaca.context import Context
    from cloaca.packaging.manifest import TaskEntry
    from cloaca.registry.loader import LoadedPackage
    from cloaca.registry.workers import WorkerPool, WorkerPools


def _same(a: Any, b: Any) -> bool:
    # ``==`` runs at C speed; a JSON round trip keeps every type, so an untouched value compares
    # equal with equal types. (A nested 1 -> 1.0 / True change reads as unchanged: equal values.)
    return type(a) is type(b) and bool(a == b)


def keep_unchanged(inp: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    """Return ``out`` with the input's own objects for values the task did not change.

    A context that went through JSON comes back as new objects; the scheduler tells a task's
    writes from what it passed through by identity, so unchanged values must be the input's.
    """
    for key, value in out.items():
        if key in inp and inp[key] is not value and _same(inp[key], value):
            out[key] = inp[key]
    return out


def make_proxy(
    pool: WorkerPool, task_key: str, function: str
) -> Callable[[Context], Awaitable[dict[str, Any]]]:
    """The ``fn`` of a packaged task: run ``function`` in a worker of ``pool``."""

    async def proxy(context: Context) -> dict[str, Any]:
        data = context._data
        return keep_unchanged(data, await pool.run(task_key, function, data))

    proxy.__name__ = proxy.__qualname__ = f"package_task[{task_key}]"
    proxy.reports_start = True  # type: ignore[attr-defined]  # after it got a worker
    return proxy


def make_callback_proxy(
    pool: WorkerPool, task_id: str, function: str, *, failure: bool
) -> Callable[..., Awaitable[None]]:
    """An ``on_success``/``on_failure`` of a packaged task: run ``function`` in a worker.

    The callback receives the task's own id (as the package declares it), the error for
    ``on_failure`` and the context, as an in-process callback does; the scheduler awaits it.
    """

    async def on_success(_node: str, context: Context) -> None:
        await pool.callback(function, task_id, context._data)

    async def on_failure(_node: str, error: Any, context: Context) -> None:
        # the worker rebuilds the same ErrorText from the structured error
        await pool.callback(function, task_id, context._data, getattr(error, "error", error))

    proxy = on_failure if failure else on_success
    proxy.__name__ = proxy.__qualname__ = f"package_callback[{function}]"
    return proxy


def _spec(package: LoadedPackage, entry: TaskEntry, pool: WorkerPool) -> TaskSpec:
    key = qualify(package.name, entry.id)
    module, _, qualname = entry.function.partition(":")
    code_hash = hashlib.sha256(f"{package.fingerprint}|{entry.function}".encode()).hexdigest()

    def resolve(field: str, ref: str) -> Callable[..., Any]:
        if field == "function":
            return make_proxy(pool, key, ref)
        return make_callback_proxy(pool, entry.id, ref, failure=field == "on_failure")

    return replace(
        entry_to_spec(entry, resolve),
        source=SourceInfo(
            module=module if qualname else f"{package.name} (rust)",
            qualname=qualname or entry.function,
            filename=str(package.root),
            lineno=0,
        ),
        code_hash=code_hash[:16],
    )


def register_package_tasks(
    registry: TaskRegistry,
    loaded: LoadedPackage,
    *,
    pools: WorkerPools | None = None,
    prestart: bool = False,
) -> list[str]:
    """Add the tasks of ``loaded`` to ``registry`` under the package name; return their keys.

    The package's earlier tasks in ``registry`` (a previous version) are replaced, removed ones
    included. ``WorkflowBuilder().with_registry(registry).build()`` then runs them; tasks run in
    the package's worker processes, never in this one.

    Parameters
    ----------
    registry:
        Where the tasks go (keys ``"<package name>::<task id>"``).
    loaded:
        A package returned by :meth:`PackageLoaderFactory.load`.
    pools:
        The worker pools to run in (default: :func:`~cloaca.registry.workers.default_pools`).
    prestart:
        Start the package's first worker now instead of at its first task.
    """
    from cloaca.registry.workers import default_pools

    pool = (pools or default_pools()).pool_for(loaded)
    registry.remove_namespace(loaded.name)
    keys = [
        registry.add(_spec(loaded, entry, pool), namespace=loaded.name)
        for entry in loaded.manifest.tasks
    ]
    if prestart:
        pool.prestart()
    return keys


__all__ = ["keep_unchanged", "make_callback_proxy", "make_proxy", "register_package_tasks"]
