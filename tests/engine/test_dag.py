import pytest

from cloaca.dag import build_dag
from cloaca.errors import CycleError, TaskSelectionError, UnknownDependencyError
from tests.engine.fixtures import cycle, missing_dep


def test_levels_and_order_are_deterministic():
    dag = build_dag({"a": [], "c": ["a"], "b": ["a"], "d": ["b", "c"], "e": []})
    assert dag.order == ("a", "e", "c", "b", "d")
    assert dag.levels == (("a", "e"), ("c", "b"), ("d",))
    assert dag.ancestors("d") == {"a", "b", "c"} and dag.descendants("a") == {"b", "c", "d"}
    assert dag.roots() == ["a", "e"]


def test_unknown_dependency_with_suggestion():
    with pytest.raises(UnknownDependencyError) as info:
        missing_dep.build()
    err = info.value
    assert (err.task_id, err.dependency, err.workflow) == ("load", "fetch_dta", "fixture-missing")
    assert err.suggestions == ["fetch_data"]
    assert "Did you mean 'fetch_data'?" in str(err)


def test_cycle_names_the_path():
    with pytest.raises(CycleError) as info:
        cycle.build()
    path = info.value.cycle
    assert path[0] == path[-1] and set(path) == {"x", "y", "z"} and len(path) == 4
    assert " -> ".join(path) in str(info.value)


def test_cycle_inside_larger_graph():
    with pytest.raises(CycleError) as info:
        build_dag({"root": [], "p": ["root", "q"], "q": ["p"], "leaf": ["q"]})
    assert set(info.value.cycle) == {"p", "q"}


def test_select_start_from_until_only():
    dag = build_dag({"a": [], "b": ["a"], "c": ["b"], "d": ["a"], "e": ["c", "d"]})
    assert dag.select(start_from="b") == {"b", "c", "e"}
    assert dag.select(until="c") == {"a", "b", "c"}
    assert dag.select(only=["b", "d"]) == {"b", "d"}
    assert dag.select(start_from="b", until="c") == {"b", "c"}
    with pytest.raises(TaskSelectionError, match="Did you mean 'c'"):
        dag.select(start_from="cc")


def test_cross_package_dependency_names_package_and_task():
    deps = {"pkg-a::load": [], "pkg-b::use": ["pkg-a::lod"], "pkg-b::other": ["ghost::x"]}
    with pytest.raises(UnknownDependencyError) as info:
        build_dag({k: deps[k] for k in ("pkg-a::load", "pkg-b::use")})
    assert "package 'pkg-a' has no task 'lod'" in str(info.value)
    assert "Did you mean 'pkg-a::load'" in str(info.value)
    with pytest.raises(UnknownDependencyError) as info:
        build_dag({k: deps[k] for k in ("pkg-a::load", "pkg-b::other")})
    assert "package 'ghost' is not loaded" in str(info.value) and "pkg-a" in str(info.value)
