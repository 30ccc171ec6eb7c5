"""Trigger rules as upstream defines them: task-state conditions, ``always()``, operator aliases,
and the fallback semantics (a rule reading task states is evaluated after a dependency failed).

Examples follow upstream's "Trigger Rules" explanation and Python task reference.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cloaca
from cloaca import (
    WorkflowBuilder,
    all_of,
    always,
    any_of,
    context_value,
    none_of,
    task,
    task_failed,
    task_skipped,
    task_success,
)
from cloaca.conditions import OPERATORS, canonical_operator
from cloaca.errors import TaskDefinitionError


def _run(name: str, *tasks: Any, initial: dict[str, Any] | None = None) -> Any:
    b = WorkflowBuilder(name)
    for t in tasks:
        b.add_task(t)
    return b.build().run(initial or {})


# ----------------------------------------------------------------------------- operators
@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("equals", "Equals"), ("==", "Equals"), ("eq", "Equals"), ("EQUALS", "Equals"),
        ("not_equals", "NotEquals"), ("!=", "NotEquals"), ("ne", "NotEquals"),
        ("greater_than", "GreaterThan"), (">", "GreaterThan"), ("gt", "GreaterThan"),
        ("less_than", "LessThan"), ("<", "LessThan"), ("lt", "LessThan"),
        ("contains", "Contains"), ("NotContains", "NotContains"), ("not_contains", "NotContains"),
        ("exists", "Exists"), ("not_exists", "NotExists"), ("notexists", "NotExists"),
    ],
)  # fmt: skip
def test_operator_aliases_are_case_insensitive(alias: str, canonical: str) -> None:
    assert canonical_operator(alias) == canonical
    assert context_value("k", alias, 1) == context_value("k", canonical, 1)
    assert context_value("k", alias, 1).to_dict()["op"] == canonical


def test_an_unknown_operator_is_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="'almost'"):
        context_value("k", "almost", 1)


@given(st.sampled_from(OPERATORS), st.booleans(), st.booleans())
def test_case_and_underscores_do_not_change_an_operator(op: str, upper: bool, snake: bool) -> None:
    spelled = "".join(("_" + c if snake and c.isupper() and i else c) for i, c in enumerate(op))
    spelled = spelled.upper() if upper else spelled.lower()
    assert canonical_operator(spelled) == op


@pytest.mark.parametrize(
    ("op", "actual", "value", "expected"),
    [
        ("contains", "hello world", "world", True),  # substring on strings
        ("contains", ["a", "b"], "b", True),  # membership on arrays
        ("not_contains", ["a", "b"], "c", True),
        ("not_contains", "hello", "ell", False),
        ("greater_than", 81, 80, True),  # numbers compare as floats
        ("greater_than", 80.5, 80, True),
        ("less_than", 3, 3.5, True),
        ("greater_than", "9", 8, False),  # not a number: false
        ("greater_than", True, 0, False),
    ],
)
def test_context_value_comparisons(op: str, actual: Any, value: Any, expected: bool) -> None:
    assert context_value("k", op, value).evaluate({"k": actual}) is expected


def test_a_missing_key_satisfies_only_the_negative_operators() -> None:
    holds = {op for op in OPERATORS if context_value("k", op, 1).evaluate({})}
    assert holds == {"NotEquals", "NotContains", "NotExists"}


# ----------------------------------------------------------------------------- task states
@given(st.sampled_from(["Completed", "Failed", "Skipped"]))
def test_each_terminal_state_makes_exactly_one_task_condition_true(status: str) -> None:
    true = [f.__name__ for f in (task_success, task_failed, task_skipped)
            if f("x").evaluate({}, {"x": status})]  # fmt: skip
    assert true == [{"Completed": "task_success", "Failed": "task_failed",
                     "Skipped": "task_skipped"}[status]]  # fmt: skip


@given(st.lists(st.booleans(), max_size=5))
def test_combinators_are_and_or_nor(values: list[bool]) -> None:
    rules = [always() if v else none_of(always()) for v in values]
    assert all_of(*rules).evaluate({}) is all(values)
    assert any_of(*rules).evaluate({}) is any(values)
    assert none_of(*rules).evaluate({}) is (not any(values))


def test_a_rule_on_a_task_that_is_not_a_dependency_is_refused_at_decoration() -> None:
    with pytest.raises(TaskDefinitionError, match="'fetch'.*dependencies"):

        @task(id="tr-orphan-rule", trigger_rules=task_failed("fetch"))
        def orphan(ctx: Any) -> None:
            pass


def test_combinator_arguments_must_be_rules() -> None:
    with pytest.raises(ValueError, match="any_of"):
        any_of("fetch")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- semantics
def test_fallback_runs_after_the_primary_failed() -> None:
    @task(id="tr-fetch", retry_attempts=1)
    def fetch(ctx: Any) -> None:
        raise ConnectionError("source down")

    @task(id="tr-cached", dependencies=["tr-fetch"], trigger_rules=task_failed("tr-fetch"))
    def cached(ctx: Any) -> None:
        ctx["data"] = "cached"

    @task(id="tr-use", dependencies=["tr-cached"])
    def use(ctx: Any) -> None:
        ctx["used"] = ctx["data"]

    @task(id="tr-normal", dependencies=["tr-fetch"])
    def normal(ctx: Any) -> None:
        ctx["normal"] = True

    result = _run("tr-fallback", fetch, cached, use, normal)
    t = result.tasks
    assert t["tr-fetch"].status == "Failed"
    assert t["tr-cached"].status == "Completed" and t["tr-use"].status == "Completed"
    # a task without a rule keeps "skip when an upstream failed"
    assert t["tr-normal"].status == "Skipped"
    assert t["tr-normal"].skip_reason == "upstream failed: tr-fetch"
    assert result.final_context["used"] == "cached"


def test_fallback_is_skipped_when_the_primary_succeeded() -> None:
    @task(id="tr-ok-fetch")
    def fetch(ctx: Any) -> None:
        ctx["data"] = "fresh"

    @task(id="tr-ok-cached", dependencies=["tr-ok-fetch"], trigger_rules=task_failed("tr-ok-fetch"))
    def cached(ctx: Any) -> None:
        ctx["data"] = "cached"

    result = _run("tr-no-fallback", fetch, cached)
    assert result.status == "Completed"
    assert result.tasks["tr-ok-cached"].status == "Skipped"
    assert result.tasks["tr-ok-cached"].skip_reason == "trigger rule false"
    assert result.final_context["data"] == "fresh"


def test_upstream_python_example_on_trouble_sees_a_skip() -> None:
    # upstream's Python example: process is gated on a context value; on_trouble runs when
    # fetch failed or process was skipped
    @task(id="tr-ex-fetch")
    def fetch(ctx: Any) -> None:
        ctx["ready"] = False

    @task(id="tr-ex-process", dependencies=["tr-ex-fetch"],
          trigger_rules=context_value("ready", "Equals", True))  # fmt: skip
    def process(ctx: Any) -> None:
        ctx["processed"] = True

    @task(id="tr-ex-trouble", dependencies=["tr-ex-fetch", "tr-ex-process"],
          trigger_rules=any_of(task_failed("tr-ex-fetch"), task_skipped("tr-ex-process")))  # fmt: skip
    def on_trouble(ctx: Any) -> None:
        ctx["trouble"] = True

    result = _run("tr-example", fetch, process, on_trouble)
    assert result.tasks["tr-ex-process"].status == "Skipped"
    assert result.tasks["tr-ex-trouble"].status == "Completed"
    assert result.final_context["trouble"] is True and "processed" not in result.final_context


def test_always_run_cleanup_runs_whatever_the_outcome() -> None:
    ran: list[str] = []

    @task(id="tr-cl-work", retry_attempts=1)
    def work(ctx: Any) -> None:
        raise RuntimeError("boom")

    @task(id="tr-cl-cleanup", dependencies=["tr-cl-work"], trigger_rules=any_of(
        task_success("tr-cl-work"), task_failed("tr-cl-work"), task_skipped("tr-cl-work")))  # fmt: skip
    def cleanup(ctx: Any) -> None:
        ran.append("cleanup")

    result = _run("tr-cleanup", work, cleanup)
    assert ran == ["cleanup"] and result.tasks["tr-cl-cleanup"].status == "Completed"


def test_error_notification_needs_every_path_failed() -> None:
    @task(id="tr-n-a", retry_attempts=1)
    def a(ctx: Any) -> None:
        raise RuntimeError("a down")

    @task(id="tr-n-b")
    def b(ctx: Any) -> None:
        ctx["b"] = 1

    @task(id="tr-n-alert", dependencies=["tr-n-a", "tr-n-b"],
          trigger_rules=all_of(task_failed("tr-n-a"), task_failed("tr-n-b")))  # fmt: skip
    def alert(ctx: Any) -> None:
        ctx["alert"] = True

    result = _run("tr-notify", a, b, alert)
    assert result.tasks["tr-n-alert"].status == "Skipped"
    assert result.tasks["tr-n-alert"].skip_reason == "trigger rule false"


def test_an_unselected_dependency_counts_as_completed() -> None:
    # ``only=`` assumes unselected dependencies are done: task_success holds, task_failed not
    @task(id="tr-sel-up")
    def up(ctx: Any) -> None:
        ctx["up"] = True

    @task(id="tr-sel-ok", dependencies=["tr-sel-up"], trigger_rules=task_success("tr-sel-up"))
    def ok(ctx: Any) -> None:
        ctx["ok"] = True

    @task(id="tr-sel-fb", dependencies=["tr-sel-up"], trigger_rules=task_failed("tr-sel-up"))
    def fallback(ctx: Any) -> None:
        ctx["fallback"] = True

    b = WorkflowBuilder("tr-selection")
    for t in (up, ok, fallback):
        b.add_task(t)
    result = b.build().run({}, only=["tr-sel-ok", "tr-sel-fb"])
    assert "tr-sel-up" not in result.tasks
    assert result.tasks["tr-sel-ok"].status == "Completed"
    assert result.tasks["tr-sel-fb"].status == "Skipped"


def test_helpers_are_cloacas_top_level_names() -> None:
    for name in ("always", "task_success", "task_failed", "task_skipped"):
        assert getattr(cloaca, name) is globals()[name]
