import pytest

from cloaca import BackoffStrategy, RetryCondition, RetryPolicy, task
from cloaca.errors import TaskDefinitionError
from cloaca.task import get_spec


def test_decorator_is_inert_and_returns_the_function():
    @task(id="t1", description="desc")
    def t1(ctx):
        return ctx

    spec = get_spec(t1)
    assert t1({"x": 1}) == {"x": 1}
    assert spec.id == "t1" and spec.description == "desc" and not spec.is_async
    assert spec.source.qualname.endswith("t1") and spec.source.lineno > 0


def test_bare_decorator_uses_function_name_and_docstring():
    @task
    def my_step(ctx):
        """Docstring becomes the description."""

    assert get_spec(my_step).id == "my_step"
    assert get_spec(my_step).description == "Docstring becomes the description."


def test_dependencies_as_functions_and_ids():
    @task(id="up")
    def up(ctx):
        pass

    @task(id="down", dependencies=[up, "other", "pkg::remote"])
    def down(ctx):
        pass

    assert get_spec(down).dependencies == ("up", "other", "pkg::remote")


def test_async_and_handle_detection():
    @task(id="a1")
    async def a1(ctx, handle):
        pass

    spec = get_spec(a1)
    assert spec.is_async and spec.accepts_handle


@pytest.mark.parametrize(
    "fn",
    [lambda: None, lambda a, b, c: None, lambda ctx, *, must: None],
    ids=["no-args", "three-args", "kw-only"],
)
def test_bad_signature(fn):
    with pytest.raises(TaskDefinitionError, match="context as its first parameter") as info:
        task(id="bad-sig")(fn)
    assert info.value.task_id == "bad-sig"


def test_both_retry_forms_is_value_error():
    with pytest.raises(ValueError, match="retry_attempts.*not both"):

        @task(id="r", retry=RetryPolicy.default(), retry_attempts=2)
        def r(ctx):
            pass


@pytest.mark.parametrize("bad_id", ["", "has space", "x" * 129, "a/b"])
def test_invalid_ids(bad_id):
    with pytest.raises(TaskDefinitionError, match="invalid task id"):
        task(id=bad_id)(lambda ctx: ctx)


def test_other_bad_options():
    with pytest.raises(TaskDefinitionError, match="timeout_seconds"):
        task(id="t", timeout_seconds=0)(lambda ctx: ctx)
    with pytest.raises(TaskDefinitionError, match="cannot depend on itself"):
        task(id="t", dependencies=["t"])(lambda ctx: ctx)
    with pytest.raises(TaskDefinitionError, match="neither a task id"):
        task(id="t", dependencies=[print])(lambda ctx: ctx)
    with pytest.raises(TaskDefinitionError, match="retry_backoff"):
        task(id="t", retry_backoff="quadratic")(lambda ctx: ctx)
    with pytest.raises(TaskDefinitionError, match="did you mean 'transient'"):
        task(id="t", retry_condition="transiant")(lambda ctx: ctx)
    with pytest.raises(TaskDefinitionError, match="retry_attempts"):
        task(id="t", retry_attempts=-1)(lambda ctx: ctx)


def test_flat_retry_options_build_a_policy():
    @task(id="f", retry_attempts=2, retry_backoff="linear", retry_delay_ms=100,
          retry_max_delay_ms=150, retry_condition=["reset"], retry_jitter=False)  # fmt: skip
    def f(ctx):
        pass

    policy = get_spec(f).retry
    assert policy.max_attempts == 2 and policy.retries == 1
    assert policy.delay_for(1) == pytest.approx(0.1) and policy.delay_for(2) == pytest.approx(0.15)
    assert policy.should_retry(1, "X", "connection reset") and not policy.should_retry(1, "X", "no")
    assert not policy.should_retry(2, "X", "reset")


def test_retry_policy_builder():
    policy = (
        RetryPolicy.builder()
        .max_attempts(5)
        .initial_delay(0.5)
        .max_delay(3)
        .backoff_strategy(BackoffStrategy.exponential(3.0))
        .retry_condition(RetryCondition.transient_only())
        .with_jitter(False)
        .build()
    )
    assert policy.max_attempts == 5 and policy.initial_delay == 0.5 and policy.max_delay == 3
    assert [policy.delay_for(n) for n in (1, 2, 3)] == [0.5, 1.5, 3.0]
    assert policy.should_retry(1, "ConnectionError", "x")
    assert not policy.should_retry(1, "ValueError", "bad value")
    assert RetryPolicy.default().max_attempts == 3
    assert RetryPolicy.builder().max_attempts(0).build().max_attempts == 1  # one attempt
    with pytest.raises(ValueError):
        RetryPolicy.builder().max_attempts(-1)


def test_jitter_stays_within_bounds():
    policy = RetryPolicy.builder().initial_delay(1).max_delay(10).with_jitter(True).build()
    delays = [policy.delay_for(2) for _ in range(200)]
    assert all(1.0 <= d <= 2.0 for d in delays) and len(set(delays)) > 1
