"""The event-driven scheduler that runs a :class:`~cloaca.workflow.Workflow`.

A task starts as soon as its last selected dependency finishes. Async tasks run on the event
loop, sync tasks on a shared thread pool (with the inline and lane fast paths of
:mod:`cloaca.execution.lanes`); a semaphore bounds how many run at once. Per-task records and
context merging live in :mod:`cloaca.execution.state`. Every front end (cells, packages, the
durable runner, Dask) runs workflows through :func:`execute_workflow`.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cloaca.context import Context, owned_copy, task_output
from cloaca.errors import WORKER_LOST, AttemptVetoed, TaskTimeoutError
from cloaca.execution import events as ev
from cloaca.execution.events import EventCallback
from cloaca.execution.lanes import POOL, LanesMixin
from cloaca.execution.result import (
    COMPLETED,
    FAILED,
    PENDING,
    RUNNING,
    SKIPPED,
    ExecutionResult,
    TaskResult,
)
from cloaca.execution.state import (
    AttemptGate,
    TaskCaller,
    initial_dict,
    to_task_error,
)
from cloaca.task import TaskHandle, TaskSpec

if TYPE_CHECKING:
    from cloaca.workflow import Workflow

DEFAULT_MAX_RECOVERIES = 3
"""Default recovery budget per task (as Cloacina: 3 recoveries)."""

__all__ = [
    "DEFAULT_MAX_RECOVERIES",
    "AttemptGate",
    "AttemptVetoed",
    "TaskCaller",
    "execute_workflow",
    "to_task_error",
]


class _Run(LanesMixin):
    """One execution: how tasks are called (timeouts, handles), retries, and the main loop."""

    def call_sync(
        self, node: str, spec: TaskSpec, ctx: Context, handle: TaskHandle | None, attempt: int
    ) -> Any:
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self.body_started, node, attempt)  # a pool thread is ours
        if self.caller is not None:
            return self.caller(node, spec, ctx, handle)
        return spec.fn(ctx, handle) if spec.accepts_handle else spec.fn(ctx)

    async def call(self, node: str, spec: TaskSpec, ctx: Context, attempt: int) -> Any:
        handle = self.make_handle(node) if spec.accepts_handle else None
        timeout = self.timeout_of(spec)
        pending: Awaitable[Any]  # the task's coroutine, or its call on the thread pool
        token = None
        if spec.is_async and self.caller is None:
            if getattr(spec.fn, "reports_start", False):  # waits for a worker first
                token = ev.BODY_STARTED.set(lambda: self.body_started(node, attempt))
            else:
                self.body_started(node, attempt)
            pending = spec.fn(ctx, handle) if spec.accepts_handle else spec.fn(ctx)
        else:
            assert self.loop is not None
            pending = self.loop.run_in_executor(
                POOL, self.call_sync, node, spec, ctx, handle, attempt
            )
        try:
            if timeout is None:
                return await pending
            return await asyncio.wait_for(pending, timeout)
        except TimeoutError as exc:
            raise TaskTimeoutError(
                "timed out", task_id=node, error_type="TaskTimeoutError", timeout_seconds=timeout
            ) from exc
        finally:
            if token is not None:
                ev.BODY_STARTED.reset(token)

    def body_started(self, node: str, attempt: int) -> None:
        """Emit ``task_started`` for ``attempt`` of ``node`` once its body really starts (on
        the loop thread); nothing if that attempt already ended (e.g. timed out waiting)."""
        rec = self.records[node]
        if rec.status == RUNNING and rec.attempts == attempt and self.started.get(node) != attempt:
            self.started[node] = attempt
            self.emit(ev.TASK_STARTED, node, attempt=attempt)

    def make_handle(self, node: str) -> TaskHandle:
        sem, loop = self.sem, self.loop
        assert sem is not None and loop is not None
        return TaskHandle(
            node,
            release=lambda: loop.call_soon_threadsafe(sem.release),
            acquire=lambda: asyncio.run_coroutine_threadsafe(sem.acquire(), loop).result(),
            arelease=sem.release,
            aacquire=sem.acquire,
        )

    async def run_node(self, node: str, attempt: int = 1, delay: float = 0.0) -> None:
        spec, rec = self.wf.tasks[node], self.records[node]
        if attempt == 1:
            got = self.begin(node)
            if got is None:
                return
            inp = got
        else:
            inp = self.input_for(node)
        assert self.sem is not None
        charged = attempt - 1  # attempts counted against the retry policy (lost ones are not)
        while True:
            if delay:
                await asyncio.sleep(delay)
            async with self.sem:
                if self.before_attempt is not None:
                    allowed = self.before_attempt(node, attempt)
                    if inspect.isawaitable(allowed):
                        allowed = await allowed
                    if not allowed:
                        raise AttemptVetoed(task_id=node, attempt=attempt)
                rec.status, rec.attempts = RUNNING, attempt
                if rec.started_at is None:
                    rec.started_at = time.time()
                given = owned_copy(inp)
                ctx = Context._trusted(dict(given))
                try:
                    out = task_output(node, await self.call(node, spec, ctx, attempt), ctx, given)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    err = to_task_error(node, exc)
                else:
                    self.succeed(node, spec, inp, out)
                    return
            if err.error_type == WORKER_LOST and self.recoveries.get(node, 0) < self.max_recoveries:
                self.recoveries[node] = self.recoveries.get(node, 0) + 1
                rec.status = PENDING
                self.emit(
                    ev.TASK_RECOVERED, node, attempt=attempt, error=str(err), error_type=WORKER_LOST
                )
                delay, attempt = 0.0, attempt + 1
                continue
            charged += 1
            if not self.may_retry(spec, charged, err):
                self.fail(node, spec, err, inp)
                return
            self.emit(
                ev.TASK_RETRYING, node, attempt=attempt, error=str(err), error_type=err.error_type
            )
            delay = spec.retry.delay_for(charged)
            attempt += 1

    # ------------------------------------------------------------------ main loop
    def spawn(self, node: str, attempt: int = 1, delay: float = 0.0) -> None:
        fut = asyncio.ensure_future(self.run_node(node, attempt, delay))
        self.active.add(fut)
        fut.add_done_callback(self.on_done)

    def on_done(self, fut: asyncio.Future[Any]) -> None:
        self.active.discard(fut)
        if not fut.cancelled() and fut.exception() is not None:
            self.crashed.append(fut.exception())  # type: ignore[arg-type]
        assert self.wake is not None
        self.wake.set()

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.sem = asyncio.Semaphore(self.max_concurrency)
        self.wake = asyncio.Event()
        for node, rec in self.records.items():
            if rec.status in (COMPLETED, SKIPPED):  # resumed from an earlier run
                self.finish(node)
            elif self.remaining[node] == 0:
                self.ready.append(node)
        scheduled: set[str] = set()
        try:
            # one wake-up event instead of asyncio.wait() over every running task: O(1) per
            # completion, which matters for wide fan-outs
            while self.ready or self.active or self.lane_queue:
                while self.ready:
                    node = self.ready.popleft()
                    if node in scheduled or self.records[node].status != PENDING:
                        continue
                    scheduled.add(node)
                    if not self.is_plain_sync(node):
                        self.spawn(node)
                        continue
                    inp = self.begin(node)
                    if inp is None:
                        continue
                    if not self.active and not self.ready and not self.lane_queue:
                        # the only runnable work (e.g. a chain): run it here, no thread hop
                        self.emit(ev.TASK_STARTED, node, attempt=1)
                        self.settle(node, inp, *self.attempt_sync(node, inp))
                    else:
                        self.lane_queue.append((node, inp))
                self.start_lanes()
                if self.crashed:
                    raise self.crashed[0]
                if self.active:
                    await self.wake.wait()
                    self.wake.clear()
            if self.crashed:
                raise self.crashed[0]
        finally:
            self.lane_queue.clear()  # cancelled: lanes still running must not start more tasks
            pending = list(self.active)
            for fut in pending:
                fut.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            if self.pending_events:
                await asyncio.gather(*self.pending_events, return_exceptions=True)


async def execute_workflow(
    workflow: Workflow,
    context: Context | Mapping[str, Any] | None = None,
    *,
    on_event: EventCallback | None = None,
    max_concurrency: int = 4,
    default_timeout: float | None = None,
    workflow_timeout: float | None = None,
    start_from: str | None = None,
    only: Sequence[str] | None = None,
    until: str | None = None,
    completed: Mapping[str, TaskResult] | None = None,
    execution_id: str | None = None,
    caller: TaskCaller | None = None,
    before_attempt: AttemptGate | None = None,
    max_recoveries: int = DEFAULT_MAX_RECOVERIES,
    recoveries: Mapping[str, int] | None = None,
    retries: bool = True,
) -> ExecutionResult:
    """Run ``workflow`` on the current event loop and return an :class:`ExecutionResult`.

    Parameters
    ----------
    context: initial context (values must be JSON-serialisable).
    on_event: called with each :class:`TaskEvent` (may return an awaitable).
    max_concurrency: how many tasks may run at once.
    default_timeout: seconds for tasks that set no ``timeout_seconds`` (None: no limit).
    workflow_timeout: seconds for the whole run; unfinished tasks then fail or are skipped.
    start_from, only, until: sub-DAG selection (see :meth:`cloaca.dag.Dag.select`).
    completed: records of tasks already done (resuming a run): they are not run again.
    caller: replaces how a task function is called (used by worker-process executors);
        called in a worker thread as ``caller(node, spec, context, handle)``.
    before_attempt: asked ``before_attempt(node, attempt)`` (a bool or an awaitable of one)
        before every attempt of every task, on the event loop, before ``task_started``; on
        False the attempt does not run and the run stops with :class:`AttemptVetoed`. Tasks
        then always take the general path (no inline or lane fast path). None: no gate.
    max_recoveries, recoveries: the recovery budget of each task, and what a resumed run's
        tasks used of it already. An attempt lost with the process running it (a package
        worker killed from outside: ``error_type="WorkerLost"``) runs again, with a
        ``task_recovered`` event, up to ``max_recoveries`` times per task, without counting
        against the task's retry policy.
    retries: False gives every task a single attempt whatever its retry policy (a debugging
        switch: ``%cloaca_run --no-retry``).
    """
    wf = workflow.subset(start_from, only, until) if (start_from or only or until) else workflow
    selected = set(wf.selection) if wf.selection is not None else set(wf.dag.order)
    run = _Run(
        wf,
        wf.check_inputs(initial_dict(context)),  # @workflow_params: checked, defaults added
        selected,
        on_event,
        max_concurrency,
        default_timeout,
        completed,
        caller,
    )
    run.before_attempt = before_attempt
    run.max_recoveries = max_recoveries
    run.recoveries = dict(recoveries or {})
    run.retries = retries
    started = time.time()
    run.emit(ev.WORKFLOW_STARTED)
    try:
        if workflow_timeout is None:
            await run.run()
        else:
            await asyncio.wait_for(run.run(), workflow_timeout)
    except TimeoutError:
        run.cancel_unfinished(f"workflow timed out after {workflow_timeout}s")
    failed = any(r.status == FAILED for r in run.records.values())
    result = ExecutionResult(
        workflow_name=wf.name,
        status=FAILED if failed else COMPLETED,
        final_context=run.final_context(),
        tasks=run.records,
        started_at=started,
        finished_at=time.time(),
        execution_id=execution_id,
        workflow_version=wf.version,
    )
    run.emit(
        ev.WORKFLOW_FAILED if failed else ev.WORKFLOW_COMPLETED,
        error=result.error_message,
        context=result.final_context.to_dict(),
    )
    return result
