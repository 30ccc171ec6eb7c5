"""How the kit's user errors appear in a cell: one clear line, no internal frames.

A mistake -- an unknown dependency, a misspelt ``--from`` task, one task id in two cells, a
failed isolated run -- is shown like IPython's own ``UsageError``: the error's name and its
message, nothing from ``magics.py``, ``hooks.py`` or the engine. :func:`install` registers
:func:`show_user_error` as the shell's handler for :data:`USER_ERRORS` (IPython's
``set_custom_exc``); the exception still reaches the front end as an error (``ename`` is the
class name, so "stop on error" and papermill behave as before). An isolated run's failing task
keeps its own traceback (cell frames only) above the line. Anything else -- a bug in a task, in
the kit or in the engine -- keeps IPython's full traceback.
"""

from __future__ import annotations

from typing import Any

from cloaca.errors import (
    ExecutorError,
    PackageError,
    TaskDefinitionError,
    TaskExecutionError,
    WorkflowError,
)
from cloaca_nb.errors import IsolatedRunError, NotebookError

USER_ERRORS: tuple[type[BaseException], ...] = (
    WorkflowError,  # UnknownDependencyError, CycleError, TaskSelectionError ...
    TaskDefinitionError,
    TaskExecutionError,  # --raise: the failed task's traceback was already printed
    PackageError,  # %cloaca_build
    ExecutorError,  # --dask ADDRESS unreachable
    NotebookError,  # TaskCellConflictError, NoTasksError, IsolatedRunError, ExportError ...
)
_RED, _RESET = "\x1b[0;31m", "\x1b[0m"


def error_lines(value: BaseException) -> list[str]:
    """What a user error shows: an isolated run's task traceback, then ``Name: message``."""
    lines = []
    if isinstance(value, IsolatedRunError) and value.task_id and value.traceback:
        lines.append(value.traceback.rstrip())
    lines.append(f"{_RED}{type(value).__name__}{_RESET}: {value}")
    return lines


def show_user_error(
    shell: Any, etype: type[BaseException], value: BaseException, tb: Any, tb_offset: Any = None
) -> list[str]:
    """IPython custom exception handler: show :func:`error_lines` as the cell's error."""
    lines = error_lines(value)
    shell._showtraceback(etype, value, lines)
    return lines


def install(shell: Any) -> bool:
    """Register :func:`show_user_error` unless the shell already has a custom handler; True
    when it was registered."""
    if getattr(shell, "custom_exceptions", None) or not hasattr(shell, "set_custom_exc"):
        return False
    shell.set_custom_exc(USER_ERRORS, show_user_error)
    return True


def uninstall(shell: Any) -> None:
    """Remove the handler :func:`install` registered (and only that one)."""
    if getattr(shell, "custom_exceptions", None) == USER_ERRORS:
        shell.set_custom_exc((), None)
