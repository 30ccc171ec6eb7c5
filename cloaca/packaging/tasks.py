"""The package's task list: decorator findings merged with ``[tool.cloaca.tasks]``, then checked.

``[tool.cloaca.tasks]`` may fill in what a decorator leaves out (``@task`` with no arguments plus a
table giving its dependencies, retry policy or callbacks) or repeat it; it may not contradict it.
Table values use the manifest's JSON shape (``retry``, ``trigger_rules`` as tables, callbacks as
``"module:function"`` strings). Each merged entry is checked by the rules ``@task`` enforces
(through :func:`~cloaca.packaging.spec_codec.entry_to_spec`) and the graph by the engine's one
validator, :func:`cloaca.dag.build_dag`, so a bad package is never written.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from cloaca.dag import build_dag
from cloaca.errors import BuildError, TaskDefinitionError, WorkflowValidationError
from cloaca.packaging.discovery import DiscoveredTask
from cloaca.packaging.manifest import RetryEntry, TaskEntry, TriggerRule
from cloaca.packaging.spec_codec import FunctionRef, entry_to_spec

#: the fields ``[tool.cloaca.tasks]`` may set
TABLE_KEYS = (
    "dependencies",
    "description",
    "retries",
    "timeout_seconds",
    "retry",
    "trigger_rules",
    "on_success",
    "on_failure",
)
_RULE: TypeAdapter[Any] = TypeAdapter(TriggerRule)


def merge_tasks(
    discovered: Sequence[DiscoveredTask],
    overrides: dict[str, dict[str, Any]],
    project: Path | None = None,
) -> list[TaskEntry]:
    """Merge decorator findings with ``[tool.cloaca.tasks]`` and validate the result.

    Parameters
    ----------
    discovered:
        Tasks read from the decorators, in source order.
    overrides:
        ``[tool.cloaca.tasks]``: task id -> any of :data:`TABLE_KEYS`.
    project:
        The project directory, for error messages.

    Returns
    -------
    list[TaskEntry]
        The manifest's ``tasks``, in source order.

    Raises
    ------
    BuildError
        No tasks, a duplicate id, an override for an unknown task, a conflict between decorator
        and table (naming the task and field), an invalid option, an unknown dependency, or a
        cycle.
    """
    where = str(project) if project else None
    if not discovered:
        raise BuildError(
            "no tasks found: the entry module (and the project modules it imports) define no "
            "@task functions. Decorate your task functions with `@task` (from cloaca import task).",
            path=where,
        )
    by_id: dict[str, DiscoveredTask] = {}
    for found in discovered:
        if found.id in by_id:
            raise BuildError(
                f"duplicate task id {found.id!r}: defined at {by_id[found.id].location} and at "
                f"{found.location}. Give one of them another id (@task(id=...)).",
                path=where,
            )
        by_id[found.id] = found
    for task_id in overrides:
        if task_id not in by_id:
            close = difflib.get_close_matches(task_id, list(by_id), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise BuildError(
                f"[tool.cloaca.tasks] configures unknown task {task_id!r}.{hint} "
                f"Known tasks: {', '.join(by_id)}.",
                path=where,
            )
    entries = [_merge_one(found, overrides.get(found.id, {}), where) for found in discovered]
    check_graph(entries, where)
    return entries


def _merge_one(found: DiscoveredTask, table: dict[str, Any], where: str | None) -> TaskEntry:
    values = found.entry.model_dump()
    try:
        for key, given in table.items():
            if key in found.explicit and _norm(key, values[key]) != _norm(key, given):
                raise BuildError(
                    f"task {found.id!r}: [tool.cloaca.tasks] sets {key} = {given!r} but the "
                    f"decorator at {found.location} says {values[key]!r}. Keep one of the two.",
                    path=where,
                )
            values[key] = given
        if "retry" in table and "retries" not in table and isinstance(table["retry"], dict):
            values["retries"] = RetryEntry.model_validate(table["retry"]).max_attempts - 1
        entry = TaskEntry.model_validate(values)
        # the rules @task enforces, on what the table added (nothing is imported)
        entry_to_spec(entry, _no_import)
    except (ValidationError, TaskDefinitionError) as exc:
        raise BuildError(f"task {found.id!r}: invalid task options: {exc}", path=where) from exc
    return entry


def _no_import(field: str, ref: str) -> Callable[..., Any]:
    return FunctionRef(ref)


def _norm(key: str, value: Any) -> Any:
    """A comparable form of a field given by the decorator or by the table."""
    try:
        if key == "dependencies":
            return sorted(value or ())
        if key == "retry":
            return RetryEntry.model_validate(value).model_dump() if value else None
        if key == "trigger_rules":
            return _RULE.validate_python(value).model_dump() if value else None
        if key == "timeout_seconds":
            return float(value) if value is not None else None
        if key == "retries":
            return value or 0
    except (ValidationError, TypeError, ValueError):
        return ("invalid", repr(value))  # never equal to a valid decorator value
    return value


def check_graph(entries: Sequence[TaskEntry], where: str | None = None) -> None:
    """Validate the task graph with the engine's one validator (:func:`cloaca.dag.build_dag`).

    Dependencies of the form ``"other-package::task-id"`` name another package's task and are
    left to the loader.

    Raises
    ------
    BuildError
        An unknown dependency (with a close match) or a cycle (as a path).
    """
    try:
        build_dag({e.id: [d for d in e.dependencies if "::" not in d] for e in entries})
    except WorkflowValidationError as exc:
        raise BuildError(str(exc), path=where) from exc
