"""Retry defaults and meaning as in Cloacina (cloaca/retry.py and the scheduler's use of it):
written from upstream's tutorial 04, the conditional-retries how-to and the RetryPolicy
binding reference."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cloaca
from cloaca import BackoffStrategy, RetryCondition, RetryPolicy, WorkflowBuilder, task
from cloaca.task import get_spec


def test_a_task_without_retry_options_gets_the_default_policy() -> None:
    @task(id="plain")
    def plain(ctx: Any) -> None:
        pass

    policy = get_spec(plain).retry
    assert policy == RetryPolicy.default() == RetryPolicy()
    assert policy.max_attempts == 3 and policy.initial_delay == 1.0 and policy.max_delay == 60.0
    assert policy.backoff_strategy == BackoffStrategy.exponential(2.0)
    assert policy.retry_condition == RetryCondition.all_errors()
    assert policy.with_jitter() is True
    assert (
        repr(policy) == "RetryPolicy(max_attempts=3, initial_delay=1s, max_delay=60s, jitter=true)"
    )


def _events(result_events: list[Any], kind: str, task_id: str) -> list[Any]:
    return [e for e in result_events if e.kind == kind and e.task_id == task_id]


def test_default_policy_absorbs_two_failures_with_growing_delays() -> None:
    calls = {"n": 0}
    events: list[Any] = []

    with WorkflowBuilder("retry-default") as builder:

        @task(id="shaky")
        def shaky(ctx: Any) -> None:
            calls["n"] += 1
            if calls["n"] < 3:
                raise RuntimeError(f"failure {calls['n']}")
            ctx["ok"] = calls["n"]

    result = builder.build().run(on_event=events.append)
    assert result.status == "Completed" and result.final_context["ok"] == 3
    assert result.tasks["shaky"].attempts == 3
    starts = _events(events, "task_started", "shaky")
    retrying = _events(events, "task_retrying", "shaky")
    assert [e.attempt for e in starts] == [1, 2, 3] and len(retrying) == 2
    # 1 s then 2 s before jitter, which scales a delay by [0.5, 1.0]
    gaps = [starts[i + 1].at - retrying[i].at for i in range(2)]
    assert gaps[0] >= 0.5 and gaps[1] >= 1.0


def test_tutorial_04_flaky_task_succeeds_on_its_third_attempt() -> None:
    attempts = {"flaky": 0}

    with WorkflowBuilder("tutorial-04") as builder:

        @cloaca.task(retry_attempts=3, retry_backoff="exponential", retry_delay_ms=500)
        def flaky(context: Any) -> Any:
            attempts["flaky"] += 1
            if attempts["flaky"] < 3:
                raise RuntimeError(f"transient failure (attempt {attempts['flaky']})")
            return context

    policy = get_spec(flaky).retry
    assert policy.max_attempts == 3 and policy.initial_delay == 0.5 and policy.with_jitter()
    no_jitter = RetryPolicy(3, 0.5, 60.0, BackoffStrategy.exponential(2.0), jitter=False)
    assert [no_jitter.calculate_delay(n) for n in (1, 2)] == [0.5, 1.0]  # "500ms", then "1s"
    result = builder.build().run()
    assert result.status == "Completed" and attempts["flaky"] == 3
    assert result.tasks["flaky"].attempts == 3


@pytest.mark.parametrize(("given", "total"), [(0, 1), (1, 1), (2, 2), (5, 5)])
def test_retry_attempts_is_the_total_number_of_attempts(given: int, total: int) -> None:
    calls = {"n": 0}

    @task(id="always_fails", retry_attempts=given, retry_delay_ms=1, retry_jitter=False)
    def always_fails(ctx: Any) -> None:
        calls["n"] += 1
        raise RuntimeError("boom")

    result = WorkflowBuilder(f"attempts-{given}").add_task(always_fails).build().run()
    assert result.status == "Failed" and calls["n"] == total
    assert result.tasks["always_fails"].attempts == total


def test_conditional_retries_how_to() -> None:
    calls: dict[str, int] = {}

    with WorkflowBuilder("flaky_pipeline") as builder:

        @cloaca.task(retry_attempts=3, retry_delay_ms=1, retry_condition="transient")
        def flaky_api_call(context: Any) -> None:
            calls["flaky_api_call"] = calls.get("flaky_api_call", 0) + 1
            raise RuntimeError("connection refused (simulated)")  # retried

        @cloaca.task(retry_attempts=3, retry_condition="never")
        def validation_check(context: Any) -> None:
            calls["validation_check"] = calls.get("validation_check", 0) + 1
            raise RuntimeError("invalid input")  # not retried

        @cloaca.task(retry_attempts=3, retry_delay_ms=1, retry_condition="rate limit,5xx")
        def scrape_endpoint(context: Any) -> None:
            calls["scrape_endpoint"] = calls.get("scrape_endpoint", 0) + 1
            raise RuntimeError("Rate Limit exceeded")  # patterns match case-insensitively

    result = builder.build().run()
    assert calls == {"flaky_api_call": 3, "validation_check": 1, "scrape_endpoint": 3}
    assert result.status == "Failed"


@pytest.mark.parametrize(
    ("message", "retried"),
    [
        ("request timeout", True),
        ("network unreachable", True),
        ("server busy", True),
        ("service overloaded", True),
        ("rate limit hit", True),
        ("temporary failure", True),
        ("service unavailable", True),
        ("validation failed", False),
    ],
)
def test_transient_only_words(message: str, retried: bool) -> None:
    assert RetryCondition.transient_only().matches("RuntimeError", message) is retried


def test_no_retry_switch_gives_every_task_one_attempt() -> None:
    calls = {"n": 0}

    @task(id="would_retry", retry_attempts=5, retry_delay_ms=1)
    def would_retry(ctx: Any) -> None:
        calls["n"] += 1
        raise RuntimeError("boom")

    wf = WorkflowBuilder("no-retry").add_task(would_retry).build()
    result = wf.run(retries=False)
    assert calls["n"] == 1 and result.tasks["would_retry"].attempts == 1


def test_upstream_reprs_and_names() -> None:
    assert repr(BackoffStrategy.fixed()) == "BackoffStrategy.Fixed"
    assert repr(BackoffStrategy.linear(1.5)) == "BackoffStrategy.Linear(multiplier=1.5)"
    assert repr(BackoffStrategy.exponential(2.0)) == (
        "BackoffStrategy.Exponential(base=2, multiplier=1)"
    )
    assert repr(RetryCondition.never()) == "RetryCondition.Never"
    assert repr(RetryCondition.transient_only()) == "RetryCondition.TransientOnly"
    assert repr(RetryCondition.all_errors()) == "RetryCondition.AllErrors"
    assert repr(RetryCondition.error_pattern(["a", "b"])) == (
        'RetryCondition.ErrorPattern(patterns=["a", "b"])'
    )
    policy = (
        cloaca.RetryPolicyBuilder()
        .max_attempts(4)
        .initial_delay(0.5)
        .backoff_strategy(BackoffStrategy.exponential(3.0, 2.0))
        .with_jitter(False)
        .build()
    )
    assert [policy.calculate_delay(n) for n in (1, 2, 3)] == [1.0, 3.0, 9.0]
    assert policy.should_retry(3, "RuntimeError") and not policy.should_retry(4, "RuntimeError")


backoffs = st.one_of(
    st.just(BackoffStrategy.fixed()),
    st.floats(0, 5).map(BackoffStrategy.linear),
    st.builds(BackoffStrategy.exponential, st.floats(1, 4), st.floats(0, 3)),
)


@settings(max_examples=300, deadline=None)
@given(
    backoffs,
    st.floats(0, 10),
    st.floats(0, 100),
    st.integers(1, 40),
    st.booleans(),
)
def test_delays_follow_the_backoff_and_respect_the_cap(
    backoff: BackoffStrategy, initial: float, cap: float, attempt: int, jitter: bool
) -> None:
    policy = RetryPolicy(10, initial, cap, backoff, jitter=jitter)
    if backoff.kind == "fixed":
        raw = initial
    elif backoff.kind == "linear":
        raw = initial * backoff.factor * attempt
    else:
        raw = initial * backoff.multiplier * backoff.factor ** (attempt - 1)
    expected = min(raw, cap)
    delay = policy.calculate_delay(attempt)
    if jitter:
        assert expected * 0.5 - 1e-9 <= delay <= expected + 1e-9
    else:
        assert delay == pytest.approx(expected)
    assert 0 <= delay <= cap + 1e-9
