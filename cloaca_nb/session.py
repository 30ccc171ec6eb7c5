"""The notebook session: which cell defined which task, and what re-running a cell means.

A :class:`NotebookSession` is fed by three calls that the IPython hooks make (see
:mod:`cloaca_nb.hooks`): :meth:`~NotebookSession.begin_cell` before a cell runs,
:meth:`~NotebookSession.declare` for every ``@task`` declared while it runs, and
:meth:`~NotebookSession.end_cell` after it. The rules:

* re-running a cell replaces the tasks it defined, by id (the registry keeps their position);
* a task whose id was edited, or that was deleted from the cell, disappears with the re-run;
* two cells defining the same id is a :class:`~cloaca_nb.errors.TaskCellConflictError` raised
  at the ``@task`` line of the second cell, naming both cells.

Cells are identified by the front end's cell id (JupyterLab, Notebook 7, VS Code send one). Every
cell has a *place*: the order in which it first ran. Re-running a cell (same id) keeps its place,
so replays (isolated runs, ``%cloaca_build``) follow each cell's place, not the order of the last
runs. When the front end sends no id (terminal IPython, papermill, nbconvert), a cell that
re-declares a task id is taken to be a new version of the cell that owned it: it takes that
cell's place, and a :class:`~cloaca_nb.errors.TaskRedefinedWarning` naming both cells says so.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from typing import Any

from cloaca import TaskRegistry, TaskSpec, Workflow
from cloaca.errors import CycleError, UnknownDependencyError, WorkflowValidationError
from cloaca_nb.errors import NoTasksError, TaskCellConflictError, TaskRedefinedWarning

DEFAULT_WORKFLOW = "notebook"


@dataclass
class CellRecord:
    """The latest run of one cell: its source, prompt number and the task ids it defined."""

    key: str
    execution_count: int | None
    source: str
    cell_id: str | None = None
    task_ids: list[str] = field(default_factory=list)
    sequence: int = 0  # when it last ran
    place: int = 0  # when it first ran: replays (isolated runs, exports) follow this order
    failed: bool = False

    @property
    def label(self) -> str:
        """How messages name the cell: ``cell In[3]`` (plus its id when the front end sent one)."""
        prompt = f"In[{self.execution_count}]" if self.execution_count is not None else "?"
        return f"cell {prompt}" + (f" (id {self.cell_id[:8]})" if self.cell_id else "")


@dataclass(frozen=True)
class GraphNode:
    """One node of :meth:`NotebookSession.graph`; ``missing`` marks an undefined dependency."""

    id: str
    cell: str | None = None
    description: str | None = None
    missing: bool = False


@dataclass(frozen=True)
class SessionGraph:
    """The session DAG as drawn: nodes, ``(dependency, task)`` edges and what is wrong with it."""

    nodes: list[GraphNode]
    edges: list[tuple[str, str]]
    problems: list[str]
    cycle: list[str]

    @property
    def ok(self) -> bool:
        """True when the DAG is valid (no missing dependency, no cycle)."""
        return not self.problems


class NotebookSession:
    """The task registry of one notebook kernel.

    Parameters
    ----------
    module:
        ``__module__`` of functions defined in cells (``"__main__"`` in IPython); tasks declared
        by imported modules are not session tasks.
    """

    def __init__(self, module: str = "__main__") -> None:
        self.module = module
        self.registry = TaskRegistry()
        self.cells: dict[str, CellRecord] = {}
        self.owner: dict[str, str] = {}  # task id -> cell key
        self._current: CellRecord | None = None
        self._declared: dict[str, TaskSpec] = {}
        self._sequence = 0
        self._places = 0
        self._observers: list[Callable[[NotebookSession], None]] = []

    # ------------------------------------------------------------------ cell lifecycle
    def begin_cell(self, source: str, execution_count: int | None, cell_id: str | None) -> None:
        """A cell is about to run."""
        key = cell_id or f"In[{execution_count}]"
        self._current = CellRecord(key, execution_count, source, cell_id)
        self._declared = {}

    def declare(self, spec: TaskSpec) -> None:
        """A ``@task`` was declared; attribute it to the running cell.

        Raises
        ------
        TaskCellConflictError
            Another cell (identified by a front-end cell id) already defines this id, or this
            cell defines it twice.
        """
        cell = self._current
        if cell is None or (spec.source is not None and spec.source.module != self.module):
            return
        if spec.id in self._declared and self._declared[spec.id].fn is not spec.fn:
            raise TaskCellConflictError(task_id=spec.id, cell=cell.label, other_cell=cell.label)
        owner_key = self.owner.get(spec.id)
        if owner_key is not None and owner_key != cell.key and owner_key in self.cells:
            other = self.cells[owner_key]
            if cell.cell_id is not None and other.cell_id is not None:
                raise TaskCellConflictError(
                    task_id=spec.id, cell=cell.label, other_cell=other.label
                )
            if cell.cell_id is None and spec.id not in self._declared:
                warnings.warn(
                    TaskRedefinedWarning(task_id=spec.id, cell=cell.label, other_cell=other.label),
                    stacklevel=2,
                )
        self._declared[spec.id] = spec

    def end_cell(self, failed: bool = False) -> None:
        """The running cell finished: commit its tasks (a failed cell only adds or replaces)."""
        cell, declared = self._current, self._declared
        self._current, self._declared = None, {}
        if cell is None:
            return
        if cell.cell_id is None:  # no front-end id: a re-declared id names the cell it came from
            for task_id in declared:
                owner_key = self.owner.get(task_id)
                if owner_key is not None and owner_key != cell.key:
                    cell.key = owner_key
                    break
        previous = self.cells.get(cell.key)
        old_ids = previous.task_ids if previous else []
        if previous is not None:
            cell.place = previous.place
        else:
            self._places += 1
            cell.place = self._places
        self._sequence += 1
        cell.sequence, cell.failed = self._sequence, failed
        cell.task_ids = list(declared)
        if failed:
            cell.task_ids += [t for t in old_ids if t not in declared]
        for task_id in old_ids:
            if task_id not in cell.task_ids:
                self.registry.remove(task_id)
                self.owner.pop(task_id, None)
        for task_id, spec in declared.items():
            prior = self.owner.get(task_id)
            if prior is not None and prior != cell.key and prior in self.cells:
                self.cells[prior].task_ids.remove(task_id)  # moved from a cell without an id
            self.registry.add(spec)
            self.owner[task_id] = cell.key
        self.cells[cell.key] = cell
        if declared or old_ids:
            self._notify()

    # ------------------------------------------------------------------ queries and edits
    def cell_of(self, task_id: str) -> CellRecord | None:
        """The cell that defined ``task_id``, or None."""
        key = self.owner.get(task_id)
        return self.cells.get(key) if key else None

    def cells_in_place_order(self) -> list[CellRecord]:
        """Every cell the session saw, ordered by place (see the module docstring)."""
        return sorted(self.cells.values(), key=lambda c: c.place)

    def task_ids(self) -> list[str]:
        """Session task ids in definition order."""
        return self.registry.keys()

    def specs(self) -> dict[str, TaskSpec]:
        """Session tasks by id, in definition order."""
        return dict(self.registry.items())

    def forget(self, task_id: str) -> bool:
        """Drop ``task_id`` from the session (e.g. its cell was deleted); True when it existed."""
        key = self.owner.pop(task_id, None)
        if key is None:
            return False
        self.registry.remove(task_id)
        if key in self.cells and task_id in self.cells[key].task_ids:
            self.cells[key].task_ids.remove(task_id)
        self._notify()
        return True

    def reset(self) -> None:
        """Forget every task and cell."""
        self.registry.clear()
        self.cells.clear()
        self.owner.clear()
        self._notify()

    def workflow(self, name: str = DEFAULT_WORKFLOW) -> Workflow:
        """Build the session's :class:`cloaca.Workflow`.

        Raises
        ------
        NoTasksError
            No task cell has run yet.
        WorkflowValidationError
            Unknown dependency or cycle (from the engine's DAG validation).
        """
        specs = self.specs()
        if not specs:
            raise NoTasksError()
        return Workflow(name, specs)

    def graph(self) -> SessionGraph:
        """The DAG as it should be drawn, including missing dependencies and cycles."""
        specs = self.specs()
        nodes: dict[str, GraphNode] = {}
        for task_id, spec in specs.items():
            cell = self.cell_of(task_id)
            nodes[task_id] = GraphNode(task_id, cell.label if cell else None, spec.description)
        edges, problems, cycle = [], [], []
        for task_id, spec in specs.items():
            for dep in spec.dependencies:
                if dep not in specs and dep not in nodes:
                    nodes[dep] = GraphNode(dep, missing=True)
                if dep not in specs:
                    problems.append(str(UnknownDependencyError(task_id=task_id, dependency=dep)))
                edges.append((dep, task_id))
        if specs and not problems:
            try:
                Workflow(DEFAULT_WORKFLOW, specs)
            except CycleError as exc:
                cycle = list(exc.cycle or [])
                problems.append(str(exc))
            except WorkflowValidationError as exc:  # pragma: no cover - other validation
                problems.append(str(exc))
        return SessionGraph(list(nodes.values()), edges, problems, cycle)

    # ------------------------------------------------------------------ observers
    def subscribe(self, observer: Callable[[NotebookSession], None]) -> None:
        """Call ``observer(session)`` whenever the set of tasks changes (live widgets)."""
        self._observers.append(observer)

    def unsubscribe(self, observer: Callable[[NotebookSession], None]) -> None:
        """Stop notifying ``observer``."""
        if observer in self._observers:
            self._observers.remove(observer)

    def _notify(self) -> None:
        for observer in list(self._observers):
            observer(self)

    def __repr__(self) -> str:
        return f"NotebookSession(tasks={self.task_ids()!r})"


class TaskTable(list[dict[str, Any]]):
    """``%cloaca_tasks``: a list of ``{"task", "dependencies", "cell"}`` rows that shows as a
    table (text in a terminal, HTML in a notebook)."""

    _HEAD = ("task", "depends on", "defined in")

    def _cells(self) -> list[tuple[str, str, str]]:
        return [(r["task"], ", ".join(r["dependencies"]) or "-", r["cell"] or "-") for r in self]

    def __repr__(self) -> str:
        if not self:
            return "no tasks in the session yet"
        rows = [self._HEAD, *self._cells()]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(line.rstrip() for line in lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))

    def _repr_html_(self) -> str:
        if not self:
            return "<p>no tasks in the session yet</p>"
        head = "".join(f"<th>{escape(h)}</th>" for h in self._HEAD)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
            for row in self._cells()
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def describe_cells(session: NotebookSession) -> TaskTable:
    """One row per task: id, dependencies and defining cell (for ``%cloaca_tasks``)."""
    rows = TaskTable()
    for task_id, spec in session.specs().items():
        cell = session.cell_of(task_id)
        rows.append(
            {
                "task": task_id,
                "dependencies": list(spec.dependencies),
                "cell": cell.label if cell else None,
            }
        )
    return rows
