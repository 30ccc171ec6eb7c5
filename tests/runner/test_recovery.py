"""Crash recovery for real: a child process runs a workflow, is SIGKILLed mid-task, and a new
runner on the same SQLite file resumes the execution."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from cloaca import DefaultRunner, DefaultRunnerConfig, Workflow
from cloaca.runner.recovery import plan_resume
from cloaca.storage import Store
from cloaca.task import make_spec
from tests.runner.conftest import FIXTURES, spawn

sys.path.insert(0, str(FIXTURES))
import crashflow  # noqa: F401  (registers the "crashflow" workflow in this process too)

CONFIG = DefaultRunnerConfig(enable_cron_scheduling=False)
CHILD = """
from cloaca import DefaultRunner, DefaultRunnerConfig
import crashflow
runner = DefaultRunner({url!r}, DefaultRunnerConfig(enable_cron_scheduling=False))
runner.execute("crashflow", {{"seed": 1}})
"""


def _count(folder: Path, task_id: str, kind: str) -> int:
    return sum(1 for p in folder.iterdir() if p.name.startswith(f"{task_id}.{kind}."))


def _wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def _task_states(url: str) -> dict[str, tuple[str, int]]:
    from sqlalchemy import select

    from cloaca.storage.models import task_executions as te

    store = Store(url)
    try:
        with store.read() as conn:
            rows = conn.execute(select(te.c.task_id, te.c.status, te.c.attempts)).all()
    finally:
        store.dispose()
    return {r.task_id: (r.status, r.attempts) for r in rows}


@pytest.mark.slow
def test_sigkill_mid_task_then_new_runner_resumes(tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    os.environ["CLOACA_TEST_MARKERS"] = str(markers)
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    child = spawn(CHILD.format(url=url), env={"CLOACA_TEST_MARKERS": str(markers)})
    try:
        # the child is inside slow's first attempt, and the finished tasks are on disk
        _wait_for(lambda: child.poll() is not None or _count(markers, "slow", "start") == 1)
        assert child.poll() is None, child.stderr.read().decode()  # type: ignore[union-attr]
        _wait_for(
            lambda: (
                _task_states(url).get("side", ("", 0))[0] == "Completed"
                and _task_states(url).get("slow", ("", 0))[0] == "Running"
            )
        )
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    states = _task_states(url)
    assert states["first"] == ("Completed", 1)
    assert states["slow"] == ("Running", 1)
    assert states["last"] == ("Pending", 0)

    with DefaultRunner(url, CONFIG) as runner:
        executions = runner.list_executions(workflow_name="crashflow")
        assert len(executions) == 1
        result = runner.wait(executions[0].id, timeout=60)
        record = runner.get_execution(executions[0].id)

    assert result.status == "Completed", result.error_message
    assert result.final_context["last"] == [2, "done"]
    assert result.final_context["seed"] == 1
    assert record is not None and record.recovery_count == 1
    attempts = {t.task_id: (t.status, t.attempts) for t in record.tasks}
    assert attempts == {
        "first": ("Completed", 1),
        "side": ("Completed", 1),
        "slow": ("Completed", 2),  # the interrupted attempt counts
        "last": ("Completed", 1),
    }
    # every task completed exactly once; only the interrupted one started twice
    for task_id in ("first", "side", "slow", "last"):
        assert _count(markers, task_id, "done") == 1, task_id
    assert _count(markers, "first", "start") == 1
    assert _count(markers, "side", "start") == 1
    assert _count(markers, "slow", "start") == 2
    assert _count(markers, "last", "start") == 1

    # the event log kept both attempts of slow and says the run was resumed
    from cloaca.runner.event_log import list_events

    store = Store(url)
    try:
        log = list_events(store, executions[0].id)
    finally:
        store.dispose()
    assert [e.sequence_num for e in log] == list(range(1, len(log) + 1))
    kinds = [e.event_type for e in log]
    assert kinds.count("workflow_started") == 1 and kinds.count("workflow_resumed") == 1
    assert kinds[-1] == "workflow_completed"
    slow = [(e.event_type, e.data) for e in log if e.task_id == "slow"]
    assert [k for k, _ in slow] == [
        "task_created",
        "task_started",
        "task_recovered",
        "task_started",
        "task_completed",
    ]
    recovered = json.loads(slow[2][1])
    assert {k: recovered[k] for k in ("attempt", "recovery", "max_recoveries")} == {
        "attempt": 1,
        "recovery": 1,
        "max_recoveries": 3,
    }
    assert "runner died" in recovered["reason"]
    assert slow[3][1] == '{"attempt": 2}'
    assert kinds.index("workflow_resumed") < kinds.index("task_recovered")


# ---------------------------------------------------------------------------- resume plans
def _noop(ctx):  # type: ignore[no-untyped-def]
    return ctx


def _row(task_id: str, status: str, attempts: int = 1, output: str | None = None, **kw):  # type: ignore[no-untyped-def]
    row = {
        "task_id": task_id,
        "status": status,
        "attempts": attempts,
        "started_at": 1.0,
        "finished_at": 2.0 if status in ("Completed", "Failed", "Skipped") else None,
        "error_type": None,
        "error_message": None,
        "traceback": None,
        "skip_reason": None,
        "output": output,
    }
    row.update(kw)
    return row


def _wf(attempts: int) -> Workflow:
    return Workflow(
        "rt_plan",
        {
            "a": make_spec(_noop, id="a"),
            "b": make_spec(_noop, id="b", dependencies=["a"], retry_attempts=attempts),
            "c": make_spec(_noop, id="c", dependencies=["a"]),
            "d": make_spec(_noop, id="d", dependencies=["b", "c"]),
        },
    )


def test_plan_recomputes_deltas_from_outputs() -> None:
    rows = [
        _row("a", "Completed", output='{"x": 0, "a": 1}'),
        _row("b", "Completed", output='{"x": 0, "a": 1, "b": 2}'),
        _row("c", "Completed", output='{"a": 1, "c": 3}'),  # c removed x
    ]
    plan = plan_resume(_wf(0), {"x": 0}, rows)
    assert plan.completed["a"].delta == {"a": 1}
    assert plan.completed["b"].delta == {"b": 2}
    assert plan.completed["c"].delta == {"c": 3}
    assert plan.completed["c"].removed == ("x",)
    assert plan.workflow.tasks["d"].fn is _noop


def test_interrupted_task_is_recovered_without_charging_its_retries() -> None:
    rows = [_row("a", "Completed", output="{}"), _row("b", "Running", attempts=2)]
    plan = plan_resume(_wf(3), {}, rows)  # 3 attempts in all; 1 failed, 1 lost with its runner
    assert plan.offsets == {"b": 2}
    assert plan.recovered == {"b": 2} and plan.recoveries == {"b": 1}
    assert plan.workflow.tasks["b"].retry.max_attempts == 2  # the lost attempt is not charged
    assert not plan.exhausted
    no_retries = plan_resume(
        _wf(0), {}, [_row("a", "Completed", output="{}"), _row("b", "Running")]
    )
    assert no_retries.workflow.tasks["b"].retry.max_attempts == 1
    assert no_retries.recovered == {"b": 1} and not no_retries.exhausted


def test_recovered_then_lost_again_before_starting_keeps_numbering() -> None:
    rows = [
        _row("a", "Completed", output="{}"),
        _row("b", "Pending", attempts=2, recovery_attempts=1),
    ]
    plan = plan_resume(_wf(3), {}, rows)
    assert plan.offsets == {"b": 2} and plan.recoveries == {"b": 1} and not plan.recovered
    assert plan.workflow.tasks["b"].retry.max_attempts == 2


def test_used_up_recovery_budget_fails_and_failed_task_is_not_rerun(sqlite_url: str) -> None:
    rows = [
        _row("a", "Completed", output="{}"),
        _row("b", "Running", attempts=4, recovery_attempts=3),
        _row("c", "Failed", error_type="KeyError", error_message="'k'"),
    ]
    plan = plan_resume(_wf(0), {}, rows, max_recoveries=3)
    assert plan.exhausted == {"b", "c"}
    assert plan_resume(_wf(0), {}, rows, max_recoveries=4).recovered == {"b": 4}
    with DefaultRunner(sqlite_url, CONFIG) as runner:
        result = runner.execute(plan.workflow)
    assert result.status == "Failed"
    err = result.tasks["b"].error
    assert err is not None and err.error_type == "Interrupted"
    assert "max_recovery_attempts=3" in err.message and "recovered 3 time(s)" in err.message
    assert result.tasks["c"].error is not None and result.tasks["c"].error.error_type == "KeyError"
    assert result.tasks["d"].status == "Skipped"
