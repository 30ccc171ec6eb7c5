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


def run_blocking(
    workflow: Workflow, context: Context | Mapping[str, Any] | None = None, **options: Any
) -> ExecutionResult:
    """Run :func:`execute_workflow` to completion from synchronous code.

    When this thread already runs an event loop (Jupyter, an async web app), the run happens on
    a private loop in a helper thread, so no "event loop is already running" error occurs.
    """
    from cloaca.execution.scheduler import execute_workflow

    try:
        asyncio.get_running_loop()
        in_loop = True
    except RuntimeError:
        in_loop = False
    if not in_loop:  # outside the except block: task tracebacks must not chain this RuntimeError
        if threading.current_thread() is threading.main_thread():
            # one loop for every run from the main thread: asyncio.run() would build and tear
            # down a loop per run (~70 µs, a tenth of a 100-task chain's cost)
            return _main_runner().run(execute_workflow(workflow, context, **options))
        return asyncio.run(execute_workflow(workflow, context, **options))
    box: list[Any] = []

    def target() -> None:
        try:
            box.append(asyncio.run(execute_workflow(workflow, context, **options)))
        except BaseException as exc:  # re-raised in the caller's thread
            box.append(exc)

    thread = threading.Thread(target=target, name="cloaca-run", daemon=True)
    thread.start()
    thread.join()
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]
