"""The live DAG widget: an anywidget model whose traits hold the drawing and each node's state.

Python owns the state (``nodes``: task id -> status, colour, duration, error; ``done``/``total``
for the progress bar; ``svg``/``dot`` for the drawing) and the front end
(``static/dag_widget.js``) only paints it, so tests read the model directly. During a run the
scheduler's events are applied with :meth:`DagWidget.apply_event`; the in-kernel runner calls it
from the kernel's main thread (see :mod:`cloaca_nb.inkernel`), so traits are never set from the
scheduler's thread. Outside a widget-aware front end the widget falls back to its SVG.

A run's own widget is shown with :meth:`DagWidget.show` and, when the run ends,
:meth:`DagWidget.freeze` replaces that output by the run's final picture (SVG with the run's
statuses and a caption, plus a text line): the live widget while it runs, a picture that never
changes afterwards -- in JupyterLab as in saved notebooks, nbconvert HTML, GitHub and nbviewer.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from cloaca import TaskEvent
from cloaca_nb.render import (
    FAILED,
    PENDING,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    NodeState,
    render_svg,
    to_dot,
)
from cloaca_nb.session import SessionGraph

_EVENT_STATUS = {
    "task_started": RUNNING,
    "task_retrying": RUNNING,
    "task_recovered": RUNNING,  # its worker was lost; the task runs again
    "task_completed": SUCCEEDED,
    "task_failed": FAILED,
    "task_skipped": SKIPPED,
}


class DagWidget(anywidget.AnyWidget):
    """The session DAG, drawn and recoloured live.

    Parameters
    ----------
    graph:
        The session graph to draw (:meth:`cloaca_nb.session.NotebookSession.graph`).
    renderer:
        ``"auto"`` (``dot`` when present, else the Python fallback), ``"dot"`` or ``"python"``.
    """

    _esm = Path(__file__).parent / "static" / "dag_widget.js"
    svg = traitlets.Unicode("").tag(sync=True)
    dot = traitlets.Unicode("").tag(sync=True)
    nodes = traitlets.Dict().tag(sync=True)
    problems = traitlets.List(traitlets.Unicode()).tag(sync=True)
    done = traitlets.Int(0).tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    run_status = traitlets.Unicode("").tag(sync=True)

    def __init__(self, graph: SessionGraph, renderer: str = "auto", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.renderer = renderer
        self.graph = graph
        self._states: dict[str, NodeState] = {}
        self._handle: Any = None
        self.refresh(graph)

    # ------------------------------------------------------------------ drawing
    def refresh(self, graph: SessionGraph | None = None) -> None:
        """Redraw (after cells changed the DAG, or at the end of a run); states are kept."""
        if graph is not None:
            self.graph = graph
            ids = {n.id for n in self.graph.nodes if not n.missing}
            self._states = {k: v for k, v in self._states.items() if k in ids}
            for node_id in ids:
                self._states.setdefault(node_id, NodeState())
        self.problems = list(self.graph.problems)
        self.dot = to_dot(self.graph, self._states)
        self.svg = render_svg(self.graph, self._states, self.renderer)
        self.nodes = {k: v.to_dict() for k, v in self._states.items()}

    def to_svg(self, caption: str | None = None) -> str:
        """The current drawing, node states baked in (``caption`` under it)."""
        return render_svg(self.graph, self._states, self.renderer, caption)

    def progress(self) -> str:
        """The progress line: ``3/4 tasks · running`` (empty before any run)."""
        if not self.total:
            return ""
        return f"{self.done}/{self.total} tasks" + (
            f" · {self.run_status}" if self.run_status else ""
        )

    def save_svg(self, path: str | Path) -> Path:
        """Write :meth:`to_svg` to ``path`` and return it."""
        out = Path(path)
        out.write_text(self.to_svg(), encoding="utf-8")
        return out

    # ------------------------------------------------------------------ run state
    def status_of(self, task_id: str) -> str:
        """The node's status (pending, running, succeeded, failed, skipped)."""
        return self._states[task_id].status

    def begin_run(self, selected: Iterable[str]) -> None:
        """Reset the selected nodes to pending and the progress bar to 0/len(selected)."""
        chosen = list(selected)
        for task_id in chosen:
            self._states[task_id] = NodeState()
        self.done, self.total, self.run_status = 0, len(chosen), "running"
        self.nodes = {k: v.to_dict() for k, v in self._states.items()}

    def apply_event(self, event: TaskEvent) -> None:
        """Recolour the node an engine event is about, and count finished tasks."""
        if event.task_id is None:
            if event.kind in ("workflow_completed", "workflow_failed"):
                self.run_status = "succeeded" if event.kind == "workflow_completed" else "failed"
            return
        status = _EVENT_STATUS.get(event.kind)
        if status is None or event.task_id not in self._states:
            return
        self._states[event.task_id] = NodeState(
            status, event.duration, event.error, max(event.attempt, 1)
        )
        if status in (SUCCEEDED, FAILED, SKIPPED):
            self.done += 1
        self.nodes = {**self.nodes, event.task_id: self._states[event.task_id].to_dict()}

    def interrupt_run(self) -> None:
        """Mark the run interrupted (Ctrl-C): running tasks show as failed, "interrupted"."""
        for task_id, state in list(self._states.items()):
            if state.status == RUNNING:
                self._states[task_id] = NodeState(
                    FAILED, state.duration, "interrupted", state.attempt
                )
        self.nodes = {tid: st.to_dict() for tid, st in self._states.items()}
        self.run_status = "interrupted"

    def finish_run(self) -> None:
        """Bake the final states into the SVG (for exports and front ends without widgets)."""
        self.refresh()

    def show(self) -> None:
        """Display the widget in the running cell with a display id (see :meth:`freeze`)."""
        from IPython.display import display

        self._handle = display(self, display_id=True)

    def freeze(self) -> None:
        """Replace the output of :meth:`show` by the final picture and close the widget.

        The picture is static (``image/svg+xml`` with a caption, and ``text/plain``), so it
        shows this run as it ended wherever the notebook is opened, and nothing changes it.
        """
        if self._handle is not None:
            self._handle.update(FinalPicture(self.to_svg(self.progress()), self.summary()))
            self._handle = None
        self.close()

    def summary(self) -> str:
        """One text line: progress and each node's status (the picture's ``text/plain``)."""
        nodes = ", ".join(f"{k}: {v.line}" for k, v in self._states.items())
        return f"DAG of the run: {self.progress() or 'not run'} ({nodes})"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):
            data["image/svg+xml"] = self.svg
        return bundle


class FinalPicture:
    """A run's final picture: displayed in place of its widget when the run ends."""

    def __init__(self, svg: str, text: str) -> None:
        self.svg, self.text = svg, text

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, str]:
        return {"image/svg+xml": self.svg, "text/plain": self.text}


__all__ = ["FAILED", "PENDING", "RUNNING", "SKIPPED", "SUCCEEDED", "DagWidget", "FinalPicture"]
