"""Running a workflow to completion from synchronous code, with or without a running loop."""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloaca.context import Context
    from cloaca.execution.result import ExecutionResult
    from cloaca.workflow import Workflow

_MAIN_RUNNER: asyncio.Runner | None = None


def _main_runner() -> asyncio.Runner:
    global _MAIN_RUNNER
    if _MAIN_RUNNER is None:
        # loop_factory keeps the loop private: it is not installed as the thread's event loop
        _MAIN_RUNNER = asyncio.Runner(loop_factory=asyncio.new_event_loop)
        atexit.register(_MAIN_RUNNER.close)
    return _MAIN_RUNNER


class RunCanceller:
    """Lets another thread cancel a blocking run (a notebook's Ctrl-C, a UI's stop button).

    Pass it as ``Workflow.run(..., canceller=c)``; ``c.cancel()`` from any thread cancels the run:
    running async tasks are cancelled, tasks not started yet never start, and the blocking call
    raises :class:`asyncio.CancelledError`. Running sync tasks finish in their threads (Python
    cannot stop a thread); their results are ignored.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._target: tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = None
        self.cancelled = False

    def attach(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
        """Called by the run once it started (a cancel requested earlier applies at once)."""
        with self._lock:
            self._target = (loop, task)
            if self.cancelled:
                loop.call_soon_threadsafe(task.cancel)

    def cancel(self) -> None:
        """Cancel the run (idempotent; safe from any thread, before or after it started)."""
        with self._lock:
            self.cancelled = True
            if self._target is not None:
                loop, task = self._target
                if not loop.is_closed():
                    loop.call_soon_threadsafe(task.cancel)


def run_blocking(
    workflow: Workflow,
    context: Context | Mapping[str, Any] | None = None,
    *,
    canceller: RunCanceller | None = None,
    **options: Any,
) -> ExecutionResult:
    """Run :func:`execute_workflow` to completion from synchronous code.

    When this thread already runs an event loop (Jupyter, an async web app), the run happens on
    a private loop in a helper thread, so no "event loop is already running" error occurs.
    Ctrl-C (``KeyboardInterrupt``) cancels the run before it propagates; ``canceller`` lets
    another thread do the same.
    """
    from cloaca.execution.scheduler import execute_workflow

    handle = canceller or RunCanceller()

    async def main() -> ExecutionResult:
        task = asyncio.current_task()
        assert task is not None
        handle.attach(asyncio.get_running_loop(), task)
        return await execute_workflow(workflow, context, **options)

    try:
        asyncio.get_running_loop()
        in_loop = True
    except RuntimeError:
        in_loop = False
    if not in_loop:  # outside the except block: task tracebacks must not chain this RuntimeError
        if threading.current_thread() is threading.main_thread():
            # one loop for every run from the main thread: asyncio.run() would build and tear
            # down a loop per run (~70 µs, a tenth of a 100-task chain's cost); the Runner also
            # turns Ctrl-C into a cancellation of the run
            return _main_runner().run(main())
        return asyncio.run(main())
    box: list[Any] = []
    finished = threading.Event()

    def target() -> None:
        try:
            box.append(asyncio.run(main()))
        except BaseException as exc:  # re-raised in the caller's thread
            box.append(exc)
        finally:
            finished.set()

    threading.Thread(target=target, name="cloaca-run", daemon=True).start()
    try:
        # wait on an Event, not Thread.join(): an interrupted join() can mark a running thread
        # as stopped (CPython < 3.13), and the second join would then return at once
        finished.wait()
    except KeyboardInterrupt:
        # Ctrl-C / a kernel interrupt: cancel the run, let the scheduler clean up, re-raise
        handle.cancel()
        finished.wait()
        raise
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]
