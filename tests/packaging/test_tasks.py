from __future__ import annotations

from typing import Any

import pytest

from cloaca.errors import BuildError
from cloaca.packaging.decorators import DiscoveredTask
from cloaca.packaging.tasks import merge_tasks


def _t(task_id: str, deps: tuple[str, ...] = (), **kw: Any) -> DiscoveredTask:
    explicit = {"dependencies"} if deps else set()
    explicit |= set(kw.pop("explicit", ()))
    return DiscoveredTask(
        id=task_id,
        function=f"m:{task_id.replace('-', '_')}",
        dependencies=deps,
        explicit=frozenset(explicit),
        location=f"m.py:{len(task_id)}",
        **kw,
    )


def test_table_fills_in_what_the_decorator_leaves_out() -> None:
    found = [_t("a"), _t("b", description="from docstring")]
    overrides = {"b": {"dependencies": ["a"], "description": "table", "timeout_seconds": 9}}
    a, b = merge_tasks(found, overrides)
    assert a.dependencies == [] and a.retries == 0
    assert (b.dependencies, b.description, b.timeout_seconds) == (["a"], "table", 9)


def test_repeating_the_decorator_is_not_a_conflict() -> None:
    found = [_t("a"), _t("b", ("a",), retries=2, explicit={"retries"})]
    (_, b) = merge_tasks(found, {"b": {"dependencies": ["a"], "retries": 2}})
    assert b.retries == 2


def test_conflict_names_task_and_field() -> None:
    found = [_t("a"), _t("b", ("a",), retries=2, explicit={"retries"})]
    with pytest.raises(BuildError, match=r"task 'b'.*sets retries = 5.*says 2"):
        merge_tasks(found, {"b": {"retries": 5}})


def test_override_for_unknown_task_suggests_a_match() -> None:
    with pytest.raises(BuildError, match=r"unknown task 'fetch-dat'. Did you mean 'fetch-data'"):
        merge_tasks([_t("fetch-data")], {"fetch-dat": {"retries": 1}})


def test_no_tasks() -> None:
    with pytest.raises(BuildError, match=r"no tasks found"):
        merge_tasks([], {})


def test_duplicate_id_shows_both_locations() -> None:
    with pytest.raises(BuildError, match=r"duplicate task id 'a': defined at m.py:1 and at"):
        merge_tasks([_t("a"), _t("a")], {})


def test_unknown_dependency_with_close_match() -> None:
    with pytest.raises(BuildError, match=r"'b' depends on unknown task 'aa'. Did you mean 'a'"):
        merge_tasks([_t("a"), _t("b", ("aa",))], {})


def test_cycle_is_reported_as_a_path() -> None:
    found = [_t("a", ("c",)), _t("b", ("a",)), _t("c", ("b",)), _t("d", ("a",))]
    with pytest.raises(BuildError, match=r"dependency cycle: a -> c -> b -> a"):
        merge_tasks(found, {})


def test_dependencies_on_other_packages_are_left_to_the_loader() -> None:
    (a,) = merge_tasks([_t("a", ("other-pkg::setup",))], {})
    assert a.dependencies == ["other-pkg::setup"]


def test_invalid_table_values_are_build_errors() -> None:
    with pytest.raises(BuildError, match=r"invalid task options"):
        merge_tasks([_t("a")], {"a": {"retries": -1}})
