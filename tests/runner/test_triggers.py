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

    @cloaca.trigger(workflow="trig_wf", name="trig_inbox", poll_interval="20ms")
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
            with pytest.raises(KeyError):
                r.get_trigger_schedule("no_such_trigger")
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
