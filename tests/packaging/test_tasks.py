from __future__ import annotations

from typing import Any

import pytest

from cloaca.errors import BuildError
from cloaca.packaging.decorators import DiscoveredTask
from cloaca.packaging.manifest import TaskEntry
from cloaca.packaging.tasks import merge_tasks


def _t(task_id: str, deps: tuple[str, ...] = (), **kw: Any) -> DiscoveredTask:
    explicit = {"dependencies"} if deps else set()
    explicit |= set(kw.pop("explicit", ()))
    entry = TaskEntry(
        id=task_id, function=f"m:{task_id.replace('-', '_')}", dependencies=list(deps), **kw
    )
    return DiscoveredTask(entry, frozenset(explicit), location=f"m.py:{len(task_id)}")


def test_table_fills_in_what_the_decorator_leaves_out() -> None:
    found = [_t("a"), _t("b", description="from docstring")]
    overrides = {"b": {"dependencies": ["a"], "description": "table", "timeout_seconds": 9}}
    a, b = merge_tasks(found, overrides)
    assert a.dependencies == [] and a.retries == 0
    assert (b.dependencies, b.description, b.timeout_seconds) == (["a"], "table", 9)


def test_table_declares_retry_policy_trigger_rules_and_callbacks() -> None:
    table = {
        "retry": {"max_attempts": 3, "backoff": "fixed", "initial_delay_seconds": 0.2},
        "trigger_rules": {"type": "context_value", "key": "go", "op": "Exists"},
        "timeout_seconds": 0.75,
        "on_failure": "m.hooks:alert",
    }
    (a,) = merge_tasks([_t("a")], {"a": table})
    assert a.retries == 2  # derived from retry.max_attempts
    assert a.retry is not None and (a.retry.backoff, a.retry.initial_delay_seconds) == (
        "fixed",
        0.2,
    )
    assert a.trigger_rules is not None and a.trigger_rules.model_dump()["op"] == "Exists"
    assert (a.timeout_seconds, a.on_failure) == (0.75, "m.hooks:alert")


def test_repeating_the_decorator_is_not_a_conflict() -> None:
    found = [_t("a"), _t("b", ("a",), retries=2, explicit={"retries"})]
    (_, b) = merge_tasks(found, {"b": {"dependencies": ["a"], "retries": 2}})
    assert b.retries == 2


def test_conflict_names_task_and_field() -> None:
    found = [_t("a"), _t("b", ("a",), retries=2, explicit={"retries"})]
    with pytest.raises(BuildError, match=r"task 'b'.*sets retries = 5.*says 2"):
        merge_tasks(found, {"b": {"retries": 5}})


def test_conflicting_retry_policy_and_callback_name_the_field() -> None:
    entry = {"retries": 1, "retry": {"max_attempts": 2, "initial_delay_seconds": 0.3}}
    found = [_t("a", explicit={"retries", "retry", "on_success"}, on_success="m:ok", **entry)]
    with pytest.raises(BuildError, match=r"task 'a'.*sets retry = .*Keep one of the two"):
        merge_tasks(found, {"a": {"retry": {"max_attempts": 2, "initial_delay_seconds": 1}}})
    with pytest.raises(BuildError, match=r"task 'a'.*sets on_success = 'm:other'"):
        merge_tasks(found, {"a": {"on_success": "m:other"}})
    # the same policy written out in full is a repetition, not a conflict
    (a,) = merge_tasks(found, {"a": {"retry": {"max_attempts": 2, "initial_delay_seconds": 0.3}}})
    assert a.retry is not None and a.retry.initial_delay_seconds == 0.3


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


@pytest.mark.parametrize(
    "table",
    [
        {"retries": -1},
        {"retries": 1, "retry": {"max_attempts": 5}},
        {"trigger_rules": {"type": "context_value", "key": "k", "op": "Bigger"}},
        {"on_failure": "not a reference"},
        {"timeout_seconds": 0},
        {"dependencies": ["a"]},  # a task cannot depend on itself (the @task rule)
    ],
)
def test_invalid_table_values_are_build_errors(table: dict[str, Any]) -> None:
    with pytest.raises(BuildError, match=r"task 'a': invalid task options"):
        merge_tasks([_t("a")], {"a": table})
