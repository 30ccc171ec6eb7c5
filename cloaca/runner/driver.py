"""One execution in flight: its thread, its event loop, and the events it persists.

Each execution runs :func:`~cloaca.execution.scheduler.execute_workflow` on a private event
loop in its own thread (a long synchronous task of one execution never delays another, nor
the runner's cron and recovery work). The scheduler's event callback turns each lifecycle
event into a row update and an event-log row (:mod:`cloaca.runner.event_log`), both queued on
the runner's :class:`~cloaca.runner.writer.Writer`. With ``claim_attempts`` every task attempt
is claimed in the database before it starts (:mod:`cloaca.runner.attempts`); a refused claim
stops the run as a lost ownership does.

Recovery (``docs/storage.md``): a task starts only once the results of its dependencies are
committed, so a crash can lose only results nobody built on yet; tasks a resume re-queues
because their runner died, and attempts lost with a killed package worker, are recorded as
``task_recovered`` (row back to ``Pending``, ``recovery_attempts`` counted) and not charged to
the task's retry policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from cloaca.errors import StorageError
from cloaca.execution import events as ev
from cloaca.execution.events import TaskEvent
from cloaca.execution.result import FAILED, PENDING, ExecutionResult
from cloaca.execution.scheduler import AttemptGate, TaskCaller, execute_workflow
from cloaca.runner.attempts import make_gate
from cloaca.runner.event_log import event
from cloaca.runner.outputs import dump_delta, upstream_columns
from cloaca.runner.recovery import ResumePlan

if TYPE_CHECKING:
    from cloaca.runner.config import DefaultRunnerConfig
    from cloaca.runner.writer import Barrier, Writer


_WAIT = ThreadPoolExecutor(max_workers=16, thread_name_prefix="cloaca-durable")
"""Threads that wait for a dependency's result to be committed (see ``_durable_gate``)."""


class ExecutionDriver:
    """Runs one stored execution to its end and persists it (see the module docstring)."""

    def __init__(
        self,
        execution_id: str,
        plan: ResumePlan,
        initial: dict[str, Any],
        writer: Writer,
        config: DefaultRunnerConfig,
        on_done: Any = None,
        caller: TaskCaller | None = None,
        claim_attempts: bool = False,
    ) -> None:
        self.execution_id = execution_id
        self.plan = plan
        self.initial = initial
        self.writer = writer
        self.config = config
        self.on_done = on_done
        self.caller = caller
        self.claim_attempts = claim_attempts
        self.future: Future[ExecutionResult] = Future()
        self.lost_reason: str | None = None
        self._committed: dict[str, Barrier] = {}  # finished task -> barrier of its result
        self._recoveries = dict(plan.recoveries)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._thread = threading.Thread(
            target=self._main, name=f"cloaca-exec-{execution_id[:8]}", daemon=True
        )

    def start(self) -> None:
        """Start the execution's thread."""
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end."""
        self._thread.join(timeout)

    def running(self) -> bool:
        """True while the execution's thread runs."""
        return self._thread.is_alive()

    def stop(self, reason: str) -> None:
        """Cancel the run (ownership lost, or shutdown without waiting)."""
        self.lost_reason = reason
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # a closed loop: the run is over already
                loop.call_soon_threadsafe(task.cancel)

    # ------------------------------------------------------------------ the thread
    def _main(self) -> None:
        try:
            result = asyncio.run(self._run())
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt) or self.lost_reason:
                exc = StorageError(
                    f"execution {self.execution_id} stopped here: {self.lost_reason or exc}"
                )
            self.future.set_exception(exc)
        else:
            self.future.set_result(result)
        finally:
            if self.on_done is not None:
                self.on_done(self.execution_id)

    async def _run(self) -> ExecutionResult:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        if self.lost_reason is not None:
            raise asyncio.CancelledError
        cfg, plan, eid = self.config, self.plan, self.execution_id
        finished: set[str] = set()
        if plan.completed:  # resumed: rows written before 0004 may lack their links
            links = upstream_columns(plan.workflow.dag, plan.workflow.selection)
            for node, value in links.items():
                self.writer.update_task(eid, node, {"upstream": value})
        claim = None
        if self.claim_attempts:
            self.writer.flush()  # the task rows a claim updates must be committed first
            w = self.writer
            claim = make_gate(
                w.store, w.runner_id, eid, plan.offsets, plan.exhausted, self._refused
            )
        result = await execute_workflow(
            plan.workflow,
            self.initial,
            on_event=self._make_callback(finished),
            max_concurrency=cfg.max_concurrent_tasks,
            default_timeout=cfg.task_timeout_seconds,
            workflow_timeout=cfg.workflow_timeout_seconds,
            completed=plan.completed or None,
            execution_id=eid,
            caller=self.caller,
            before_attempt=self._durable_gate(claim),
            max_recoveries=cfg.max_recovery_attempts,
            recoveries=plan.recoveries,
        )
        write = self.writer.update_task
        for node, rec in result.tasks.items():
            if node in plan.offsets and node not in plan.completed:
                rec.attempts = plan.offsets[node] + (0 if node in plan.exhausted else rec.attempts)
            if rec.status == FAILED and rec.error is not None:
                write(
                    eid,
                    node,
                    {
                        "status": FAILED,
                        "attempts": rec.attempts,
                        "finished_at": rec.finished_at,
                        "error_type": rec.error.error_type,
                        "error_message": rec.error.message,
                        "traceback": rec.error.traceback,
                    },
                )
            elif node not in finished and node not in plan.completed and rec.status != PENDING:
                write(
                    eid,
                    node,
                    {
                        "status": rec.status,
                        "attempts": rec.attempts,
                        "finished_at": rec.finished_at,
                        "skip_reason": rec.skip_reason,
                    },
                )
        self.writer.update_execution(
            eid,
            {
                "status": result.status,
                "final_context": json.dumps(result.final_context._data),
                "error_message": result.error_message,
                "finished_at": result.finished_at,
            },
        )
        self.writer.flush()
        if self.lost_reason is not None:
            raise asyncio.CancelledError
        return result

    def _refused(self, reason: str) -> None:
        self.lost_reason = reason

    def _durable_gate(self, claim: AttemptGate | None) -> AttemptGate:
        """The scheduler's ``before_attempt`` gate: a task starts only once the results of its
        dependencies that finished in this run are committed (so no task ever builds on a
        result that a crash could still lose), then, with attempt claims, once its attempt is
        claimed."""
        deps = self.plan.workflow.dag.deps
        committed = self._committed

        async def before_attempt(node: str, attempt: int) -> bool:
            for dep in deps[node]:
                barrier = committed.get(dep)
                if barrier is None:
                    continue
                if not barrier.event.is_set():
                    await asyncio.get_running_loop().run_in_executor(_WAIT, barrier.event.wait)
                if barrier.error is not None:
                    self._refused(f"the result of task {dep!r} could not be recorded")
                    return False
                committed.pop(dep, None)
            if claim is None:
                return True
            return await claim(node, attempt)  # type: ignore[misc]

        return before_attempt

    def _make_callback(self, finished: set[str]) -> Any:
        put = self.writer.queue.put
        eid = self.execution_id
        offsets, exhausted = self.plan.offsets, self.plan.exhausted
        dumps = json.dumps
        log_event = self._event_recorder()

        dependents = self.plan.workflow.dag.dependents
        committed, recoveries = self._committed, self._recoveries
        barrier = self.writer.barrier

        def on_event(e: TaskEvent) -> None:
            kind, node = e.kind, e.task_id
            if kind == ev.TASK_RECOVERED and node is not None:
                recoveries[node] = recoveries.get(node, 0) + 1
            log_event(e)
            if node is None:
                if kind == ev.WORKFLOW_STARTED:
                    for lost in self.plan.recovered:  # re-queued: waiting to run again
                        queued = {"status": PENDING, "recovery_attempts": recoveries[lost]}
                        put(("t", eid, lost, queued))
                return
            off = offsets.get(node, 0)
            attempts = off if node in exhausted else off + e.attempt
            if kind == ev.TASK_STARTED:
                fields: dict[str, Any] = {"status": "Running", "attempts": attempts}
                if attempts == 1:
                    fields["started_at"] = e.at
            elif kind == ev.TASK_COMPLETED:
                finished.add(node)
                fields = {
                    "status": "Completed",
                    "attempts": attempts,
                    "finished_at": e.at,
                    # what the task changed (docs/storage.md); the whole output only when the
                    # scheduler did not say
                    "output_delta": None if e.delta is None else dump_delta(e.delta, e.removed),
                    "output": dumps(e.context) if e.delta is None else None,
                }
                if dependents[node]:
                    put(("t", eid, node, fields))
                    committed[node] = barrier()  # its dependents wait for this commit
                    return
            elif kind == ev.TASK_FAILED:
                finished.add(node)
                fields = {
                    "status": "Failed",
                    "attempts": attempts,
                    "finished_at": e.at,
                    "error_message": e.error,
                }
            elif kind == ev.TASK_SKIPPED:
                finished.add(node)
                fields = {"status": "Skipped", "finished_at": e.at, "skip_reason": e.error}
            elif kind == ev.TASK_RETRYING:
                fields = {"error_message": e.error}
            elif kind == ev.TASK_RECOVERED:
                fields = {
                    "status": PENDING,
                    "recovery_attempts": recoveries[node],
                    "error_message": e.error,
                }
            else:
                return
            put(("t", eid, node, fields))

        return on_event

    def _event_recorder(self) -> Any:
        """The scheduler event -> event-log rows mapping (:mod:`cloaca.runner.event_log`).

        A failed attempt that will be retried is recorded as ``task_failed`` (``will_retry``)
        then ``task_retrying``; tasks that only fail again on resume (their failure, or their
        last interrupted attempt, already decided) record no new ``task_started``.
        """
        put = self.writer.queue.put
        eid = self.execution_id
        offsets, exhausted, refailed = self.plan.offsets, self.plan.exhausted, self.plan.refailed
        recovered, recoveries = self.plan.recovered, self._recoveries
        budget = self.config.max_recovery_attempts

        def record(kind: str, node: str | None, data: dict[str, Any] | None, at: float) -> None:
            put(("v", eid, event(kind, node, data, at), True))

        def log_event(e: TaskEvent) -> None:
            kind, node, at = e.kind, e.task_id, e.at
            if node is None:
                if kind == ev.WORKFLOW_STARTED:
                    record(kind, None, None, at)
                    for lost, attempt in recovered.items():
                        data = _recovery(attempt, recoveries[lost], budget, RUNNER_DIED)
                        record(ev.TASK_RECOVERED, lost, data, at)
                elif kind in (ev.WORKFLOW_COMPLETED, ev.WORKFLOW_FAILED):
                    record(kind, None, {"error": e.error} if e.error else None, at)
                return
            off = offsets.get(node, 0)
            attempt = off if node in exhausted else off + e.attempt
            started = kind == ev.TASK_STARTED and node not in exhausted
            if started or kind == ev.TASK_COMPLETED:
                record(kind, node, {"attempt": attempt}, at)
            elif kind == ev.TASK_FAILED and node not in refailed:
                record(kind, node, _failure(attempt, e, will_retry=False), at)
            elif kind == ev.TASK_RETRYING:
                record(ev.TASK_FAILED, node, _failure(attempt, e, will_retry=True), at)
                record(kind, node, {"attempt": attempt, "next_attempt": attempt + 1}, at)
            elif kind == ev.TASK_SKIPPED:
                record(kind, node, {"reason": e.error}, at)
            elif kind == ev.TASK_RECOVERED:
                record(kind, node, _recovery(attempt, recoveries[node], budget, e.error), at)

        return log_event


def now() -> float:
    """Current time as stored in the database (UTC epoch seconds)."""
    return time.time()


RUNNER_DIED = "its runner died (process gone, or no heartbeat for longer than stale_after)"


def _recovery(attempt: int, recovery: int, budget: int, reason: str | None) -> dict[str, Any]:
    """Event data of ``task_recovered``: the lost attempt and the budget used so far."""
    return {"attempt": attempt, "recovery": recovery, "max_recoveries": budget, "reason": reason}


def _failure(attempt: int, e: TaskEvent, *, will_retry: bool) -> dict[str, Any]:
    """Event data of one failed attempt."""
    return {
        "attempt": attempt,
        "error": e.error,
        "error_type": e.error_type,
        "will_retry": will_retry,
    }
