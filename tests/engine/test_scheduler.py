import asyncio
import pickle
import threading
import time

import pytest

from cloaca import RetryCondition, WorkflowBuilder, all_of, context_value, none_of, task
from cloaca.errors import TaskExecutionError, TaskTimeoutError
from tests.engine.fixtures import failing, flaky


def test_diamond_merges_upstream_contexts_deterministically():
    import cloaca
    from tests.engine.fixtures import diamond  # noqa: F401

    result = cloaca.get_workflow("fixture-diamond").run({"seed": 1})
    assert result.status == "Completed" and result.error_message is None
    ctx = result.final_context.to_dict()
    assert ctx["seed"] == 1 and ctx["d"] == 5 and ctx["order"] == ["a"]
    # b and c both write "winner": the later task in topological order (c) wins
    assert ctx["winner"] == "c"
    assert [t.status for t in result.tasks.values()] == ["Completed"] * 4
    assert all(t.duration is not None and t.attempts == 1 for t in result.tasks.values())


def test_failure_skips_downstream_but_not_independent_branches():
    failing.CALLS.clear()
    result = failing.build().run()
    assert result.status == "Failed"
    t = result.tasks
    assert t["bad"].status == "Failed" and t["after_bad"].status == "Skipped"
    assert t["after_bad"].skip_reason == "upstream failed: bad"
    assert t["good"].status == "Completed" and t["after_good"].status == "Completed"
    assert failing.CALLS == []
    err = t["bad"].error
    assert err.task_id == "bad" and err.error_type == "KeyError" and "missing_key" in err.message
    assert 'return ctx["missing_key"]' in err.traceback
    assert "KeyError" in result.error_message
    assert result.final_context["after_good"] == 2
    again = pickle.loads(pickle.dumps(err))
    assert (again.task_id, again.error_type, again.traceback) == ("bad", "KeyError", err.traceback)


def test_retries_transient_then_ok_and_condition_blocks_others():
    attempts: dict = {}
    result = flaky.build(attempts).run()
    assert attempts == {"flaky": 3, "fatal": 1}
    assert result.tasks["flaky"].status == "Completed" and result.tasks["flaky"].attempts == 3
    assert result.tasks["fatal"].status == "Failed" and result.tasks["fatal"].attempts == 1


def test_retries_exhausted():
    attempts: dict = {}
    result = flaky.build(attempts, fail_times=10, condition=RetryCondition.all()).run()
    assert attempts["flaky"] == 4 and result.tasks["flaky"].attempts == 4
    assert result.tasks["flaky"].status == "Failed"
    assert attempts["fatal"] == 1  # its own condition (transient) still applies


def test_timeouts_sync_and_async():
    @task(id="slow-async", timeout_seconds=0.05, retry_attempts=1)
    async def slow_async(ctx):
        await asyncio.sleep(5)

    @task(id="slow-sync", timeout_seconds=0.05, retry_attempts=1)
    def slow_sync(ctx):
        time.sleep(0.3)

    result = WorkflowBuilder("wf-timeouts").add_task(slow_async).add_task(slow_sync).build().run()
    for tid in ("slow-async", "slow-sync"):
        err = result.tasks[tid].error
        assert isinstance(err, TaskTimeoutError) and err.timeout_seconds == 0.05
        assert "timed out after 0.05s" in str(err)


def test_default_timeout_applies_to_tasks_without_one():
    @task(id="sleepy", retry_attempts=1)
    async def sleepy(ctx):
        await asyncio.sleep(5)

    result = (
        WorkflowBuilder("wf-default-timeout").add_task(sleepy).build().run(default_timeout=0.05)
    )
    assert isinstance(result.tasks["sleepy"].error, TaskTimeoutError)


def test_independent_tasks_run_concurrently_bounded():
    lock, state = threading.Lock(), {"now": 0, "peak": 0}

    def body(ctx):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1

    b = WorkflowBuilder("wf-parallel")
    for i in range(8):
        b.add_task(task(id=f"p{i}")(lambda ctx, _b=body: _b(ctx)))
    result = b.build().run(max_concurrency=3)
    assert result.status == "Completed" and state["peak"] == 3


def test_async_tasks_share_one_loop():
    loops = set()

    def make(i):
        @task(id=f"aio{i}")
        async def aio(ctx):
            loops.add(id(asyncio.get_running_loop()))
            await asyncio.sleep(0.01)
            ctx[f"k{i}"] = i

        return aio

    b = WorkflowBuilder("wf-async")
    for i in range(5):
        b.add_task(make(i))
    result = b.build().run(max_concurrency=5)
    assert len(loops) == 1 and result.final_context.to_dict() == {f"k{i}": i for i in range(5)}


async def test_run_works_inside_a_running_loop():
    @task(id="inner")
    async def inner(ctx):
        ctx["inner"] = True

    # a blocking run from a coroutine (like a Jupyter cell) must not hit "loop already running"
    result = WorkflowBuilder("wf-nested").add_task(inner).build().run()
    assert result.final_context["inner"] is True


def test_trigger_rules_skip_but_dependents_still_run():
    @task(id="start")
    def start(ctx):
        ctx["mode"] = "fast"

    @task(
        id="only-slow", dependencies=[start], trigger_rules=context_value("mode", "Equals", "slow")
    )
    def only_slow(ctx):
        ctx["slow_ran"] = True

    @task(id="fast", dependencies=[start], trigger_rules=all_of(
        context_value("mode", "Exists"), none_of(context_value("mode", "Equals", "slow"))))  # fmt: skip
    def fast(ctx):
        ctx["fast_ran"] = True

    @task(id="end", dependencies=[only_slow, fast])
    def end(ctx):
        ctx["end_saw_slow"] = "slow_ran" in ctx

    b = WorkflowBuilder("wf-rules")
    for t in (start, only_slow, fast, end):
        b.add_task(t)
    result = b.build().run()
    assert result.tasks["only-slow"].status == "Skipped"
    assert result.tasks["only-slow"].skip_reason == "trigger rule false"
    assert result.status == "Completed"
    assert result.final_context.to_dict() == {
        "mode": "fast",
        "fast_ran": True,
        "end_saw_slow": False,
    }


def test_non_json_output_fails_the_task_naming_the_key():
    @task(id="writes-set")
    def writes_set(ctx):
        return {"ok": 1, "bad": {1, 2}}

    result = WorkflowBuilder("wf-json").add_task(writes_set).build().run()
    err = result.tasks["writes-set"].error
    assert err.error_type == "ContextValueError" and "'bad'" in err.message


def test_callbacks_called_and_their_errors_ignored(caplog):
    seen = []

    def on_ok(task_id, ctx):
        seen.append(("ok", task_id, ctx["v"]))
        raise RuntimeError("callback bug")

    def on_fail(task_id, error, ctx):
        # upstream's signature: on_failure(task_id, error: str, context)
        seen.append(("fail", task_id, error, isinstance(error, str), error.error_type, ctx["v0"]))

    @task(id="cb-ok", on_success=on_ok)
    def cb_ok(ctx):
        ctx["v"] = 1

    @task(id="cb-fail", on_failure=on_fail, retry_attempts=2, retry_delay_ms=1)
    def cb_fail(ctx):
        raise ValueError("nope")

    wf = WorkflowBuilder("wf-cb").add_task(cb_ok).add_task(cb_fail).build()
    result = wf.run({"v0": 0})
    assert ("ok", "cb-ok", 1) in seen
    # called once, after the last attempt, with the failure as text
    assert [s for s in seen if s[0] == "fail"] == [
        ("fail", "cb-fail", "ValueError: nope", True, "ValueError", 0)
    ]
    assert result.tasks["cb-ok"].status == "Completed"
    assert "callback bug" in caplog.text or "raised; ignored" in caplog.text


def test_events_in_lifecycle_order():
    events = []

    @task(id="e1")
    def e1(ctx):
        ctx["x"] = 1

    @task(id="e2", dependencies=[e1], retry_attempts=1)
    def e2(ctx):
        raise KeyError("x")

    raw = []
    WorkflowBuilder("wf-events").add_task(e1).add_task(e2).build().run(on_event=raw.append)
    events = [(e.kind, e.task_id) for e in raw]
    failed = next(e for e in raw if e.kind == "task_failed")
    assert failed.error_type == "KeyError" and "'x'" in failed.error
    assert events == [
        ("workflow_started", None),
        ("task_started", "e1"),
        ("task_completed", "e1"),
        ("task_started", "e2"),
        ("task_failed", "e2"),
        ("workflow_failed", None),
    ]


def test_sub_dag_selection_on_run():
    @task(id="s1")
    def s1(ctx):
        ctx["s1"] = 1

    @task(id="s2", dependencies=[s1])
    def s2(ctx):
        ctx["s2"] = ctx.get("s1", 0) + 1

    @task(id="s3", dependencies=[s2])
    def s3(ctx):
        ctx["s3"] = ctx["s2"] + 1

    wf = WorkflowBuilder("wf-sub").add_task(s1).add_task(s2).add_task(s3).build()
    assert wf.run(start_from="s2").final_context.to_dict() == {"s2": 1, "s3": 2}
    assert list(wf.run(until="s2").tasks) == ["s1", "s2"]
    assert list(wf.run({"s2": 10}, only=["s3"]).final_context.to_dict().items()) == [
        ("s2", 10),
        ("s3", 11),
    ]


def test_resume_skips_completed_tasks():
    calls = []

    @task(id="r1")
    def r1(ctx):
        calls.append("r1")
        ctx["r1"] = "fresh"

    @task(id="r2", dependencies=[r1])
    def r2(ctx):
        calls.append("r2")
        ctx["r2"] = ctx["r1"] + "!"

    wf = WorkflowBuilder("wf-resume").add_task(r1).add_task(r2).build()
    first = wf.run()
    calls.clear()
    done = {"r1": first.tasks["r1"]}
    second = wf.run(completed=done)
    assert calls == ["r2"] and second.final_context["r2"] == "fresh!"


def test_defer_until_releases_the_slot():
    flag = threading.Event()
    held = []

    @task(id="waiter")
    def waiter(ctx, handle):
        handle.defer_until(flag.is_set, poll_interval_ms=5)
        held.append(handle.is_slot_held())

    @task(id="setter")
    def setter(ctx):
        time.sleep(0.02)
        flag.set()

    # one slot: the setter can only run if the waiter gave its slot back
    result = (
        WorkflowBuilder("wf-defer")
        .add_task(waiter)
        .add_task(setter)
        .build()
        .run(max_concurrency=1, workflow_timeout=10)
    )
    assert result.status == "Completed" and held == [True]


def test_workflow_timeout_fails_running_and_skips_pending():
    @task(id="forever")
    async def forever(ctx):
        await asyncio.sleep(10)

    @task(id="after-forever", dependencies=[forever])
    def after(ctx):
        pass

    result = (
        WorkflowBuilder("wf-wt")
        .add_task(forever)
        .add_task(after)
        .build()
        .run(workflow_timeout=0.05)
    )
    assert result.status == "Failed"
    assert result.tasks["forever"].status == "Failed"
    assert result.tasks["after-forever"].status == "Skipped"
    with pytest.raises(TaskExecutionError, match="workflow timed out"):
        result.raise_for_status()


def test_task_traceback_does_not_chain_the_loop_probe():
    @task(id="plain-fail")
    def plain_fail(ctx):
        raise ValueError("plain")

    result = WorkflowBuilder("wf-tb").add_task(plain_fail).build().run()
    assert "no running event loop" not in result.tasks["plain-fail"].error.traceback


def _interrupt_soon(delay: float) -> threading.Timer:
    import os
    import signal

    timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


@pytest.mark.parametrize("under_running_loop", [False, True])
def test_ctrl_c_cancels_the_run(under_running_loop):
    seen: list[str] = []

    @task(id="long")
    async def long(ctx):
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    @task(id="after-long", dependencies=[long])
    def after_long(ctx):
        seen.append("after ran")

    wf = WorkflowBuilder("wf-interrupt").add_task(long).add_task(after_long).build()

    async def from_a_loop():  # like a Jupyter cell: blocking run under a running loop
        return wf.run()

    def under_loop():
        # a loop without asyncio.run's SIGINT handler, as in ipykernel: Ctrl-C raises
        # KeyboardInterrupt in the main thread wherever it is
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(from_a_loop())
        finally:
            loop.close()

    timer = _interrupt_soon(0.3)
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        if under_running_loop:
            under_loop()
        else:
            wf.run()
    timer.cancel()
    assert seen == ["cancelled"] and time.monotonic() - t0 < 20


def test_canceller_from_another_thread_stops_the_run():
    from cloaca.execution.blocking import RunCanceller

    started, seen = threading.Event(), []

    @task(id="slow-async-step")
    async def slow_async_step(ctx):
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    @task(id="never", dependencies=[slow_async_step])
    def never(ctx):
        seen.append("never ran")

    canceller = RunCanceller()
    threading.Thread(target=lambda: (started.wait(10), canceller.cancel()), daemon=True).start()
    wf = WorkflowBuilder("wf-canceller").add_task(slow_async_step).add_task(never).build()
    with pytest.raises(asyncio.CancelledError):
        wf.run(canceller=canceller)
    assert seen == ["cancelled"] and canceller.cancelled
