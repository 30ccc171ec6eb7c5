"""The one converter: live TaskSpec <-> manifest task entry, both ways, nothing lost."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloaca import (
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
from cloaca.conditions import OPERATORS, Condition
from cloaca.errors import TaskOptionError
from cloaca.packaging.manifest import Manifest, TaskEntry, parse_manifest
from cloaca.packaging.spec_codec import entry_to_spec, spec_to_entry
from cloaca.retry import BackoffStrategy, RetryCondition, RetryPolicy
from cloaca.task import TaskSpec, make_spec
from tests.packaging.codec_fixtures import functions as fx

_BEHAVIOUR = (
    "id", "fn", "dependencies", "description", "retry", "timeout_seconds", "trigger_rules",
    "on_success", "on_failure", "is_async", "accepts_handle",
)  # fmt: skip


def _same(a: TaskSpec, b: TaskSpec) -> None:
    for name in _BEHAVIOUR:
        assert getattr(a, name) == getattr(b, name), name


def _through_json(spec: TaskSpec) -> TaskSpec:
    entry = spec_to_entry(spec)
    text = json.dumps(entry.model_dump(mode="json"))
    return entry_to_spec(TaskEntry.model_validate_json(text))


# ----------------------------------------------------------------------------- strategies
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
# operators as users write them: canonical, any case, snake_case or a symbol
operators = st.one_of(
    st.sampled_from(OPERATORS),
    st.sampled_from(OPERATORS).map(str.lower),
    st.sampled_from(["==", "eq", "!=", ">", "<", "not_contains", "NOT_EQUALS", "greater_than"]),
)
leaf_rules = st.one_of(
    st.builds(context_value, st.text(max_size=6), operators, json_values),
    st.builds(
        lambda f, t: f(t),
        st.sampled_from([task_success, task_failed, task_skipped]),
        st.from_regex(r"[a-z]{1,3}", fullmatch=True),
    ),
    st.just(always()),
)
rules: st.SearchStrategy[Condition] = st.recursive(
    leaf_rules,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda cs: all_of(*cs)),
        st.lists(inner, max_size=3).map(lambda cs: any_of(*cs)),
        st.lists(inner, max_size=3).map(lambda cs: none_of(*cs)),
    ),
    max_leaves=5,
)
delays = st.floats(0, 3600, allow_nan=False)
backoffs = st.one_of(
    st.just(BackoffStrategy.fixed()),
    st.floats(0, 10).map(BackoffStrategy.linear),
    st.floats(0, 10).map(BackoffStrategy.exponential),
    st.builds(BackoffStrategy.exponential, st.floats(0, 10), st.floats(0, 10)),
)
conditions = st.one_of(
    st.sampled_from(
        [RetryCondition.all(), RetryCondition.never(), RetryCondition.transient_only()]
    ),
    st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=3).map(RetryCondition.pattern),
    st.lists(st.sampled_from(["KeyError", "OSError"]), min_size=1).map(RetryCondition.error_types),
)
policies = st.builds(
    RetryPolicy,
    max_attempts=st.integers(1, 20),
    initial_delay=delays,
    max_delay=delays,
    backoff_strategy=backoffs,
    retry_condition=conditions,
    jitter=st.booleans(),
)
ids = st.from_regex(r"[A-Za-z0-9_.\-]{1,20}", fullmatch=True)


@st.composite
def specs(draw: st.DrawFn) -> TaskSpec:
    task_id = draw(ids)
    deps = draw(st.lists(ids.filter(lambda d: d != task_id), max_size=4, unique=True))
    rule = draw(st.one_of(st.none(), rules.filter(lambda r: task_id not in r.task_refs())))
    # a rule may read only its task's dependencies' states
    deps += sorted(rule.task_refs() - set(deps)) if rule is not None else []
    return make_spec(
        draw(st.sampled_from(fx.TASK_FUNCTIONS)),
        id=task_id,
        dependencies=deps,
        description=draw(st.one_of(st.none(), st.text(min_size=1, max_size=20))),
        retry=draw(policies),
        timeout_seconds=draw(st.one_of(st.none(), st.floats(0.001, 1e6))),
        trigger_rules=rule,
        on_success=draw(st.sampled_from(fx.SUCCESS_CALLBACKS)),
        on_failure=draw(st.sampled_from(fx.FAILURE_CALLBACKS)),
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_random_specs_round_trip_unchanged(spec: TaskSpec) -> None:
    _same(_through_json(spec), spec)


# ----------------------------------------------------------------------------- one per option
def test_the_issue_task_carries_delay_backoff_and_fractional_timeout() -> None:
    fn = task(
        id="a", retry_attempts=4, retry_delay_ms=300, retry_backoff="exponential",
        timeout_seconds=0.5,
    )(fx.plain)  # fmt: skip
    entry = spec_to_entry(fn.__cloaca_task__).model_dump(mode="json")
    assert entry["timeout_seconds"] == 0.5
    assert entry["retries"] == 3  # retry_attempts is the total number of attempts
    assert entry["retry"]["initial_delay_seconds"] == 0.3
    assert entry["retry"]["backoff"] == "exponential"


def test_readme_tour_task_carries_its_delay() -> None:
    spec = make_spec(fx.plain, id="tour", retry_attempts=4, retry_delay_ms=300, retry_jitter=False)
    back = _through_json(spec)
    assert back.retry.max_attempts == 4 and back.retry.initial_delay == 0.3
    assert [back.retry.delay_for(n) for n in (1, 2)] == [0.3, 0.6]


def test_the_default_policy_travels_as_retries_alone() -> None:
    entry = spec_to_entry(make_spec(fx.plain, id="d"))
    assert entry.retries == 2 and entry.retry is None
    assert entry_to_spec(entry).retry == RetryPolicy() == RetryPolicy.default()


@pytest.mark.parametrize(
    ("options", "check"),
    [
        ({"retry_jitter": True, "retry_attempts": 1}, lambda s: s.retry.jitter),
        ({"retry_max_delay_ms": 1500, "retry_attempts": 1}, lambda s: s.retry.max_delay == 1.5),
        ({"retry_backoff": "linear", "retry_attempts": 2}, lambda s: s.retry.backoff_strategy.kind == "linear"),
        ({"retry_condition": "transient", "retry_attempts": 2}, lambda s: s.retry.retry_condition.kind == "transient"),
        ({"retry_condition": ["boom"], "retry_attempts": 2}, lambda s: s.retry.retry_condition.patterns == ("boom",)),
        ({"retry": RetryPolicy.default()}, lambda s: s.retry == RetryPolicy.default()),
        ({"timeout_seconds": 0.25}, lambda s: s.timeout_seconds == 0.25),
        ({"trigger_rules": context_value("go", "Equals", True)}, lambda s: not s.trigger_rules.evaluate({"go": False})),
        ({"on_success": fx.on_ok}, lambda s: s.on_success is fx.on_ok),
        ({"on_failure": fx.on_err}, lambda s: s.on_failure is fx.on_err),
        ({"description": "doc"}, lambda s: s.description == "doc"),
    ],
)  # fmt: skip
def test_each_option_is_carried(options: dict[str, Any], check: Any) -> None:
    assert check(_through_json(make_spec(fx.plain, id="t", **options)))


def test_old_manifest_entries_without_the_new_fields_still_load() -> None:
    entry = TaskEntry.model_validate({"id": "a", "function": f"{fx.__name__}:plain", "retries": 2,
                                      "timeout_seconds": 3})  # fmt: skip
    spec = entry_to_spec(entry)
    assert spec.retry == RetryPolicy(max_attempts=3) and spec.timeout_seconds == 3.0
    assert spec.trigger_rules is None and spec.on_success is None


def test_a_task_without_options_is_written_as_before() -> None:
    entry = spec_to_entry(make_spec(fx.plain, id="a"))
    assert set(entry.model_dump(mode="json")) == {
        "id", "function", "dependencies", "description", "retries", "timeout_seconds",
    }  # fmt: skip


# ----------------------------------------------------------------------------- refused options
def _closure() -> Any:
    def inner(task_id: str, context: Any) -> None:
        return None

    return inner


class _Bound:
    def callback(self, task_id: str, context: Any) -> None:
        return None


class _CustomCondition(RetryCondition):
    def matches(self, error_type: str, message: str) -> bool:
        return len(message) > 3


@pytest.mark.parametrize(
    ("options", "field", "match"),
    [
        ({"on_failure": lambda t, e, c: None}, "on_failure", "is a lambda"),
        ({"on_success": _closure()}, "on_success", "closure"),
        ({"on_success": functools.partial(fx.on_ok, "x")}, "on_success", "partial object"),
        ({"on_success": _Bound().callback}, "on_success", "does not lead back"),
        ({"retry": RetryPolicy(retry_condition=_CustomCondition())}, "retry.condition", "declarative"),
        ({"trigger_rules": context_value("k", "Equals", (1, 2))}, "trigger_rules", "survive JSON"),
        ({"trigger_rules": context_value("k", "Equals", {1, 2})}, "trigger_rules", "JSON"),
    ],
)  # fmt: skip
def test_uncarriable_options_name_the_task_and_the_option(
    options: dict[str, Any], field: str, match: str
) -> None:
    spec = make_spec(fx.plain, id="t", **options)
    with pytest.raises(TaskOptionError, match=match) as info:
        spec_to_entry(spec)
    assert (info.value.task_id, info.value.field) == ("t", field)
    assert "task 't', option" in str(info.value)


def test_notebook_functions_are_renamed_into_the_exported_module() -> None:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec("def cell_task(context):\n    return context\n", namespace)
    spec = make_spec(namespace["cell_task"], id="c")
    with pytest.raises(TaskOptionError, match="__main__"):
        spec_to_entry(spec)
    entry = spec_to_entry(spec, modules={"__main__": "nb.tasks"})
    assert entry.function == "nb.tasks:cell_task"


# ----------------------------------------------------------------------------- big manifests
def test_a_20k_task_manifest_is_parsed_and_checked_in_linear_time() -> None:
    """Issue 21: the duplicate-id check used list.count per id (52 s CPU for 60k tasks)."""
    n = 20_000
    tasks = [
        {"id": f"t{i}", "function": "m:f", "dependencies": [f"t{i - 1}"] if i else []}
        for i in range(n)
    ]
    raw = {
        "format_version": "2",
        "package": {"name": "big", "version": "1", "fingerprint": "sha256:" + "0" * 64,
                    "targets": ["linux-x86_64"]},
        "language": "python",
        "python": {"entry_module": "m"},
        "tasks": tasks,
        "created_at": "2024-01-01T00:00:00Z",
    }  # fmt: skip
    manifest = parse_manifest(json.dumps(raw))
    assert len(manifest.tasks) == n
    from cloaca.packaging.tasks import check_graph

    check_graph(manifest.tasks)
    raw["tasks"] = [*tasks, {"id": "t7", "function": "m:f"}]
    with pytest.raises(Exception, match=r"duplicate task ids: \['t7'\]"):
        parse_manifest(json.dumps(raw))
    assert isinstance(manifest, Manifest)
