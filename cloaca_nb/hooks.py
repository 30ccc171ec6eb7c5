"""The glue between an IPython shell and the kit: cell hooks, live widgets, display.

One :class:`NotebookKit` per shell holds the :class:`~cloaca_nb.session.NotebookSession`, listens
to ``@task`` declarations (:func:`cloaca.task.add_task_listener`) and to IPython's
``pre_run_cell``/``post_run_cell`` events, and keeps the DAG widgets shown so far up to date. The
magics and the public ``cloaca_nb.run``/``arun`` functions call into it.
"""

from __future__ import annotations

import contextlib
import sys
import weakref
from typing import TYPE_CHECKING, Any

from cloaca.task import add_task_listener, remove_task_listener
from cloaca_nb.session import NotebookSession

if TYPE_CHECKING:
    from cloaca_nb.dag_widget import DagWidget
    from cloaca_nb.result import NotebookResult

_kit: NotebookKit | None = None


class NotebookKit:
    """Everything ``%load_ext cloaca_nb`` installs into ``shell``."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.session = NotebookSession(module=shell.user_ns.get("__name__", "__main__"))
        self.widgets: weakref.WeakSet[DagWidget] = weakref.WeakSet()
        self.renderer = "auto"

    # ------------------------------------------------------------------ install
    def install(self) -> None:
        """Start listening to task declarations and cell runs."""
        add_task_listener(self.session.declare)
        self.shell.events.register("pre_run_cell", self.pre_run_cell)
        self.shell.events.register("post_run_cell", self.post_run_cell)
        self.session.subscribe(self._redraw)
        from cloaca_nb import showerror

        showerror.install(self.shell)
        # loaded from inside a cell (``%load_ext cloaca_nb`` then imports/tasks in the same
        # cell): pre_run_cell already fired for it, so start recording it now
        running: Any = getattr(getattr(self.shell, "displayhook", None), "exec_result", None)
        info = getattr(running, "info", None)
        if info is not None:
            self.session.begin_cell(
                info.raw_cell, running.execution_count, getattr(info, "cell_id", None)
            )

    def uninstall(self) -> None:
        """Undo :meth:`install`; the session's tasks are forgotten."""
        remove_task_listener(self.session.declare)
        for name, cb in (
            ("pre_run_cell", self.pre_run_cell),
            ("post_run_cell", self.post_run_cell),
        ):
            with contextlib.suppress(ValueError):
                self.shell.events.unregister(name, cb)
        self.session.unsubscribe(self._redraw)
        from cloaca_nb import showerror

        showerror.uninstall(self.shell)
        self.session.reset()
        self.widgets.clear()
        spare = sys.modules.get("cloaca_nb.spare")
        if spare is not None:  # only when an isolated --spare run happened
            spare.shutdown_spares()

    def pre_run_cell(self, info: Any) -> None:
        """IPython hook: a cell starts."""
        # IPython takes the cell's number and increments the counter before this event
        count = self.shell.execution_count - (1 if getattr(info, "store_history", False) else 0)
        self.session.begin_cell(info.raw_cell, count, getattr(info, "cell_id", None))

    def post_run_cell(self, result: Any) -> None:
        """IPython hook: a cell ended."""
        self.session.end_cell(failed=not result.success)

    # ------------------------------------------------------------------ widgets
    def dag_widget(self, renderer: str | None = None) -> DagWidget:
        """A new live DAG widget of the session (redrawn whenever task cells change)."""
        from cloaca_nb.dag_widget import DagWidget

        widget = DagWidget(self.session.graph(), renderer=renderer or self.renderer)
        self.widgets.add(widget)
        return widget

    def _redraw(self, session: NotebookSession) -> None:
        graph = session.graph()
        for widget in list(self.widgets):
            widget.refresh(graph)

    def filenames(self) -> dict[str, str]:
        """Cell pseudo-file -> ``cell In[n]``, from IPython's compiler cache."""
        mapping = getattr(getattr(self.shell, "compile", None), "_filename_map", {}) or {}
        return {name: f"cell In[{n}]" for name, n in mapping.items()}

    # ------------------------------------------------------------------ runs
    def run_widgets(self, show: bool, options: dict[str, Any]) -> tuple[list[DagWidget], Any]:
        """Check the run (a mistake raises before anything is drawn), then show its own widget.

        Returns the widgets the run recolours (its own and the live ``%cloaca_dag`` ones) and
        its own (None without ``show``), which :meth:`DagWidget.freeze` turns into the run's
        final picture when it ends; later runs and cell edits never change it.
        """
        from cloaca_nb.inkernel import plan
        from cloaca_nb.session import DEFAULT_WORKFLOW

        select = {k: options.get(k) for k in ("start_from", "only", "until")}
        plan(self.session, options.get("name", DEFAULT_WORKFLOW), **select)
        live = list(self.widgets)
        if not show:
            return live, None
        from cloaca_nb.dag_widget import DagWidget

        own = DagWidget(self.session.graph(), renderer=self.renderer)
        own.show()
        return [own, *live], own

    def run(self, context: Any = None, *, show: bool = True, **options: Any) -> NotebookResult:
        """Run in-kernel (see :func:`cloaca_nb.inkernel.run`), showing the run's DAG widget."""
        from cloaca_nb import inkernel

        widgets, own = self.run_widgets(show, options)
        try:
            result = inkernel.run(
                self.session, context, widgets=widgets, filenames=self.filenames(), **options
            )
        finally:
            if own is not None:
                own.freeze()
        self.report_failure(result)
        return result

    async def arun(
        self, context: Any = None, *, show: bool = True, **options: Any
    ) -> NotebookResult:
        """Run on the kernel's event loop (see :func:`cloaca_nb.inkernel.arun`)."""
        from cloaca_nb import inkernel

        widgets, own = self.run_widgets(show, options)
        try:
            result = await inkernel.arun(
                self.session, context, widgets=widgets, filenames=self.filenames(), **options
            )
        finally:
            if own is not None:
                own.freeze()
        self.report_failure(result)
        return result

    def report_failure(self, result: NotebookResult) -> None:
        """Show failed tasks' tracebacks (pointing at their cells) on stderr."""
        if result.status != "Completed":
            print(result.failure_report(), file=sys.stderr)


def install(shell: Any) -> NotebookKit:
    """Install the kit into ``shell`` (idempotent) and return it."""
    global _kit
    if _kit is not None and _kit.shell is shell:
        return _kit
    if _kit is not None:
        _kit.uninstall()
    _kit = NotebookKit(shell)
    _kit.install()
    from cloaca_nb.magics import CloacaMagics

    shell.register_magics(CloacaMagics)
    return _kit


def uninstall(shell: Any) -> None:
    """Remove the kit from ``shell``."""
    global _kit
    if _kit is not None and _kit.shell is shell:
        _kit.uninstall()
        _kit = None
    from cloaca_nb.magics import MAGIC_NAMES

    line_magics = shell.magics_manager.magics.get("line", {})
    for name in MAGIC_NAMES:
        line_magics.pop(name, None)


def current() -> NotebookKit:
    """The installed kit; raises :class:`~cloaca_nb.errors.NotebookError` when not loaded."""
    if _kit is None:
        from cloaca_nb.errors import NotebookError

        raise NotebookError("the notebook kit is not loaded: run `%load_ext cloaca_nb` first")
    return _kit
