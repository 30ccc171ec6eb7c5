"""Bookkeeping of one workflow run: per-task records, how contexts flow and merge, and the
transitions every task goes through (begin, succeed, fail, skip, finish).

Context flow (Cloacina's executor): a task without dependencies receives the initial context; a
task with one dependency receives that dependency's output; a task with several receives their
outputs merged in its declared dependency order by :mod:`cloaca.execution.merge` (arrays
concatenated without duplicates, objects merged recursively, otherwise the later dependency
wins). The final context is merged by the same rule from the outputs of the tasks at the end of
the run (those no finished task depends on), in topological order.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import traceback
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from cloaca.context import Context
from cloaca.errors import ErrorText, TaskExecutionError
from cloaca.execution import events as ev
from cloaca.execution.events import EventCallback, TaskEvent
from cloaca.execution.merge import merge_contexts
from cloaca.execution.result import COMPLETED, FAILED, PENDING, RUNNING, SKIPPED, TaskResult
from cloaca.task import TaskHandle, TaskSpec

if TYPE_CHECKING:
    from cloaca.dag import Dag
    from cloaca.workflow import Workflow

log = logging.getLogger("cloaca.execution")

TaskCaller = Callable[[str, TaskSpec, Context, "TaskHandle | None"], Any]
AttemptGate = Callable[[str, int], "bool | Awaitable[bool]"]
"""``before_attempt(node, attempt)``: may veto an attempt (False) before it starts."""


def to_task_error(task_id: str, exc: BaseException) -> TaskExecutionError:
    """Wrap any exception as a picklable :class:`TaskExecutionError` for ``task_id``."""
    if isinstance(exc, TaskExecutionError):
        if exc.task_id is None:
            exc.task_id = task_id
        return exc
    return TaskExecutionError(
        str(exc) or type(exc).__name__,
        task_id=task_id,
        error_type=type(exc).__name__,
        traceback="".join(traceback.format_exception(exc)),
    )


def merged_input(
    dag: Dag,
    node: str,
    initial: dict[str, Any],
    outputs: Mapping[str, dict[str, Any]],
    records: Mapping[str, TaskResult],
) -> dict[str, Any]:
    """The context ``node`` receives (see the module docstring).

    ``records`` holds the selected tasks (only they count as dependencies); ``outputs`` the full
    output of finished ones (completed, or skipped by a trigger rule: their input passes
    through). Shared by the scheduler and by the durable runner when it rebuilds a resumed
    execution's writes.
    """
    deps = [outputs[d] for d in dag.deps[node] if d in records and d in outputs]
    if not deps:
        return initial
    if len(deps) == 1:
        return deps[0]
    return merge_contexts(deps)


def merged_final(
    dag: Dag, initial: dict[str, Any], outputs: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    """A run's final context: the outputs no other finished task consumed, merged in
    topological order like a fan-in (the initial context when no task finished)."""
    ends = [
        n
        for n in sorted(outputs, key=dag.index.__getitem__)
        if not any(child in outputs for child in dag.dependents[n])
    ]
    if not ends:
        return dict(initial)
    return merge_contexts(outputs[n] for n in ends)


class RunState:
    """Records and context bookkeeping of one run; the scheduler drives the transitions."""

    before_attempt: AttemptGate | None = None
    max_recoveries: int = 3
    retries: bool = True  # False: every task gets a single attempt (``--no-retry``)

    def may_retry(self, spec: TaskSpec, attempt: int, err: TaskExecutionError) -> bool:
        """Whether failed attempt ``attempt`` of ``spec`` is tried again."""
        return self.retries and spec.retry.should_retry(attempt, err.error_type or "", err.message)

    def __init__(
        self,
        workflow: Workflow,
        initial: dict[str, Any],
        selected: set[str],
        on_event: EventCallback | None,
        max_concurrency: int,
        default_timeout: float | None,
        completed: Mapping[str, TaskResult] | None,
        caller: TaskCaller | None,
    ) -> None:
        self.wf, self.dag = workflow, workflow.dag
        self.initial = initial
        self.selected = selected
        self.on_event = on_event
        self.max_concurrency = max(1, max_concurrency)
        self.default_timeout = default_timeout
        self.caller = caller
        self.records = {n: TaskResult(n) for n in self.dag.order if n in selected}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.blocked: dict[str, str] = {}  # node -> failed task that blocks it
        self.ready: deque[str] = deque()
        self.pending_events: list[asyncio.Future[Any]] = []
        self.remaining = {
            n: sum(1 for d in self.dag.deps[n] if d in selected) for n in self.records
        }
        for node, rec in (completed or {}).items():
            if node in self.records and rec.status in (COMPLETED, SKIPPED):
                self.records[node] = rec
        self.sem: asyncio.Semaphore | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.wake: asyncio.Event | None = None
        self.active: set[asyncio.Future[Any]] = set()
        self.crashed: list[BaseException] = []
        self.lane_queue: deque[tuple[str, dict[str, Any]]] = deque()
        self.lanes = 0
        self.started: dict[str, int] = {}  # node -> attempt whose task_started was sent
        self.recoveries: dict[str, int] = {}  # node -> recoveries used (lost attempts)

    # ------------------------------------------------------------------ helpers
    def emit(self, kind: str, task_id: str | None = None, **kw: Any) -> None:
        """Send one event to the listener (a coroutine it returns is awaited before the end)."""
        if self.on_event is None:
            return
        try:
            out = self.on_event(TaskEvent(kind, task_id, at=time.time(), **kw))
            if out is not None and asyncio.iscoroutine(out):
                self.pending_events.append(asyncio.ensure_future(out))
        except Exception:  # a broken listener must not break the run
            log.exception("event callback failed for %s %s", kind, task_id)

    def callback(self, fn: Callable[..., Any], node: str, *args: Any) -> None:
        """Call an ``on_success``/``on_failure`` callback; an exception is logged, never raised.

        A callback returning an awaitable (a packaged task's callback, which runs in the task's
        worker) is awaited before the run ends, like an async event listener.
        """
        out = _callback(fn, node, *args)
        if out is not None and inspect.isawaitable(out):
            self.pending_events.append(asyncio.ensure_future(_await_callback(fn, node, out)))

    def input_for(self, node: str) -> dict[str, Any]:
        """The context ``node`` receives: the initial one plus its upstream writes, in order."""
        return merged_input(self.dag, node, self.initial, self.outputs, self.records)

    def timeout_of(self, spec: TaskSpec) -> float | None:
        """The task's own timeout, else the run's default (None: no limit)."""
        return spec.timeout_seconds if spec.timeout_seconds is not None else self.default_timeout

    def finish(self, node: str) -> None:
        """Close a failed or skipped ``node``: store its output and release its dependents."""
        rec = self.records[node]
        if rec.status == COMPLETED:
            self.outputs[node] = _apply(self.input_for(node), rec)
        elif rec.status == SKIPPED and node not in self.blocked:
            self.outputs[node] = self.input_for(node)
        for child in self.dag.dependents[node]:
            if child not in self.records:
                continue
            if node in self.blocked or rec.status == FAILED:
                self.blocked.setdefault(child, self.blocked.get(node, node))
            self.remaining[child] -= 1
            if self.remaining[child] == 0:
                self.ready.append(child)

    def skip(self, node: str, reason: str) -> None:
        """Mark ``node`` skipped for ``reason`` and release its dependents."""
        rec = self.records[node]
        rec.status, rec.skip_reason = SKIPPED, reason
        rec.finished_at = time.time()
        self.emit(ev.TASK_SKIPPED, node, error=reason)
        self.finish(node)

    def succeed(self, node: str, spec: TaskSpec, inp: dict[str, Any], out: dict[str, Any]) -> None:
        """Record a completed task: its writes, its output, events and callback."""
        rec = self.records[node]
        rec.delta = {k: v for k, v in out.items() if k not in inp or inp[k] is not v}
        rec.removed = tuple(k for k in inp if k not in out)
        rec.status, rec.finished_at = COMPLETED, time.time()
        self.outputs[node] = out
        self.emit(
            ev.TASK_COMPLETED,
            node,
            attempt=rec.attempts,
            duration=rec.duration,
            context=out,
            delta=rec.delta,
            removed=rec.removed,
        )
        if spec.on_success is not None:
            self.callback(spec.on_success, node, Context._trusted(out))
        for child in self.dag.dependents[node]:
            if child in self.records:
                self.remaining[child] -= 1
                if self.remaining[child] == 0:
                    self.ready.append(child)

    def fail(self, node: str, spec: TaskSpec, err: TaskExecutionError, inp: dict[str, Any]) -> None:
        """Record a failed task (no retry left) and block its dependents."""
        rec = self.records[node]
        rec.status, rec.error, rec.finished_at = FAILED, err, time.time()
        self.emit(
            ev.TASK_FAILED,
            node,
            attempt=rec.attempts,
            duration=rec.duration,
            error=str(err),
            error_type=err.error_type,
        )
        if spec.on_failure is not None:
            self.callback(spec.on_failure, node, ErrorText(err), Context._trusted(dict(inp)))
        self.finish(node)

    def begin(self, node: str) -> dict[str, Any] | None:
        """Prepare ``node``: skip it (upstream failure / trigger rule) or return its input.

        A task whose rule reads task states (``task_failed(...)`` ...) decides for itself after
        an upstream failure: its rule is evaluated like any other time, and the failure does
        not reach past it (upstream's evaluation). Any other task is skipped.
        """
        rules = self.wf.tasks[node].trigger_rules
        handles_failure = rules is not None and bool(rules.task_refs())
        if node in self.blocked and not handles_failure:
            self.skip(node, f"upstream failed: {self.blocked[node]}")
            return None
        self.blocked.pop(node, None)
        inp = self.input_for(node)
        if rules is not None and not rules.evaluate(inp, self.dep_statuses(node)):
            self.skip(node, "trigger rule false")
            return None
        return inp

    def dep_statuses(self, node: str) -> dict[str, str]:
        """How each dependency of ``node`` ended (task id → status); a dependency outside the
        selected sub-DAG is assumed done (Completed), as its context is."""
        return {
            d: self.records[d].status if d in self.records else COMPLETED
            for d in self.dag.deps[node]
        }

    def cancel_unfinished(self, reason: str) -> None:
        """Fail running tasks and skip pending ones (the workflow timed out)."""
        now = time.time()
        for rec in self.records.values():
            if rec.status == RUNNING:
                rec.status, rec.finished_at = FAILED, now
                rec.error = TaskExecutionError(reason, task_id=rec.task_id, error_type="Cancelled")
            elif rec.status == PENDING:
                rec.status, rec.skip_reason, rec.finished_at = SKIPPED, reason, now

    def final_context(self) -> Context:
        """The run's final context (see :func:`merged_final`)."""
        return Context._trusted(merged_final(self.dag, self.initial, self.outputs))


def _apply(inp: dict[str, Any], rec: TaskResult) -> dict[str, Any]:
    out = dict(inp)
    out.update(rec.delta)
    for key in rec.removed:
        out.pop(key, None)
    return out


def _callback(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception:
        log.exception(
            "callback %s for task %r raised; ignored", getattr(fn, "__name__", fn), args[0]
        )
        return None


async def _await_callback(fn: Callable[..., Any], task_id: str, pending: Awaitable[Any]) -> None:
    try:
        await pending
    except Exception:
        log.exception(
            "callback %s for task %r raised; ignored", getattr(fn, "__name__", fn), task_id
        )


def initial_dict(context: Context | Mapping[str, Any] | None) -> dict[str, Any]:
    """A validated plain-dict copy of an initial context given as Context, mapping or None."""
    if context is None:
        return {}
    if isinstance(context, Context):
        return context.to_dict()
    return Context(context).to_dict()
