"""Host side of package workers: warm worker processes per package, JSON lines over pipes.

A :class:`WorkerPool` serves one staged package. It starts workers lazily (a fresh interpreter
running :mod:`cloaca.registry.worker_main`), keeps them warm between tasks and between workflow
executions, and runs at most ``max_workers`` at once (parallel branches of one package each get a
worker; sequential tasks reuse the same one). :class:`WorkerPools` maps packages to pools;
:func:`default_pools` is the process-wide one, closed at exit.

Failure model: a task's exception comes back as a
:class:`~cloaca.errors.TaskExecutionError` (type, message, the worker's traceback) and the worker
stays. A worker that dies (segfault, ``os._exit``) or breaks the protocol fails the running task
with ``error_type="WorkerError"`` naming the package, and is replaced by a fresh one for the next
task; a worker killed from outside (SIGKILL, SIGTERM, SIGINT, SIGHUP) gives
``error_type="WorkerLost"`` instead, which the scheduler re-runs under the task's recovery budget.
A task's ``task_started`` is reported when it got a worker, not while it waits for one. When
the awaiting coroutine is cancelled (the scheduler's ``timeout_seconds`` does this) the worker
is killed, its whole process group with it.

The pool is not tied to an event loop (waiters on other loops are woken thread-safely, and each
worker call registers its pipe with the running loop only for its own duration), so workflows run
from different loops and threads share warm workers. One worker process and its protocol are
:mod:`cloaca.registry.worker_process`.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import signal
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from cloaca.errors import WORKER_LOST, TaskExecutionError, WorkerError
from cloaca.execution.events import report_started
from cloaca.registry.worker_process import Worker, host_root, worker_command

if TYPE_CHECKING:
    from cloaca.registry.loader import LoadedPackage

log = logging.getLogger("cloaca.registry.workers")
DEFAULT_MAX_WORKERS = 4
OUTSIDE_KILLS = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def killed_from_outside(worker: Worker) -> bool:
    """True when ``worker`` ended by a signal sent from outside (not a crash of its own, such
    as SIGSEGV, nor an exit status): its attempt was lost, not failed."""
    code = worker.exit_code
    return code is not None and code < 0 and -code in OUTSIDE_KILLS


class WorkerPool:
    """Warm workers for one package.

    Parameters
    ----------
    package:
        The loaded package (its staged paths and name).
    max_workers:
        Most workers alive at once; more concurrent tasks wait for one to be free.
    max_tasks_per_worker:
        Replace a worker after this many tasks (``None``: never; ``1``: a fresh interpreter
        for every task, e.g. for code that leaks).
    """

    def __init__(
        self,
        package: LoadedPackage,
        *,
        max_workers: int = DEFAULT_MAX_WORKERS,
        max_tasks_per_worker: int | None = None,
    ) -> None:
        self.package = package.name
        self.argv = worker_command(package)
        self.max_workers = max(1, max_workers)
        self.max_tasks_per_worker = max_tasks_per_worker
        self.spawned = 0
        self._idle: list[Worker] = []
        self._busy: set[Worker] = set()
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"WorkerPool({self.package!r}, pids={self.pids})"

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers (idle and busy)."""
        with self._lock:
            return sorted(w.pid for w in [*self._idle, *self._busy] if w.alive())

    def prestart(self) -> None:
        """Start one worker now if none exists, so the first task finds it warm."""
        with self._lock:
            if not self._closed and not self._idle and not self._busy:
                self._idle.append(self._spawn())

    async def run(self, task_key: str, function: str, context: dict[str, Any]) -> dict[str, Any]:
        """Run ``function`` (a ``module:function`` ref, or a Rust task name) on ``context``.

        Returns
        -------
        dict
            The task's output context.

        Raises
        ------
        TaskExecutionError
            The task raised (``error_type`` is its exception type, ``traceback`` the worker's),
            or its worker died (``error_type="WorkerError"``).
        """
        worker = await self._acquire()
        report_started()  # the task's code starts now, not while it waited for a worker
        message = {"op": "run", "task": task_key, "function": function, "context": context}
        try:
            reply = await worker.request(message)
        except WorkerError as exc:
            self._discard(worker)
            tail = "\n".join(worker.stderr_tail)
            raise TaskExecutionError(
                exc.describe(),
                task_id=task_key,
                error_type=WORKER_LOST if killed_from_outside(worker) else "WorkerError",
                traceback=f"worker stderr (last lines):\n{tail}" if tail else None,
            ) from exc
        except BaseException:  # cancelled (timeout) or interrupted: the worker's state is unknown
            self._discard(worker)
            raise
        worker.tasks_run += 1
        self._release(worker)
        if reply.get("ok"):
            out = reply.get("context")
            if isinstance(out, dict):
                return out
            reply = {"error_type": "WorkerError", "message": "the worker sent no context"}
        raise TaskExecutionError(
            str(reply.get("message") or ""),
            task_id=task_key,
            error_type=str(reply.get("error_type") or "Exception"),
            traceback=reply.get("traceback"),
        )

    async def callback(
        self,
        function: str,
        task_id: str,
        context: dict[str, Any],
        error: TaskExecutionError | None = None,
    ) -> None:
        """Run a task's ``on_success`` (``error`` None) or ``on_failure`` callback in a worker.

        Raises
        ------
        TaskExecutionError
            The callback raised (the caller logs it: a callback never fails its task).
        """
        message: dict[str, Any] = {
            "op": "callback",
            "function": function,
            "task_id": task_id,
            "context": context,
        }
        if error is not None:
            message["error"] = {
                "class": type(error).__name__,
                "timeout_seconds": getattr(error, "timeout_seconds", None),
                "error_type": error.error_type,
                "message": error.message,
                "traceback": error.traceback,
            }
        worker = await self._acquire()
        try:
            reply = await worker.request(message)
        except BaseException:
            self._discard(worker)
            raise
        self._release(worker)
        if not reply.get("ok"):
            raise TaskExecutionError(
                str(reply.get("message") or ""),
                task_id=task_id,
                error_type=str(reply.get("error_type") or "Exception"),
                traceback=reply.get("traceback"),
            )

    async def ping(self) -> int:
        """Round-trip an empty request through a worker; return its pid."""
        worker = await self._acquire()
        try:
            reply = await worker.request({"op": "ping"})
        except BaseException:
            self._discard(worker)
            raise
        self._release(worker)
        return int(reply["pid"])

    # ------------------------------------------------------------------ bookkeeping
    def _spawn(self) -> Worker:
        self.spawned += 1
        worker = Worker(self.package, self.argv)
        log.debug("started worker %d for package %r", worker.pid, self.package)
        return worker

    async def _acquire(self) -> Worker:
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if self._closed:
                    raise WorkerError("the worker pool is closed", package=self.package)
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive():
                        self._busy.add(worker)
                        return worker
                    worker.kill()  # died while idle: reap it, try the next
                if len(self._busy) < self.max_workers:
                    worker = self._spawn()
                    self._busy.add(worker)
                    return worker
                fut: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, fut))
            try:
                await fut
            except asyncio.CancelledError:
                with self._lock:
                    if (loop, fut) in self._waiters:
                        self._waiters.remove((loop, fut))
                raise

    def _release(self, worker: Worker) -> None:
        limit = self.max_tasks_per_worker
        retire = limit is not None and worker.tasks_run >= limit
        with self._lock:
            self._busy.discard(worker)
            retire = retire or self._closed
            if not retire:
                self._idle.append(worker)
            self._wake_one()
        if retire:
            worker.close()

    def _discard(self, worker: Worker) -> None:
        worker.kill()
        with self._lock:
            self._busy.discard(worker)
            self._wake_one()

    def _wake_one(self) -> None:
        # under self._lock; the woken waiter re-checks for a free worker or slot
        while self._waiters:
            loop, fut = self._waiters.popleft()
            if not fut.done() and not loop.is_closed():
                loop.call_soon_threadsafe(self._resolve, fut)
                return

    def _resolve(self, fut: asyncio.Future[None]) -> None:
        if fut.done():  # cancelled meanwhile: pass the wake-up on
            with self._lock:
                self._wake_one()
        else:
            fut.set_result(None)

    def close(self) -> None:
        """Stop every worker; later calls fail with :class:`WorkerError`."""
        with self._lock:
            self._closed = True
            workers = [*self._idle, *self._busy]
            self._idle.clear()
        for worker in workers:
            worker.close()


class WorkerPools:
    """The pools of several packages, keyed by staged package (one pool per staged copy).

    ``max_workers`` and ``max_tasks_per_worker`` apply to every pool (see :class:`WorkerPool`).
    """

    def __init__(
        self, *, max_workers: int = DEFAULT_MAX_WORKERS, max_tasks_per_worker: int | None = None
    ) -> None:
        self.max_workers = max_workers
        self.max_tasks_per_worker = max_tasks_per_worker
        self._pools: dict[str, WorkerPool] = {}
        self._lock = threading.Lock()

    def pool_for(self, package: LoadedPackage) -> WorkerPool:
        """The pool of ``package`` (created on first use; no process starts until a task runs)."""
        key = str(package.root)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = WorkerPool(
                    package,
                    max_workers=self.max_workers,
                    max_tasks_per_worker=self.max_tasks_per_worker,
                )
            return pool

    def discard(self, package: LoadedPackage) -> None:
        """Close and forget the pool of ``package`` (e.g. when it is unloaded)."""
        with self._lock:
            pool = self._pools.pop(str(package.root), None)
        if pool is not None:
            pool.close()

    def close(self) -> None:
        """Close every pool."""
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.close()

    def __enter__(self) -> WorkerPools:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_default: WorkerPools | None = None
_default_lock = threading.Lock()


def default_pools() -> WorkerPools:
    """The process-wide :class:`WorkerPools` (closed when the interpreter exits)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = WorkerPools()
            atexit.register(_default.close)
        return _default


__all__ = ["Worker", "WorkerPool", "WorkerPools", "default_pools", "host_root", "worker_command"]
