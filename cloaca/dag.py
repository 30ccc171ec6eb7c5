"""The task graph: validation (unknown ids with close matches, cycles), topological order,
levels, ancestors/descendants and sub-DAG selection.

Works on plain ids so that every front end (cells, modules, packages, the server) shares it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from cloaca.errors import CycleError, TaskSelectionError, UnknownDependencyError


@dataclass(frozen=True)
class Dag:
    """A validated DAG.

    ``order`` is a deterministic topological order (Kahn's algorithm, ties broken by declaration
    order), ``index`` maps a node to its position in it; ``levels`` groups nodes whose
    dependencies are all in earlier levels.
    """

    deps: dict[str, tuple[str, ...]]
    dependents: dict[str, tuple[str, ...]]
    order: tuple[str, ...]
    index: dict[str, int]
    levels: tuple[tuple[str, ...], ...]
    _ancestors: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    def ancestors(self, node: str) -> frozenset[str]:
        """Every node ``node`` depends on, directly or not (cached)."""
        found = self._ancestors.get(node)
        if found is None:
            acc: set[str] = set()
            for dep in self.deps[node]:
                acc.add(dep)
                acc |= self.ancestors(dep)
            found = frozenset(acc)
            self._ancestors[node] = found
        return found

    def descendants(self, node: str) -> set[str]:
        """Every node that depends on ``node``, directly or not."""
        out: set[str] = set()
        stack = list(self.dependents[node])
        while stack:
            n = stack.pop()
            if n not in out:
                out.add(n)
                stack.extend(self.dependents[n])
        return out

    def roots(self) -> list[str]:
        """Nodes without dependencies, in order."""
        return [n for n in self.order if not self.deps[n]]

    def leaves(self) -> list[str]:
        """Nodes nothing depends on, in order."""
        return [n for n in self.order if not self.dependents[n]]

    def check_node(self, node: str, workflow: str | None = None) -> str:
        """Return ``node`` if it exists, else raise :class:`TaskSelectionError` with hints."""
        if node not in self.deps:
            raise TaskSelectionError(
                workflow=workflow,
                task_id=node,
                suggestions=difflib.get_close_matches(node, list(self.deps), n=3),
            )
        return node

    def select(
        self,
        start_from: str | None = None,
        only: Sequence[str] | None = None,
        until: str | None = None,
        workflow: str | None = None,
    ) -> set[str]:
        """Nodes selected by ``start_from`` (it and its descendants), ``until`` (it and its
        ancestors) and ``only`` (exactly those); several selectors intersect."""
        selected = set(self.order)
        if start_from is not None:
            self.check_node(start_from, workflow)
            selected &= {start_from} | self.descendants(start_from)
        if until is not None:
            self.check_node(until, workflow)
            selected &= {until} | set(self.ancestors(until))
        if only:
            selected &= {self.check_node(n, workflow) for n in only}
        return selected


def _find_cycle(deps: Mapping[str, Sequence[str]], nodes: Iterable[str]) -> list[str]:
    """Return one cycle among ``nodes`` as a path whose first id is repeated at the end."""
    state: dict[str, int] = {}  # 1 = on stack, 2 = done
    for start in nodes:
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack:
            node, i = stack.pop()
            if i == 0:
                state[node] = 1
                path.append(node)
            children = deps[node]
            if i < len(children):
                stack.append((node, i + 1))
                child = children[i]
                if state.get(child) == 1:
                    return [*path[path.index(child) :], child]
                if not state.get(child):
                    stack.append((child, 0))
            else:
                state[node] = 2
                path.pop()
    return []  # pragma: no cover - only called when a cycle exists


def _cross_package_detail(dep: str, nodes: list[str]) -> str:
    """For a ``package::task`` dependency, say whether the package or only the task is missing."""
    if "::" not in dep:
        return ""
    package, task_id = dep.split("::", 1)
    tasks = [n.split("::", 1)[1] for n in nodes if n.startswith(package + "::")]
    if not tasks:
        loaded = sorted({n.split("::", 1)[0] for n in nodes if "::" in n})
        return (
            f"package {package!r} is not loaded (loaded packages: {loaded or 'none'}). "
            "Load it before building the workflow."
        )
    close = difflib.get_close_matches(task_id, tasks, n=3)
    hint = f" Did you mean {', '.join(repr(f'{package}::{c}') for c in close)}?" if close else ""
    return f"package {package!r} has no task {task_id!r} (its tasks: {sorted(tasks)}).{hint}"


def build_dag(deps: Mapping[str, Sequence[str]], workflow: str | None = None) -> Dag:
    """Validate ``deps`` (node -> its dependencies, in declaration order) and build a :class:`Dag`.

    Raises
    ------
    UnknownDependencyError
        A dependency names no node (with close-match suggestions).
    CycleError
        The graph has a cycle (its path is in the error).
    """
    nodes = list(deps)
    for node in nodes:
        for dep in deps[node]:
            if dep not in deps:
                raise UnknownDependencyError(
                    _cross_package_detail(dep, nodes),
                    workflow=workflow,
                    task_id=node,
                    dependency=dep,
                    suggestions=difflib.get_close_matches(dep, nodes, n=3),
                )
    dependents: dict[str, list[str]] = {n: [] for n in nodes}
    remaining = {n: len(set(deps[n])) for n in nodes}
    for node in nodes:
        for dep in dict.fromkeys(deps[node]):
            dependents[dep].append(node)
    position = {n: i for i, n in enumerate(nodes)}
    level_of: dict[str, int] = {}
    order: list[str] = []
    frontier = [n for n in nodes if remaining[n] == 0]
    while frontier:
        # deterministic: declaration order within each wave
        frontier.sort(key=position.__getitem__)
        next_frontier: list[str] = []
        for node in frontier:
            order.append(node)
            level_of[node] = 1 + max((level_of[d] for d in deps[node]), default=-1)
            for child in dependents[node]:
                remaining[child] -= 1
                if remaining[child] == 0:
                    next_frontier.append(child)
        frontier = next_frontier
    if len(order) != len(nodes):
        stuck = [n for n in nodes if n not in level_of]
        raise CycleError(workflow=workflow, cycle=_find_cycle(deps, stuck))
    levels: list[list[str]] = [[] for _ in range(1 + max(level_of.values(), default=-1))]
    for node in order:
        levels[level_of[node]].append(node)
    return Dag(
        deps={n: tuple(dict.fromkeys(deps[n])) for n in nodes},
        dependents={n: tuple(v) for n, v in dependents.items()},
        order=tuple(order),
        index={n: i for i, n in enumerate(order)},
        levels=tuple(tuple(lv) for lv in levels),
    )
