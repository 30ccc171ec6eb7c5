"""In-kernel runs of the session workflow, with live widget updates.

:func:`run` blocks: the engine runs the workflow on its own event loop in a helper thread (so no
"event loop is already running" error in a kernel), its events go through a queue, and the
calling thread -- the kernel's main thread -- applies them to the widgets. Widget traits are
therefore only ever set from the thread that owns the kernel's comms.

:func:`arun` is the ``await``-able form for cells (IPython's autoawait): it runs the workflow on
the kernel's own running event loop, so async tasks can use objects bound to that loop (clients
and sessions created in other cells). Sync tasks still run on the engine's thread pool.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cloaca import TaskEvent, Workflow
from cloaca.execution.blocking import RunCanceller
from cloaca_nb.dag_widget import DagWidget
from cloaca_nb.result import NotebookResult
from cloaca_nb.session import DEFAULT_WORKFLOW, NotebookSession

if TYPE_CHECKING:
    from cloaca.execution.scheduler import TaskCaller

_DONE = object()


def plan(
    session: NotebookSession,
    name: str = DEFAULT_WORKFLOW,
    start_from: str | None = None,
    only: Sequence[str] | None = None,
    until: str | None = None,
) -> tuple[Workflow, dict[str, Any], list[str]]:
    """The workflow, the engine's selection options and the selected task ids of a run.

    Raises
    ------
    NoTasksError, WorkflowValidationError, TaskSelectionError
        The DAG or the selection is wrong (checked before anything is shown or run).
    """
    workflow = session.workflow(name)
    options: dict[str, Any] = {
        "start_from": start_from,
        "only": list(only or []) or None,
        "until": until,
    }
    selected = workflow.task_ids
    if start_from or only or until:
        sub = workflow.subset(start_from, only, until)
        selected = [t for t in workflow.task_ids if sub.selection is None or t in sub.selection]
    return workflow, options, list(selected)


def _prepare(
    session: NotebookSession,
    name: str,
    start_from: str | None,
    only: Sequence[str] | None,
    until: str | None,
    widgets: Sequence[DagWidget],
) -> tuple[Workflow, dict[str, Any]]:
    workflow, options, selected = plan(session, name, start_from, only, until)
    for widget in widgets:
        widget.begin_run(selected)
    return workflow, options


def _wrap(
    session: NotebookSession, result: Any, filenames: Mapping[str, str] | None
) -> NotebookResult:
    cells = {}
    names = dict(filenames or {})
    for task_id, spec in session.specs().items():
        cell = session.cell_of(task_id)
        if cell is not None:
            cells[task_id] = cell.label
            if spec.source is not None and spec.source.filename:
                names.setdefault(spec.source.filename, cell.label)
    return NotebookResult(result, cells, names)


def run(
    session: NotebookSession,
    context: Mapping[str, Any] | None = None,
    *,
    start_from: str | None = None,
    only: Sequence[str] | None = None,
    until: str | None = None,
    widgets: Sequence[DagWidget] = (),
    max_concurrency: int = 4,
    name: str = DEFAULT_WORKFLOW,
    filenames: Mapping[str, str] | None = None,
    caller: TaskCaller | None = None,
    retries: bool = True,
) -> NotebookResult:
    """Run the session's tasks in this process and block until they finish.

    Parameters
    ----------
    session:
        The notebook session whose tasks run.
    context:
        Initial context (JSON values).
    start_from, only, until:
        Sub-DAG selection (see :meth:`cloaca.Workflow.subset`).
    widgets:
        DAG widgets recoloured live and given the final state.
    max_concurrency:
        How many tasks may run at once.
    name:
        Workflow name.
    filenames:
        Cell pseudo-file -> cell label, used to name cells in tracebacks.
    caller:
        Where task attempts run (e.g. a ``DaskExecutor``; default: this process).
    retries:
        False: every task gets a single attempt, whatever its retry policy.

    Returns
    -------
    NotebookResult
        Also on failure; check ``.status`` or call ``.raise_for_status()``.

    Raises
    ------
    NoTasksError, WorkflowValidationError, TaskSelectionError
        Before anything runs.
    """
    workflow, options = _prepare(session, name, start_from, only, until, widgets)
    if not widgets:
        result = workflow.run(
            context, max_concurrency=max_concurrency, caller=caller, retries=retries, **options
        )
        return _wrap(session, result, filenames)
    events: queue.Queue[Any] = queue.Queue()
    box: list[Any] = []
    canceller = RunCanceller()

    def target() -> None:
        try:
            box.append(
                workflow.run(
                    context,
                    on_event=events.put,
                    max_concurrency=max_concurrency,
                    caller=caller,
                    retries=retries,
                    canceller=canceller,
                    **options,
                )
            )
        except BaseException as exc:  # re-raised in the caller's thread
            box.append(exc)
        finally:
            events.put(_DONE)

    thread = threading.Thread(target=target, name="cloaca-nb-run", daemon=True)
    thread.start()

    def apply_until_done() -> None:
        while (item := events.get()) is not _DONE:
            for widget in widgets:
                widget.apply_event(item)

    try:
        apply_until_done()
    except KeyboardInterrupt:
        # Ctrl-C / "interrupt kernel": cancel the run, show where it stopped, then re-raise
        canceller.cancel()
        apply_until_done()
        for widget in widgets:
            widget.interrupt_run()
        raise
    finally:
        thread.join()
        for widget in widgets:
            widget.finish_run()
    if isinstance(box[0], BaseException):
        raise box[0]
    return _wrap(session, box[0], filenames)


async def arun(
    session: NotebookSession,
    context: Mapping[str, Any] | None = None,
    *,
    start_from: str | None = None,
    only: Sequence[str] | None = None,
    until: str | None = None,
    widgets: Sequence[DagWidget] = (),
    max_concurrency: int = 4,
    name: str = DEFAULT_WORKFLOW,
    filenames: Mapping[str, str] | None = None,
    caller: TaskCaller | None = None,
    retries: bool = True,
) -> NotebookResult:
    """Like :func:`run`, awaited on the running event loop (``await cloaca_nb.arun()``)."""
    workflow, options = _prepare(session, name, start_from, only, until, widgets)

    def on_event(event: TaskEvent) -> None:
        for widget in widgets:
            widget.apply_event(event)

    result = await workflow.arun(
        context,
        on_event=on_event,
        max_concurrency=max_concurrency,
        caller=caller,
        retries=retries,
        **options,
    )
    for widget in widgets:
        widget.finish_run()
    return _wrap(session, result, filenames)
