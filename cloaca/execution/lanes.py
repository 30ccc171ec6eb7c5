"""Fast paths for plain sync tasks (no timeout, no handle): inline and "lanes".

A sync task that is the only runnable work (a chain) runs inline in the scheduler's thread with
no thread hop. Sync tasks that become ready together (a fan-out) are queued and drained by up to
``max_concurrency`` lanes, each a loop in one pool thread holding one concurrency slot: one
thread hop per lane instead of one per task, and completions sent back in batches. Both paths
are used only when no timeout applies, because a timeout needs the scheduler free to give up on
the task, and when no ``before_attempt`` gate is set (every gated attempt goes through the
scheduler's general path, where the gate is asked first).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cloaca.context import Context, owned_copy, task_output
from cloaca.execution import events as ev
from cloaca.execution.result import RUNNING
from cloaca.execution.state import RunState, to_task_error

POOL = ThreadPoolExecutor(max_workers=32, thread_name_prefix="cloaca-task")
"""The thread pool every run shares for sync tasks."""


class LanesMixin(RunState):
    """The inline and lane paths; :meth:`spawn` and :meth:`on_done` come from the scheduler."""

    def spawn(self, node: str, attempt: int = 1, delay: float = 0.0) -> None:
        """Start ``node`` as an asyncio task (implemented by the scheduler)."""
        raise NotImplementedError

    def on_done(self, fut: asyncio.Future[Any]) -> None:
        """Bookkeeping when a node's asyncio task ends (implemented by the scheduler)."""
        raise NotImplementedError

    def is_plain_sync(self, node: str) -> bool:
        """A sync task with no handle and no timeout: it may run inline or on a lane."""
        spec = self.wf.tasks[node]
        return (
            not spec.is_async
            and not spec.accepts_handle
            and self.timeout_of(spec) is None
            and self.caller is None
            and self.before_attempt is None
        )

    def attempt_sync(self, node: str, inp: dict[str, Any]) -> tuple[Any, Exception | None]:
        """Run attempt 1 of a plain sync task in the calling thread; return (output, error)."""
        rec = self.records[node]
        rec.status, rec.attempts, rec.started_at = RUNNING, 1, time.time()
        given = owned_copy(inp)
        ctx = Context._trusted(dict(given))
        try:
            return task_output(node, self.wf.tasks[node].fn(ctx), ctx, given), None
        except Exception as exc:
            return None, exc

    def settle(self, node: str, inp: dict[str, Any], out: Any, exc: Exception | None) -> None:
        """Record the outcome of a first sync attempt (on the loop thread); retry if allowed."""
        spec = self.wf.tasks[node]
        if exc is None:
            self.succeed(node, spec, inp, out)
            return
        err = to_task_error(node, exc)
        if self.may_retry(spec, 1, err):
            self.emit(ev.TASK_RETRYING, node, attempt=1, error=str(err), error_type=err.error_type)
            self.spawn(node, 2, spec.retry.delay_for(1))
        else:
            self.fail(node, spec, err, inp)

    def lane_body(self) -> None:
        """In a pool thread: run queued tasks until the queue is empty, reporting in batches."""
        assert self.loop is not None
        done: list[tuple[str, dict[str, Any], Any, Exception | None]] = []
        last_post = time.perf_counter()
        while True:
            try:
                node, inp = self.lane_queue.popleft()
            except IndexError:
                break
            if self.on_event is not None:
                self.loop.call_soon_threadsafe(self.emit_started, node)
            out, exc = self.attempt_sync(node, inp)
            done.append((node, inp, out, exc))
            # completions go back in batches (at most ~1 ms late) to spare loop wake-ups
            now = time.perf_counter()
            if now - last_post > 0.001 or not self.lane_queue:
                self.loop.call_soon_threadsafe(self.lane_done, done)
                done, last_post = [], now
        if done:
            self.loop.call_soon_threadsafe(self.lane_done, done)

    def emit_started(self, node: str) -> None:
        """Emit ``task_started`` for a task a lane picked up (on the loop thread)."""
        self.emit(ev.TASK_STARTED, node, attempt=1)

    def lane_done(self, batch: list[tuple[str, dict[str, Any], Any, Exception | None]]) -> None:
        """Settle a batch of lane results on the loop thread and wake the main loop."""
        for node, inp, out, exc in batch:
            self.settle(node, inp, out, exc)
        assert self.wake is not None
        self.wake.set()

    async def lane(self) -> None:
        """One lane: hold a concurrency slot while a pool thread drains the queue."""
        assert self.sem is not None and self.loop is not None
        async with self.sem:
            await self.loop.run_in_executor(POOL, self.lane_body)

    def start_lanes(self) -> None:
        """Start lanes for queued tasks, up to the concurrency bound."""
        while self.lane_queue and self.lanes < min(self.max_concurrency, len(self.lane_queue)):
            self.lanes += 1
            fut = asyncio.ensure_future(self.lane())
            self.active.add(fut)
            fut.add_done_callback(self.on_lane_done)

    def on_lane_done(self, fut: asyncio.Future[Any]) -> None:
        """A lane ended: count it down and do the usual bookkeeping."""
        self.lanes -= 1
        self.on_done(fut)
