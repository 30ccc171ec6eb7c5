"""The Dask executor: the one scheduler's tasks run on an existing Dask cluster.

:class:`DaskExecutor` is a :data:`~cloaca.execution.scheduler.TaskCaller`: the scheduler
(:func:`~cloaca.execution.scheduler.execute_workflow`) still decides what runs when — ready
tasks are handed over as they become ready, at most ``max_concurrency`` at a time — and it
records statuses, attempts, retries and timeouts exactly as for local execution. Dask only
executes: each attempt is one Dask future, and the scheduler's worker thread blocks on it.

- In-process tasks (defined in a module or a notebook) are pickled with cloudpickle and run by
  :func:`~cloaca.execution.executors.dask_worker.run_inline`.
- Packaged tasks (from :func:`~cloaca.registry.register_package_tasks`) run in a package worker
  subprocess on the Dask worker (:func:`~.dask_worker.run_packaged`). Their archive must be
  recorded (:func:`~.archives.register_archive`); it reaches each Dask worker once, as a
  worker plugin.
- Tasks that take a :class:`~cloaca.task.TaskHandle` run in this process: the handle releases
  and takes the scheduler's own concurrency slots.

Faults: a task's exception comes back as its :class:`~cloaca.errors.TaskExecutionError`
(worker traceback included). A Dask worker dying mid-task loses that attempt
(``error_type="WorkerLost"``, see :func:`~.dask_worker.claim_attempt`): the scheduler re-runs it
under the task's recovery budget; losing the scheduler
fails it with ``error_type="DaskSchedulerLost"`` — the runner can later
:meth:`~cloaca.runner.DefaultRunner.resume` such executions. Dask is imported only here.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from concurrent.futures import CancelledError
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

from distributed import Client, KilledWorker

from cloaca.errors import ExecutorError, TaskExecutionError, TaskTimeoutError
from cloaca.execution.executors import dask_worker as dw
from cloaca.execution.executors.archives import PackageArchive, archive_at, register_archive
from cloaca.registry.tasks import keep_unchanged
from cloaca.task import TaskHandle, TaskSpec
from cloaca.task_registry import qualify

if TYPE_CHECKING:
    from cloaca.context import Context

log = logging.getLogger("cloaca.execution.dask")
SCHEDULER_LOST = "DaskSchedulerLost"
WORKER_LOST = dw.WORKER_LOST
RESULT_GRACE_SECONDS = 5.0  # how long past a task's timeout we wait for Dask to report it


def _archive_of(spec: TaskSpec) -> PackageArchive | None:
    """The archive of a packaged task, or None for any other task.

    A packaged task's ``fn`` is the registry's proxy; a stand-in the runner puts in its place
    (a resumed task that must fail again) is an ordinary function and runs as one.
    """
    name = getattr(spec.fn, "__name__", "")
    if spec.source is None or not name.startswith("package_task["):
        return None
    found = archive_at(spec.source.filename)
    if found is not None and spec.id in found.functions:
        return found
    raise ExecutorError(
        f"task {spec.id!r} comes from the package staged at {spec.source.filename}, whose "
        "archive this process does not know. Call "
        "cloaca.execution.executors.archives.register_archive(loaded, archive) after "
        "loading the package."
    )


def connect(address: str, timeout: float = 10.0) -> Client:
    """A :class:`distributed.Client` for the scheduler at ``address`` (``tcp://host:8786``).

    Raises
    ------
    ExecutorError
        The scheduler cannot be reached within ``timeout`` seconds.
    """
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ExecutorError(
            f"cannot connect ({exc}). Is the scheduler running? Start one with "
            "`dask scheduler` and workers with `dask worker <address>`.",
            address=address,
        ) from None


class DaskExecutor:
    """Run the tasks of workflows on a Dask cluster (see the module docstring).

    Parameters
    ----------
    scheduler:
        The scheduler address (``tcp://host:8786``), or a connected :class:`distributed.Client`
        (it is not closed by :meth:`close`).
    default_timeout:
        Seconds for tasks that set no ``timeout_seconds`` (the runner's
        ``task_timeout_seconds``); packaged tasks are stopped on the worker at that point.
    connect_timeout:
        Seconds to wait for the scheduler when (re)connecting.

    Examples
    --------
    >>> ex = DaskExecutor("tcp://127.0.0.1:8786")                      # doctest: +SKIP
    >>> await execute_workflow(wf, {"n": 3}, caller=ex, max_concurrency=16)  # doctest: +SKIP
    """

    def __init__(
        self,
        scheduler: str | Client,
        *,
        default_timeout: float | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self.default_timeout = default_timeout
        self.connect_timeout = connect_timeout
        self._owned = not isinstance(scheduler, Client)
        if isinstance(scheduler, Client):
            self._client: Client | None = scheduler
            self.address = str(scheduler.scheduler.address)
        else:
            self.address = scheduler
            self._client = connect(scheduler, connect_timeout)
        self._plugins: set[tuple[int, str]] = set()  # (client id, fingerprint) registered
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DaskExecutor({self.address!r})"

    @property
    def client(self) -> Client:
        """The connected client; a new one when the old one lost the scheduler for good."""
        with self._lock:
            client = self._client
            if client is not None and client.status in ("running", "connecting"):
                return client
            if not self._owned:
                raise self._lost(None, "the client given to this executor is closed")
            if client is not None:
                client.close(timeout=1)
            self._client = None
            try:
                self._client = connect(self.address, self.connect_timeout)
            except ExecutorError as exc:
                raise self._lost(None, exc.message) from None
            return self._client

    def close(self) -> None:
        """Close the client this executor opened."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None and self._owned:
            client.close()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the TaskCaller
    def __call__(self, node: str, spec: TaskSpec, ctx: Context, handle: TaskHandle | None) -> Any:
        """Run one attempt of task ``node`` and return its output (called in a worker thread)."""
        if spec.accepts_handle:
            return _run_here(spec, ctx, handle)
        data = ctx._data
        archive = _archive_of(spec)
        client = self.client
        token = f"{node.replace('::', '.')}-{uuid.uuid4().hex}"
        timeout = spec.timeout_seconds if spec.timeout_seconds is not None else self.default_timeout
        future = None
        try:
            if archive is not None:
                self._ship(client, archive)
                key, fn = qualify(archive.name, spec.id), archive.functions[spec.id]
                future = client.submit(
                    dw.run_packaged, token, archive.fingerprint, key, fn, data, timeout, key=token
                )
            else:
                future = client.submit(
                    dw.run_inline, token, node, spec.fn, spec.is_async, data, key=token
                )
            wait = None if timeout is None else timeout + RESULT_GRACE_SECONDS
            out = future.result(timeout=wait)
        except TaskExecutionError as exc:
            if exc.error_type == WORKER_LOST:
                exc.task_id = node
            raise
        except KilledWorker as exc:
            raise TaskExecutionError(
                f"Dask gave up on the task after its workers died ({exc})",
                task_id=node,
                error_type=WORKER_LOST,
            ) from None
        except FutureTimeout:
            raise TaskTimeoutError(
                "timed out", task_id=node, error_type="TaskTimeoutError", timeout_seconds=timeout
            ) from None
        except (CancelledError, OSError) as exc:
            raise self._lost(node, str(exc) or type(exc).__name__) from None
        except Exception as exc:
            if client.status not in ("running", "connecting"):
                raise self._lost(node, str(exc) or type(exc).__name__) from None
            raise
        finally:
            if future is not None:
                future.release()
            self._forget(client, token)
        return keep_unchanged(data, out)

    # ------------------------------------------------------------------ helpers
    def _ship(self, client: Client, archive: PackageArchive) -> None:
        mark = (id(client), archive.fingerprint)
        if mark in self._plugins:
            return
        client.register_plugin(
            dw.PackagePlugin(archive.fingerprint, archive.data()),
            name=dw.plugin_name(archive.fingerprint),
        )
        self._plugins.add(mark)

    def _forget(self, client: Client, token: str) -> None:
        if client.status != "running":
            return  # the scheduler is gone and its published names with it
        # fire and forget on the client's loop: waiting for it would add a round trip per task;
        # a name left behind (the scheduler vanished meanwhile) only costs a few bytes
        loop = client.loop
        if loop is not None:
            loop.add_callback(_unpublish, client, token)

    def _lost(self, node: str | None, detail: str) -> TaskExecutionError:
        return TaskExecutionError(
            f"lost the Dask scheduler at {self.address} ({detail}). The execution fails; "
            "once the scheduler is back, resume it with DefaultRunner.resume(execution_id)",
            task_id=node,
            error_type=SCHEDULER_LOST,
        )


async def _unpublish(client: Client, token: str) -> None:
    try:
        await client.unpublish_dataset(token, asynchronous=True)
    except Exception as exc:
        log.debug("could not unpublish attempt name %s: %s", token, exc)


def _run_here(spec: TaskSpec, ctx: Context, handle: TaskHandle | None) -> Any:
    if not spec.is_async:
        return spec.fn(ctx, handle)
    assert handle is not None
    acquire = handle._acquire

    async def aacquire() -> None:
        if acquire is not None:
            await asyncio.to_thread(acquire)

    # on a private loop the handle must use its thread-safe (blocking) slot operations
    local = TaskHandle(
        handle.task_id,
        release=handle._release,
        acquire=acquire,
        arelease=handle._release,
        aacquire=aacquire,
    )
    return asyncio.run(spec.fn(ctx, local))


__all__ = [
    "SCHEDULER_LOST",
    "WORKER_LOST",
    "DaskExecutor",
    "connect",
    "register_archive",
]
