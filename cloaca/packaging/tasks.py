"""The package's task list: decorator findings merged with ``[tool.cloaca.tasks]``, then checked.

``[tool.cloaca.tasks]`` may fill in what a decorator leaves out (``@task`` with no arguments plus a
table giving its dependencies) or repeat it; it may not contradict it. The merged graph is checked
here (unique ids, known dependencies, no cycle) so a bad package is never written.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cloaca.errors import BuildError
from cloaca.packaging.discovery import DiscoveredTask
from cloaca.packaging.manifest import TaskEntry

_DEFAULTS: dict[str, Any] = {
    "dependencies": (),
    "description": None,
    "retries": 0,
    "timeout_seconds": None,
}


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
        ``[tool.cloaca.tasks]``: task id -> ``dependencies``/``description``/``retries``/
        ``timeout_seconds``.
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
        and table (naming the task and field), an unknown dependency, or a cycle.
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
    values: dict[str, Any] = {
        "dependencies": found.dependencies,
        "description": found.description,
        "retries": found.retries,
        "timeout_seconds": found.timeout_seconds,
    }
    for key, given in table.items():
        given = tuple(given) if key == "dependencies" and isinstance(given, list) else given
        if key in found.explicit and _norm(key, values[key]) != _norm(key, given):
            raise BuildError(
                f"task {found.id!r}: [tool.cloaca.tasks] sets {key} = {given!r} but the decorator "
                f"at {found.location} says {values[key]!r}. Keep one of the two.",
                path=where,
            )
        values[key] = given
    try:
        return TaskEntry(
            id=found.id,
            function=found.function,
            dependencies=list(values["dependencies"]),
            description=values["description"],
            retries=values["retries"],
            timeout_seconds=values["timeout_seconds"],
        )
    except ValueError as exc:  # pydantic ValidationError
        raise BuildError(f"task {found.id!r}: invalid task options: {exc}", path=where) from exc


def _norm(key: str, value: Any) -> Any:
    if key == "dependencies":
        return sorted(value or ())
    return value if value is not None else _DEFAULTS[key]


def check_graph(entries: Sequence[TaskEntry], where: str | None = None) -> None:
    """Raise :class:`BuildError` for an unknown dependency or a dependency cycle.

    Dependencies of the form ``"other-package::task-id"`` name another package's task and are not
    checked here.
    """
    ids = [e.id for e in entries]
    known = set(ids)
    for entry in entries:
        for dep in entry.dependencies:
            if "::" not in dep and dep not in known:
                close = difflib.get_close_matches(dep, ids, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise BuildError(
                    f"task {entry.id!r} depends on unknown task {dep!r}.{hint} "
                    "Fix the id in dependencies=[...] or define that task.",
                    path=where,
                )
    graph = {e.id: [d for d in e.dependencies if "::" not in d] for e in entries}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in ids:
        cycle = _find_cycle(start, graph, state, [])
        if cycle:
            raise BuildError(
                f"dependency cycle: {' -> '.join(cycle)}. Remove one of these dependencies.",
                path=where,
            )


def _find_cycle(
    node: str, graph: dict[str, list[str]], state: dict[str, int], path: list[str]
) -> list[str] | None:
    if state.get(node) == 2:
        return None
    if state.get(node) == 1:
        return [*path[path.index(node) :], node]
    state[node] = 1
    path.append(node)
    for dep in graph[node]:
        cycle = _find_cycle(dep, graph, state, path)
        if cycle:
            return cycle
    path.pop()
    state[node] = 2
    return None
