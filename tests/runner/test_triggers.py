"""Triggers: TriggerResult, the decorator, polling by the runner, history and enable/disable."""

from __future__ import annotations

import threading
import time

import pytest

import cloaca
from cloaca import DefaultRunner, DefaultRunnerConfig, TriggerResult
from cloaca.runner.triggers import parse_interval, registered_triggers, unregister_trigger
from tests.runner.test_execute import diamond


def test_trigger_result() -> None:
    fired = TriggerResult.fire({"k": 1})
    assert fired.is_fire_result() and not fired.is_skip_result()
    assert fired.context is not None and fired.context["k"] == 1
    skipped = TriggerResult.skip()
    assert skipped.is_skip_result() and not skipped.is_fire_result()
    assert TriggerResult.fire().context is None
    assert cloaca.TriggerResult is TriggerResult


def test_parse_interval() -> None:
    assert parse_interval(2) == 2.0
    assert parse_interval("100ms") == pytest.approx(0.1)
    assert parse_interval("5s") == 5.0
    assert parse_interval("2m") == 120.0
    assert parse_interval("1h") == 3600.0
    for bad in ("soon", 0, "-1s"):
        with pytest.raises(ValueError):
            parse_interval(bad)  # type: ignore[arg-type]


def _wait(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_runner_polls_trigger_and_starts_workflow(sqlite_url: str) -> None:
    calls: list[int] = []
    allow = threading.Event()

    @cloaca.trigger(on="trig_wf", name="trig_inbox", poll_interval="20ms")
    def inbox():  # type: ignore[no-untyped-def]
        calls.append(1)
        if allow.is_set() and len(calls) < 1000:
            allow.clear()
            return TriggerResult.fire({"n": 100})
        return TriggerResult.skip()

    try:
        assert inbox.__cloaca_trigger__.poll_interval == pytest.approx(0.02)
        with DefaultRunner(sqlite_url, DefaultRunnerConfig(enable_cron_scheduling=False)) as r:
            r.register_workflow(diamond("trig_wf"))
            _wait(lambda: len(calls) >= 2)  # polled, skipped
            assert r.get_trigger_execution_history("trig_inbox") == []
            allow.set()
            _wait(lambda: len(r.get_trigger_execution_history("trig_inbox")) == 1)
            fired = r.get_trigger_execution_history("trig_inbox")[0]
            result = r.wait(fired["execution_id"], timeout=30)
            assert result.status == "Completed" and result.final_context["n"] == 103
            assert fired["context"] == {"n": 100}
            record = r.get_execution(fired["execution_id"])
            assert record is not None and record.origin == "trigger"

            sched = r.get_trigger_schedule("trig_inbox")
            assert sched["workflow_name"] == "trig_wf"
            assert sched["enabled"] is True and sched["last_fired_at"] is not None
            assert "trig_inbox" in [t["name"] for t in r.list_trigger_schedules()]

            r.set_trigger_enabled("trig_inbox", False)
            assert r.list_trigger_schedules(enabled_only=True) == [] or all(
                t["name"] != "trig_inbox" for t in r.list_trigger_schedules(enabled_only=True)
            )
            time.sleep(0.1)
            seen = len(calls)
            time.sleep(0.2)
            assert len(calls) <= seen + 1  # at most a poll already in flight
            assert r.get_trigger_schedule("no_such_trigger") is None  # upstream's answer
            with pytest.raises(ValueError, match="'no_such_trigger'.*trig_inbox"):
                r.set_trigger_enabled("no_such_trigger", True)
            assert r.get_trigger_execution_history("no_such_trigger") == []
    finally:
        unregister_trigger("trig_inbox")
    assert "trig_inbox" not in [t.name for t in registered_triggers()]


def test_trigger_returning_garbage_is_skipped(sqlite_url: str) -> None:
    calls: list[int] = []

    @cloaca.trigger(workflow="trig_bad_wf", name="trig_bad", poll_interval=0.02)
    def bad():  # type: ignore[no-untyped-def]
        calls.append(1)
        return "yes please"

    try:
        with DefaultRunner(sqlite_url, DefaultRunnerConfig(enable_cron_scheduling=False)) as r:
            r.register_workflow(diamond("trig_bad_wf"))
            _wait(lambda: len(calls) >= 2)
            assert r.get_trigger_execution_history("trig_bad") == []
            assert r.list_executions(workflow_name="trig_bad_wf") == []
    finally:
        unregister_trigger("trig_bad")


# ----------------------------------------------------------------------------- upstream surface
def test_trigger_result_upstream_constructor_and_repr() -> None:
    # upstream's reference: TriggerResult(should_fire=True, context={...}); repr names should_fire
    fired = TriggerResult(should_fire=True, context={"key": "value"})
    assert fired.is_fire_result() and fired.should_fire and fired.context is not None
    assert fired.context["key"] == "value"
    assert repr(fired) == repr(TriggerResult.fire()) == "TriggerResult(should_fire=True)"
    assert repr(TriggerResult(should_fire=False)) == "TriggerResult(should_fire=False)"
    assert repr(TriggerResult.skip()) == "TriggerResult(should_fire=False)"
    ctx = cloaca.Context({"key": "value"})
    assert TriggerResult.fire(ctx).context is ctx


def test_decorator_takes_on_and_defaults_as_upstream() -> None:
    try:

        @cloaca.trigger(on="my_workflow")
        def my_trigger():  # type: ignore[no-untyped-def]
            return TriggerResult.skip()

        spec = my_trigger.__cloaca_trigger__
        assert (spec.name, spec.workflow, spec.poll_interval) == ("my_trigger", "my_workflow", 30.0)
        assert spec.allow_concurrent is False and spec.cron is None

        @cloaca.trigger(name="unbound_poll", poll_interval="1m")
        def unbound():  # type: ignore[no-untyped-def]
            return TriggerResult.fire()

        assert unbound.__cloaca_trigger__.workflow is None  # on= is optional for poll triggers
    finally:
        unregister_trigger("my_trigger")
        unregister_trigger("unbound_poll")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"on": "w", "cron": "0 * * * * *", "poll_interval": "5s"},
            "either cron= or poll_interval=",
        ),
        ({"cron": "0 * * * * *"}, "needs on="),
        ({"on": "w", "workflow": "v"}, "disagree"),
        ({"on": "w", "cron": "every hour"}, "'every hour'"),
        ({"on": "w", "cron": "0 * * * *", "timezone": "Mars/Olympus"}, "Mars/Olympus"),
        ({"on": "w", "timezone": "UTC"}, "cron= triggers only"),
        ({"on": "w", "poll_interval": "soon"}, "poll_interval"),
    ],
)
def test_bad_trigger_arguments_raise_value_error(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=message):
        cloaca.trigger(name="never_registered", **kwargs)
    assert "never_registered" not in [t.name for t in registered_triggers()]


def test_cron_trigger_registers_a_cron_schedule_once(sqlite_url: str) -> None:
    calls: list[int] = []

    @cloaca.trigger(on="trig_cron_wf", cron="0 30 9 * * 1-5", timezone="Europe/Paris")
    def nightly():  # type: ignore[no-untyped-def]
        calls.append(1)  # never polled: a cron trigger's body is unused
        return TriggerResult.fire()

    cfg = DefaultRunnerConfig(enable_cron_scheduling=False)
    try:
        with DefaultRunner(sqlite_url, cfg) as r:
            r.register_workflow(diamond("trig_cron_wf"))
            _wait(lambda: len(r.list_cron_schedules()) == 1)
            (sched,) = r.list_cron_schedules()
            assert (sched["workflow_name"], sched["cron_expression"], sched["timezone"]) == (
                "trig_cron_wf", "0 30 9 * * 1-5", "Europe/Paris",
            )  # fmt: skip
            local = sched["next_run_at"].astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
            assert (local.hour, local.minute, local.second) == (9, 30, 0) and local.weekday() < 5
            assert r.get_trigger_schedule("nightly") is None  # not a polled trigger
        with DefaultRunner(sqlite_url, cfg) as again:  # a second runner does not add another
            again.register_workflow(diamond("trig_cron_wf"))
            again._trigger_tick()
            assert len(again.list_cron_schedules()) == 1
        assert calls == []
    finally:
        unregister_trigger("nightly")


def test_schedule_and_history_carry_upstreams_keys(sqlite_url: str) -> None:
    fired = threading.Event()

    @cloaca.trigger(on="trig_keys_wf", name="trig_keys", poll_interval="20ms")
    def once():  # type: ignore[no-untyped-def]
        if fired.is_set():
            return TriggerResult.skip()
        fired.set()
        return TriggerResult.fire(cloaca.Context({"filename": "data_123.csv"}))

    try:
        with DefaultRunner(sqlite_url, DefaultRunnerConfig(enable_cron_scheduling=False)) as r:
            r.register_workflow(diamond("trig_keys_wf"))
            _wait(lambda: len(r.get_trigger_execution_history("trig_keys")) == 1)
            (h,) = r.get_trigger_execution_history("trig_keys")
            r.wait(h["workflow_execution_id"], timeout=30)
            (h,) = r.get_trigger_execution_history("trig_keys")
            assert (
                h["schedule_id"] == "trig_keys" and h["workflow_execution_id"] == h["execution_id"]
            )
            assert h["started_at"] is not None and h["completed_at"] >= h["started_at"]
            assert len(h["context_hash"]) == 64
            sched = r.get_trigger_schedule("trig_keys")
            assert sched is not None
            assert (sched["trigger_name"], sched["workflow_name"], sched["poll_interval_ms"]) == (
                "trig_keys", "trig_keys_wf", 20,
            )  # fmt: skip
            listed = [s["trigger_name"] for s in r.list_trigger_schedules()]
            assert "trig_keys" in listed
    finally:
        unregister_trigger("trig_keys")
