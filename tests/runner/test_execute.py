"""DefaultRunner on real SQLite files: execute, results, history, submit/wait, async."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from cloaca import Context, DefaultRunner, DefaultRunnerConfig, Workflow, WorkflowBuilder, task
from cloaca.errors import StorageError, WorkflowNotFoundError
from cloaca.task import make_spec

CONFIG = DefaultRunnerConfig(enable_cron_scheduling=False)


def _add(ctx):  # type: ignore[no-untyped-def]
    ctx["n"] = ctx.get("n", 0) + 1
    return ctx


def _boom(ctx):  # type: ignore[no-untyped-def]
    raise ValueError("boom")


def diamond(name: str = "rt_diamond", fail: bool = False) -> Workflow:
    specs = {
        "a": make_spec(_add, id="a"),
        "b": make_spec(_add, id="b", dependencies=["a"]),
        "c": make_spec(_boom if fail else _add, id="c", dependencies=["a"], retry_attempts=1),
        "d": make_spec(_add, id="d", dependencies=["b", "c"]),
    }
    return Workflow(name, specs)


@pytest.fixture
def runner(sqlite_url: str):  # type: ignore[no-untyped-def]
    with DefaultRunner(sqlite_url, CONFIG) as r:
        yield r


def test_execute_registered_name_returns_result_with_id(runner: DefaultRunner) -> None:
    with WorkflowBuilder("rt_named"):

        @task(id="hello")
        def hello(ctx):  # type: ignore[no-untyped-def]
            ctx["greeting"] = f"hi {ctx['who']}"
            return ctx

    result = runner.execute("rt_named", Context({"who": "ada"}))
    assert result.status == "Completed"
    assert result.error_message is None
    assert result.final_context["greeting"] == "hi ada"
    assert result.execution_id
    assert result.tasks["hello"].status == "Completed"


def test_execute_workflow_object_and_history(runner: DefaultRunner) -> None:
    result = runner.execute(diamond(), {"n": 10})
    assert result.status == "Completed"
    record = runner.get_execution(result.execution_id)
    assert record is not None
    assert record.status == "Completed"
    assert record.context == {"n": 10}
    assert record.final_context == result.final_context.to_dict()
    assert [t.task_id for t in record.tasks] == ["a", "b", "c", "d"]
    assert {t.status for t in record.tasks} == {"Completed"}
    assert record.tasks[0].output == {"n": 11}
    assert record.tasks[0].output_context["n"] == 11  # type: ignore[index]
    assert all(t.attempts == 1 and t.started_at and t.finished_at for t in record.tasks)
    listed = runner.list_executions(workflow_name="rt_diamond")
    assert [e.id for e in listed] == [result.execution_id]
    assert listed[0].to_dict()["status"] == "Completed"


def test_failed_task_is_recorded_with_error_and_skips(runner: DefaultRunner) -> None:
    result = runner.execute(diamond("rt_fail", fail=True))
    assert result.status == "Failed"
    assert "boom" in (result.error_message or "")
    record = runner.get_execution(result.execution_id)
    assert record is not None and record.status == "Failed"
    by_id = {t.task_id: t for t in record.tasks}
    assert by_id["c"].status == "Failed"
    assert by_id["c"].error_type == "ValueError"
    assert by_id["c"].error_message == "boom"
    assert "ValueError" in (by_id["c"].traceback or "")
    assert by_id["d"].status == "Skipped"
    assert by_id["d"].skip_reason == "upstream failed: c"
    assert runner.list_executions(status="Failed")[0].id == result.execution_id


def test_unknown_workflow_raises_not_found(runner: DefaultRunner) -> None:
    with pytest.raises(WorkflowNotFoundError):
        runner.execute("rt_no_such_workflow")


def test_submit_and_wait(runner: DefaultRunner) -> None:
    ids = [runner.submit(diamond("rt_submit"), {"n": i}) for i in range(5)]
    results = [runner.wait(eid) for eid in ids]
    assert [r.final_context["n"] for r in results] == [i + 3 for i in range(5)]
    assert {r.execution_id for r in results} == set(ids)
    # a finished execution is rebuilt from the database
    again = runner.wait(ids[0])
    assert again.status == "Completed" and again.final_context["n"] == 3
    assert again.tasks["d"].attempts == 1


async def test_execute_async(runner: DefaultRunner) -> None:
    results = await asyncio.gather(*(runner.execute_async(diamond("rt_async")) for _ in range(3)))
    assert {r.status for r in results} == {"Completed"}
    assert len(runner.list_executions(workflow_name="rt_async")) == 3


def test_register_workflow_under_another_name(runner: DefaultRunner) -> None:
    runner.register_workflow(diamond("rt_inner"), name="my-package")
    result = runner.execute("my-package")
    assert result.status == "Completed"
    assert result.workflow_name == "my-package"
    assert "my-package" in runner.known_workflows()


def test_selection_is_recorded(runner: DefaultRunner) -> None:
    result = runner.execute(diamond("rt_sel"), {"n": 0}, only=["b"])
    assert list(result.tasks) == ["b"]
    record = runner.get_execution(result.execution_id)
    assert record is not None and [t.task_id for t in record.tasks] == ["b"]


def test_history_survives_reopen_and_registrations_are_recorded(sqlite_url: str) -> None:
    wf = diamond("rt_reopen")
    with DefaultRunner(sqlite_url, CONFIG) as r1:
        eid = r1.execute(wf).execution_id
    with DefaultRunner(sqlite_url, CONFIG) as r2:
        record = r2.get_execution(eid)
        assert record is not None and record.status == "Completed"
    path = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name, version FROM workflow_registrations").fetchall()
    assert ("rt_reopen", wf.version) in rows


def test_in_memory_database() -> None:
    with DefaultRunner("sqlite:///:memory:", CONFIG) as r:
        result = r.execute(diamond("rt_memory"))
        assert result.status == "Completed"
        assert r.get_execution(result.execution_id) is not None


def test_relative_sqlite_url_as_cloacina_users_write_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with DefaultRunner("sqlite://relative.db?mode=rwc", CONFIG) as r:
        assert r.execute(diamond("rt_relative")).status == "Completed"
    assert (tmp_path / "relative.db").exists()


def test_shutdown_then_execute_raises(sqlite_url: str) -> None:
    r = DefaultRunner(sqlite_url, CONFIG)
    r.shutdown()
    r.shutdown()  # idempotent
    with pytest.raises(StorageError):
        r.execute(diamond("rt_closed"))


def test_get_unknown_execution_is_none(runner: DefaultRunner) -> None:
    assert runner.get_execution("nope") is None
    with pytest.raises(KeyError):
        runner.wait("nope")


def test_workflow_timeout_marks_unfinished(sqlite_url: str) -> None:
    import time

    def sleepy(ctx):  # type: ignore[no-untyped-def]
        time.sleep(0.5)
        return ctx

    wf = Workflow(
        "rt_wf_timeout",
        {"s": make_spec(sleepy, id="s"), "t": make_spec(_add, id="t", dependencies=["s"])},
    )
    cfg = DefaultRunnerConfig(enable_cron_scheduling=False, workflow_timeout_seconds=0.05)
    with DefaultRunner(sqlite_url, cfg) as r:
        result = r.execute(wf)
        assert result.status == "Failed"
        record = r.get_execution(result.execution_id)
        assert record is not None
        assert {t.task_id: t.status for t in record.tasks} == {"s": "Failed", "t": "Skipped"}


def test_without_task_timeout_tasks_run_inline_and_are_recorded(sqlite_url: str) -> None:
    cfg = DefaultRunnerConfig(enable_cron_scheduling=False, task_timeout_seconds=None)
    with DefaultRunner(sqlite_url, cfg) as r:
        result = r.execute(diamond("rt_inline", fail=True), {"n": 0})
        record = r.get_execution(result.execution_id)
    assert result.status == "Failed"
    assert record is not None
    assert {t.task_id: t.status for t in record.tasks} == {
        "a": "Completed",
        "b": "Completed",
        "c": "Failed",
        "d": "Skipped",
    }
    assert record.tasks[1].output == {"n": 2}
