"""The execution event log: events recorded as they happen, numbered per execution — every
attempt of a retried task, skips and the end of the run — read back identically by another
runner on the same database (SQLite file, PostgreSQL tenant schema)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloaca import DefaultRunner, DefaultRunnerConfig, Workflow
from cloaca.retry import RetryPolicy
from cloaca.runner.event_log import list_events
from cloaca.task import make_spec

CONFIG = DefaultRunnerConfig(enable_cron_scheduling=False)


def _flaky_workflow(marker: Path) -> Workflow:
    def flaky(ctx):  # type: ignore[no-untyped-def]
        if not marker.exists():
            marker.write_text("failed once")
            raise RuntimeError("first attempt fails")
        ctx["flaky"] = "ok"
        return ctx

    def boom(ctx):  # type: ignore[no-untyped-def]
        raise ValueError("always")

    def after(ctx):  # type: ignore[no-untyped-def]
        return ctx

    retry = RetryPolicy(max_attempts=2, initial_delay=0.0)
    specs = {
        "flaky": make_spec(flaky, id="flaky", retry=retry),
        "boom": make_spec(boom, id="boom", dependencies=["flaky"], retry_attempts=1),
        "after": make_spec(after, id="after", dependencies=["boom"]),
    }
    return Workflow("evlog", specs)


def _check(url: str, marker: Path, schema: str | None = None) -> None:
    with DefaultRunner(url, CONFIG, schema=schema) as runner:
        result = runner.execute(_flaky_workflow(marker))
        eid = result.execution_id
        assert eid is not None and result.status == "Failed"
        log = list_events(runner.store, eid)
    assert [e.sequence_num for e in log] == list(range(1, len(log) + 1))
    pairs = [(e.event_type, e.task_id) for e in log]
    assert pairs == [
        ("task_created", "flaky"),
        ("task_created", "boom"),
        ("task_created", "after"),
        ("workflow_started", None),
        ("task_started", "flaky"),
        ("task_failed", "flaky"),
        ("task_retrying", "flaky"),
        ("task_started", "flaky"),
        ("task_completed", "flaky"),
        ("task_started", "boom"),
        ("task_failed", "boom"),
        ("task_skipped", "after"),
        ("workflow_failed", None),
    ]
    data = [json.loads(e.data) if e.data else None for e in log]
    assert data[5] == {
        "attempt": 1, "error": data[5]["error"], "error_type": "RuntimeError", "will_retry": True,
    }  # fmt: skip
    assert "first attempt fails" in data[5]["error"]
    assert data[7] == {"attempt": 2} and data[8] == {"attempt": 2}
    assert data[10]["will_retry"] is False and "always" in data[10]["error"]
    assert data[10]["error_type"] == "ValueError"
    with DefaultRunner(url, CONFIG, schema=schema) as other:  # another runner, same database
        assert list_events(other.store, eid) == log
        assert list_events(other.store, eid, after=11) == log[11:]


def test_retried_task_records_every_attempt_on_sqlite(sqlite_url: str, tmp_path: Path) -> None:
    _check(sqlite_url, tmp_path / "marker")


@pytest.mark.postgres
def test_retried_task_records_every_attempt_on_postgres(
    pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    _check(pg_url, tmp_path / "marker", schema=pg_schema)


def test_pending_execution_gets_task_created_then_started_when_claimed(
    sqlite_url: str, tmp_path: Path
) -> None:
    with DefaultRunner(sqlite_url, CONFIG) as runner:
        wf = _flaky_workflow(tmp_path / "marker")
        runner.register_workflow(wf)
        eid = runner.enqueue("evlog")
        assert [e.event_type for e in list_events(runner.store, eid)] == ["task_created"] * 3
        runner.claim_work()
        runner.wait(eid, timeout=60)
        kinds = [e.event_type for e in list_events(runner.store, eid)]
    assert kinds[3] == "workflow_started" and kinds[-1] == "workflow_failed"
