"""The notebook kit's errors: a subtree of :class:`cloaca.errors.CloacaError`.

Structured facts are attributes, the message is built in ``__str__``, every error pickles.

::

    CloacaError
    └── NotebookError                 (message)
        ├── TaskCellConflictError     (task_id, cell, other_cell)   one id defined in two cells
        ├── NoTasksError              ()                            the session has no tasks yet
        ├── IsolatedRunError          (task_id, error_type, notebook_path, cell_index, traceback)
        ├── ServerRunError            (server, hint)                %cloaca_run --server could not
        │                                                           reach or use the server
        └── ExportError               (task_id, name)               %cloaca_build could not export
            └── UnresolvedNameError   (task_id, name)               a name no cell defines

    UserWarning
    └── TaskRedefinedWarning          (task_id, cell, other_cell)   no cell ids: a cell took over
"""

from __future__ import annotations

from cloaca.errors import CloacaError


class NotebookError(CloacaError):
    """Base of every error raised on purpose by :mod:`cloaca_nb`."""


class TaskCellConflictError(NotebookError, ValueError):
    """Task ``task_id`` is defined in ``cell`` but ``other_cell`` already defines it."""

    _fields = ("message", "task_id", "cell", "other_cell")
    task_id: str | None
    cell: str | None
    other_cell: str | None

    def describe(self) -> str:
        return (
            f"task {self.task_id!r} is defined in {self.cell} but {self.other_cell} already "
            f"defines it. Rename one of them, or delete it from {self.other_cell} and re-run "
            f"that cell (if that cell is gone, run `%cloaca_tasks --forget {self.task_id}`)."
        )


class NoTasksError(NotebookError):
    """The session has no tasks: nothing to show, run or build."""

    def describe(self) -> str:
        return self.message or (
            "no task cells yet: define a function with `@task` (from cloaca import task) in a "
            "cell after `%load_ext cloaca_nb`."
        )


class IsolatedRunError(NotebookError):
    """An isolated (papermill) run failed.

    ``task_id``/``error_type``/``message`` describe the failing task, or the failing cell of the
    generated notebook (``cell_index``) when no task was reached; ``notebook_path`` is the
    executed notebook, kept for debugging.
    """

    _fields = ("message", "task_id", "error_type", "notebook_path", "cell_index", "traceback")
    task_id: str | None
    error_type: str | None
    notebook_path: str | None
    cell_index: int | None
    traceback: str | None

    def describe(self) -> str:
        kind = f"{self.error_type}: " if self.error_type else ""
        if self.task_id:
            what = f"task {self.task_id!r} failed in the isolated run: {kind}{self.message}"
        elif self.cell_index is not None:
            what = f"cell {self.cell_index} of the isolated notebook failed: {kind}{self.message}"
        else:
            what = f"the isolated run failed: {kind}{self.message}"
        return f"{what}\nExecuted notebook kept at {self.notebook_path}"


class ServerRunError(NotebookError):
    """``%cloaca_run --server``: the server at ``server`` cannot be reached, refused the key,
    or the target (profile, URL) cannot be resolved; ``hint`` says what to do next."""

    _fields = ("message", "server", "hint")
    server: str | None
    hint: str | None

    def describe(self) -> str:
        text = self.message
        if self.server and self.server not in text:
            text = f"{self.server}: {text}"
        return f"{text}; {self.hint}" if self.hint else text


class TaskRedefinedWarning(UserWarning):
    """Without front-end cell ids, ``cell`` re-declared task ``task_id`` of ``other_cell``.

    The kit then takes ``cell`` to be a new version of ``other_cell``: it replaces that cell (its
    code too) in isolated runs and exports, at that cell's place.
    """

    def __init__(self, task_id: str, cell: str, other_cell: str) -> None:
        self.task_id, self.cell, self.other_cell = task_id, cell, other_cell
        super().__init__(task_id, cell, other_cell)

    def __str__(self) -> str:
        return (
            f"{self.cell} re-declares task {self.task_id!r}, which {self.other_cell} defined. "
            f"Without cell ids (papermill, nbconvert, terminal IPython) {self.cell} now replaces "
            f"{self.other_cell}, its code too, in isolated runs and %cloaca_build. If both cells "
            "should stay, give one of the tasks another id."
        )

    def __reduce__(self) -> tuple[type[TaskRedefinedWarning], tuple[str, str, str]]:
        return (TaskRedefinedWarning, (self.task_id, self.cell, self.other_cell))


class ExportError(NotebookError):
    """The session's tasks could not be exported as a package."""

    _fields = ("message", "task_id", "name")
    task_id: str | None
    name: str | None


class UnresolvedNameError(ExportError):
    """Task ``task_id`` uses ``name``, which no cell of the notebook defines."""

    def describe(self) -> str:
        return (
            f"task {self.task_id!r} uses the name {self.name!r}, which no cell defines "
            "(it may have been loaded interactively or deleted). Define it in a cell (an import, "
            "a function, a constant), or pass it through the context instead."
        )


__all__ = [
    "ExportError",
    "IsolatedRunError",
    "NoTasksError",
    "NotebookError",
    "ServerRunError",
    "TaskCellConflictError",
    "TaskRedefinedWarning",
    "UnresolvedNameError",
]
