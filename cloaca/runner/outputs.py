"""Stored task outputs as deltas: what each task changed, not the whole context again.

A completed task's row holds ``output_delta`` — ``{"set": {...}, "removed": [...]}``, the keys
it wrote and the keys it deleted against the input it was given — and every task row holds
``upstream`` — ``{"deps": [...], "via": [...]}``: its selected direct dependencies, and the
selected tasks it depends on only through tasks left out of the selection. That is enough to
rebuild every task's input and output from the execution's initial context exactly as the
scheduler built them (:func:`cloaca.execution.state.merged_input`), so storage grows with what
tasks change, not with tasks times context size.

Rows written before migration 0004 hold the whole output in ``output`` instead; they are read
as they are (:func:`completed_output`), and can be mixed with delta rows in one execution (an
execution resumed after an upgrade).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloaca.dag import Dag

COMPLETED = "Completed"
SKIPPED = "Skipped"
UPSTREAM_FAILED = "upstream failed"


def dump_delta(delta: Mapping[str, Any], removed: Iterable[str]) -> str:
    """The ``output_delta`` column value of a completed task."""
    return json.dumps({"set": dict(delta), "removed": list(removed)})


def upstream_columns(dag: Dag, selected: set[str] | None) -> dict[str, str]:
    """The ``upstream`` column value of every selected task (all tasks when ``selected`` is
    None): its selected direct dependencies and those reached through unselected tasks."""
    chosen = set(dag.order) if selected is None else selected
    reach: dict[str, set[str]] = {}

    def through(node: str) -> set[str]:  # selected tasks above an unselected ``node``
        if node not in reach:
            found: set[str] = set()
            for dep in dag.deps[node]:
                found |= {dep} if dep in chosen else through(dep)
            reach[node] = found
        return reach[node]

    out = {}
    for node in dag.order:
        if node not in chosen:
            continue
        deps = [d for d in dag.deps[node] if d in chosen]
        via: set[str] = set()
        for dep in dag.deps[node]:
            if dep not in chosen:
                via |= through(dep)
        value: dict[str, Any] = {"deps": deps}
        if via - set(deps):
            value["via"] = sorted(via - set(deps), key=dag.index.__getitem__)
        out[node] = json.dumps(value)
    return out


def completed_output(
    row: Mapping[str, Any], inp: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], tuple[str, ...]]:
    """``(output, delta, removed)`` of a completed task row whose input was ``inp``.

    Works for delta rows (``output_delta``) and for rows that stored the whole output.
    """
    if row.get("output_delta"):
        stored = json.loads(row["output_delta"])
        delta, removed = stored["set"], tuple(stored["removed"])
        out = dict(inp)
        out.update(delta)
        for key in removed:
            out.pop(key, None)
        return out, delta, removed
    out = json.loads(row["output"]) if row.get("output") else {}
    delta = {k: v for k, v in out.items() if k not in inp or inp[k] != v}
    return out, delta, tuple(k for k in inp if k not in out)


def rebuild_outputs(
    initial: dict[str, Any], rows: list[Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The output of every completed task of an execution, from its task rows (in workflow
    order) and its initial context — the values the scheduler produced."""
    index = {r["task_id"]: i for i, r in enumerate(rows)}
    links: dict[str, tuple[list[str], list[str]]] = {}
    for r in rows:
        up = json.loads(r["upstream"]) if r.get("upstream") else {}
        deps = [d for d in up.get("deps", []) if d in index]
        links[r["task_id"]] = (deps, deps + [v for v in up.get("via", []) if v in index])
    status = {r["task_id"]: r["status"] for r in rows}
    outputs: dict[str, dict[str, Any]] = {}  # what a task hands its dependents
    deltas: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {}
    result: dict[str, dict[str, Any]] = {}

    def ancestors(node: str) -> list[str]:
        seen: set[str] = set()
        stack = list(links[node][1])
        while stack:
            a = stack.pop()
            if a not in seen:
                seen.add(a)
                stack.extend(links[a][1])
        return sorted(seen, key=index.__getitem__)

    def input_for(node: str) -> dict[str, Any]:
        deps = links[node][0]
        if not deps:
            return initial
        if len(deps) == 1 and deps[0] in outputs:
            return outputs[deps[0]]
        merged = dict(initial)
        for a in ancestors(node):
            if status[a] == COMPLETED and a in deltas:
                delta, removed = deltas[a]
                merged.update(delta)
                for key in removed:
                    merged.pop(key, None)
        return merged

    for r in rows:
        node = r["task_id"]
        if r["status"] == COMPLETED:
            out, delta, removed = completed_output(r, input_for(node))
            outputs[node] = result[node] = out
            deltas[node] = (delta, removed)
        elif r["status"] == SKIPPED and not (r.get("skip_reason") or "").startswith(
            UPSTREAM_FAILED
        ):
            outputs[node] = input_for(node)
    return result
