"""The fan-in merge rule (cloaca/execution/merge.py) and how the scheduler applies it: arrays
concatenated in dependency order without duplicates, objects merged recursively, otherwise the
later dependency wins; the final context by the same rule."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cloaca import WorkflowBuilder, task
from cloaca.execution.merge import merge_contexts, merge_values

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(-5, 5, allow_nan=False, allow_infinity=False),
    st.sampled_from(["a", "b", "c"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["k", "l", "m"]), inner, max_size=3)
    ),
    max_leaves=12,
)
contexts = st.dictionaries(st.sampled_from(["x", "y", "z", "w"]), json_values, max_size=4)


def _ident(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _check(earlier: Any, later: Any, merged: Any) -> None:
    """Assert that ``merged`` follows the rule for ``earlier`` then ``later``."""
    if isinstance(earlier, list) and isinstance(later, list):
        assert merged[: len(earlier)] == earlier  # the earlier array comes first, untouched
        added = merged[len(earlier) :]
        seen = {_ident(v) for v in earlier}
        expected = []
        for item in later:  # each new item once, in the later array's order
            if _ident(item) not in seen:
                seen.add(_ident(item))
                expected.append(item)
        assert [_ident(v) for v in added] == [_ident(v) for v in expected]
    elif isinstance(earlier, dict) and isinstance(later, dict):
        assert set(merged) == set(earlier) | set(later)
        for key, value in merged.items():
            if key in earlier and key in later:
                _check(earlier[key], later[key], value)
            else:
                assert _ident(value) == _ident(earlier[key] if key in earlier else later[key])
    else:
        assert merged is later


@settings(max_examples=300, deadline=None)
@given(json_values, json_values)
def test_merge_values_follows_the_rule_and_mutates_nothing(earlier: Any, later: Any) -> None:
    before = (copy.deepcopy(earlier), copy.deepcopy(later))
    merged = merge_values(earlier, later)
    _check(earlier, later, merged)
    assert (earlier, later) == before


@settings(max_examples=200, deadline=None)
@given(st.lists(contexts, min_size=1, max_size=4))
def test_merge_contexts_folds_in_order(ctxs: list[dict[str, Any]]) -> None:
    merged = merge_contexts(ctxs)
    expected: dict[str, Any] = {}
    for ctx in ctxs:  # the fold, one context at a time, checked against the pairwise rule
        step = merge_contexts([expected, ctx])
        _check(expected, ctx, step)
        expected = step
    assert _ident(merged) == _ident(expected)


def test_json_equality_not_python_equality() -> None:
    assert merge_values([1, "a"], [True, 1.0, 1, "a"]) == [1, "a", True, 1.0]
    assert merge_values({"a": {"b": [1]}}, {"a": {"b": [2], "c": 3}}) == {
        "a": {"b": [1, 2], "c": 3}
    }


def test_upstream_docs_two_dependency_example() -> None:
    # context-management.md: task1 and task2 both set "status"; task2 (later) wins
    task1 = {"user_id": 123, "status": "pending"}
    task2 = {"status": "completed", "result": 42}
    assert merge_contexts([task1, task2]) == {"user_id": 123, "status": "completed", "result": 42}


def _fan_in(n: int, collector: bool) -> Any:
    with WorkflowBuilder(f"merge-fan-in-{n}-{collector}") as builder:
        ids = [f"src{i}" for i in range(n)]
        for i, tid in enumerate(ids):

            def source(ctx: Any, tid: str = tid, i: int = i) -> None:
                # the upstream idiom: read the list, append, write it back
                sources = ctx.get("sources", [])
                sources.append(tid)
                ctx["sources"] = sources
                ctx["meta"] = {"by": {tid: i}, "last": tid}
                ctx["who"] = tid

            task(id=tid)(source)
        if collector:
            # declared dependency order is the reverse of the declaration order of the sources
            @task(id="collect", dependencies=list(reversed(ids)))
            def collect(ctx: Any) -> None:
                ctx["seen"] = list(ctx["sources"])

    return builder.build()


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=2, max_value=6))
def test_parallel_appends_reach_the_collector_in_dependency_order(n: int) -> None:
    result = _fan_in(n, collector=True).run({"sources": ["seed"]})
    assert result.status == "Completed"
    order = [f"src{i}" for i in reversed(range(n))]
    ctx = result.final_context.to_dict()
    assert ctx["seen"] == ["seed", *order]
    assert ctx["meta"] == {"by": {f"src{i}": i for i in range(n)}, "last": order[-1]}
    assert ctx["who"] == order[-1]


def test_final_context_merges_the_ends_of_the_run_by_the_same_rule() -> None:
    result = _fan_in(3, collector=False).run({"sources": []})
    ctx = result.final_context.to_dict()
    # no collector: the three outputs are merged in topological (declaration) order
    assert ctx["sources"] == ["src0", "src1", "src2"] and ctx["who"] == "src2"
    assert ctx["meta"]["by"] == {"src0": 0, "src1": 1, "src2": 2}


def test_a_chain_keeps_replacements_and_removals() -> None:
    with WorkflowBuilder("merge-chain") as builder:

        @task(id="first")
        def first(ctx: Any) -> None:
            ctx["rows"] = [1, 2]
            ctx["tmp"] = True

        @task(id="second", dependencies=["first"])
        def second(ctx: Any) -> dict[str, Any]:
            return {"rows": [3]}  # replaces rows, drops tmp

    ctx = builder.build().run().final_context.to_dict()
    assert ctx == {"rows": [3]}
