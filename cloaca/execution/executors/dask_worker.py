"""The Dask-worker side of the Dask executor: what runs inside a Dask worker process.

Three things live here, all imported by Dask workers by reference (workers need ``cloaca``
installed, as they need it to start package workers):

- :func:`run_inline` runs an in-process task (a function pickled by the client) and returns its
  output dict; an exception comes back as a :class:`~cloaca.errors.TaskExecutionError` carrying
  the worker's traceback, so nothing unpicklable crosses the wire.
- :func:`run_packaged` runs a task of a ``.cloaca`` package the way the server does: the package
  is staged by fingerprint in a cache in the worker's local directory, and the task runs in one
  of the package's own warm subprocess workers (:mod:`cloaca.registry.workers`). Package code is
  never imported into the Dask worker process. The archive bytes arrive once per Dask worker
  through :class:`PackagePlugin` (a Dask worker plugin the client registers per fingerprint).
- :func:`claim_attempt`: Dask silently re-runs a task whose worker died. The runner must see
  that attempt lost instead (it is re-run under the task's recovery budget, and recorded), so
  each attempt claims a unique name on the Dask scheduler (``publish_dataset`` without
  ``override`` is an atomic check-and-set) before it runs; a re-run finds the name taken and
  fails with ``error_type="WorkerLost"`` naming the worker that died.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distributed import get_client, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from cloaca.context import Context, task_output
from cloaca.errors import ExecutorError, TaskExecutionError, TaskTimeoutError
from cloaca.execution.scheduler import to_task_error

if TYPE_CHECKING:
    from collections.abc import Callable

    from distributed import Worker

    from cloaca.registry.loader import LoadedPackage
    from cloaca.registry.workers import WorkerPools

WORKER_LOST = "WorkerLost"

_archives: dict[str, bytes] = {}  # fingerprint -> archive bytes, filled by PackagePlugin
_staged: dict[str, LoadedPackage] = {}
_pools: WorkerPools | None = None
_lock = threading.Lock()


class PackagePlugin(WorkerPlugin):
    """Carries one package archive to every Dask worker (present and future) once.

    ``setup`` only keeps the bytes; the package is verified and staged at its first task.
    """

    def __init__(self, fingerprint: str, data: bytes) -> None:
        self.fingerprint = fingerprint
        self.data = data

    def setup(self, worker: Worker) -> None:
        """Remember the archive in this worker process."""
        _archives[self.fingerprint] = self.data


def plugin_name(fingerprint: str) -> str:
    """The Dask plugin name of a package (one registration per fingerprint)."""
    return f"cloaca-package-{fingerprint.removeprefix('sha256:')[:32]}"


def claim_attempt(token: str) -> None:
    """Mark attempt ``token`` as started on this worker; fail if it already started elsewhere.

    Raises
    ------
    TaskExecutionError
        ``error_type="WorkerLost"``: Dask is re-running an attempt whose worker died.
    """
    address = get_worker().address
    client = get_client()
    try:
        client.publish_dataset({token: address})
    except KeyError:
        first = client.get_dataset(token, default="?")
        raise TaskExecutionError(
            f"the Dask worker {first} died while running this attempt",
            error_type=WORKER_LOST,
        ) from None


def run_inline(
    token: str, task_id: str, fn: Callable[..., Any], is_async: bool, data: dict[str, Any]
) -> dict[str, Any]:
    """Run an in-process task on ``data`` (its input context) and return its output dict."""
    claim_attempt(token)
    ctx = Context._trusted(data)
    try:
        ret = asyncio.run(fn(ctx)) if is_async else fn(ctx)
        return task_output(task_id, ret, ctx, data)
    except Exception as exc:
        # wrapped here: the task's own exception may not survive pickling
        raise to_task_error(task_id, exc) from None


def run_packaged(
    token: str,
    fingerprint: str,
    task_key: str,
    function: str,
    data: dict[str, Any],
    timeout: float | None,
) -> dict[str, Any]:
    """Run task ``task_key`` (``function`` of the package ``fingerprint``) in a package worker."""
    claim_attempt(token)
    pool = _package_pools().pool_for(_stage(fingerprint, task_key))

    async def call() -> dict[str, Any]:
        # on timeout the cancelled pool.run kills the package worker (its process group too)
        return await asyncio.wait_for(pool.run(task_key, function, data), timeout)

    try:
        return asyncio.run(call())
    except TimeoutError:
        raise TaskTimeoutError(
            "timed out", task_id=task_key, error_type="TaskTimeoutError", timeout_seconds=timeout
        ) from None


def _stage(fingerprint: str, task_key: str) -> LoadedPackage:
    with _lock:
        loaded = _staged.get(fingerprint)
        if loaded is not None:
            return loaded
        data = _archives.get(fingerprint)
        if data is None:
            raise TaskExecutionError(
                f"this Dask worker never received package {fingerprint} (its worker plugin "
                "was not registered); run the workflow through cloaca's Dask executor",
                task_id=task_key,
                error_type=ExecutorError.__name__,
            )
        from cloaca.registry.loader import PackageLoaderFactory

        cache = Path(get_worker().local_directory) / "cloaca-packages"
        loaded = _staged[fingerprint] = PackageLoaderFactory(cache).load(
            data, source=f"package {fingerprint[:19]} on Dask worker"
        )
        return loaded


def _package_pools() -> WorkerPools:
    global _pools
    with _lock:
        if _pools is None:
            from cloaca.registry.workers import WorkerPools

            _pools = WorkerPools(max_workers=max(1, get_worker().state.nthreads))
            atexit.register(_pools.close)
        return _pools


__all__ = ["PackagePlugin", "claim_attempt", "plugin_name", "run_inline", "run_packaged"]
