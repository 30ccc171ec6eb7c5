"""Durable acknowledgement on a real SQLite file whose write lock another connection holds
(the database refuses writes with "database is locked" meanwhile): a new execution is
committed before ``submit`` returns or refused with ``StorageUnavailableError`` leaving
nothing behind; task-state changes that fail are kept and land once writes work again."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cloaca import DefaultRunner, DefaultRunnerConfig, Workflow
from cloaca.errors import StorageUnavailableError
from cloaca.storage.models import pipeline_executions as pe
from cloaca.storage.models import task_executions as te
from cloaca.task import make_spec


@contextmanager
def write_locked(path: Path) -> Iterator[None]:
    """Hold the database's write lock (``BEGIN IMMEDIATE``) from another connection."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def count(runner: DefaultRunner, table: object) -> int:
    with runner.store.read() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)))  # type: ignore[arg-type]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "runner.db"


def config(timeout: float) -> DefaultRunnerConfig:
    return DefaultRunnerConfig(enable_cron_scheduling=False, db_write_timeout_seconds=timeout)


def test_submit_is_refused_and_leaves_nothing_when_it_cannot_commit(db: Path) -> None:
    wf = Workflow("dur_one", {"a": make_spec(lambda ctx: ctx, id="a")})
    with DefaultRunner(f"sqlite:///{db}?_busy_timeout=100", config(0.5)) as runner:
        assert runner.execute(wf, {"x": 1}).status == "Completed"
        with write_locked(db):
            with pytest.raises(StorageUnavailableError, match=r"within 0\.5s"):
                runner.submit(wf, {"x": 2})
        runner.writer.flush(30)
        assert count(runner, pe) == 1  # only the first execution
        assert count(runner, te) == 1


def test_submit_waits_out_a_short_outage_and_commits_before_returning(db: Path) -> None:
    wf = Workflow("dur_two", {"a": make_spec(lambda ctx: ctx, id="a")})
    with DefaultRunner(f"sqlite:///{db}?_busy_timeout=100", config(30)) as runner:
        with write_locked(db):
            done: list[str] = []
            t = threading.Thread(target=lambda: done.append(runner.submit(wf, {"x": 3})))
            t.start()
            time.sleep(1.0)
            assert not done  # not acknowledged while it is not recorded
        t.join(30)
        assert done
        # committed before submit returned: a fresh connection sees it
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("SELECT count(*) FROM pipeline_executions").fetchone() == (1,)
        finally:
            conn.close()
        assert runner.wait(done[0], timeout=30).status == "Completed"


def test_task_changes_that_fail_are_kept_and_land_later(db: Path) -> None:
    release = threading.Event()

    def slow(ctx):  # type: ignore[no-untyped-def]
        release.wait(30)
        ctx["slow"] = True
        return ctx

    def after(ctx):  # type: ignore[no-untyped-def]
        ctx["after"] = ctx["slow"]
        return ctx

    wf = Workflow(
        "dur_three",
        {
            "slow": make_spec(slow, id="slow"),
            "after": make_spec(after, id="after", dependencies=["slow"]),
        },
    )
    with DefaultRunner(f"sqlite:///{db}?_busy_timeout=100", config(10)) as runner:
        eids = [runner.submit(wf, {"i": i}) for i in range(3)]
        with write_locked(db):
            release.set()  # the tasks finish while every write is refused
            deadline = time.monotonic() + 30
            while not runner.writer.retrying:
                assert time.monotonic() < deadline, "the writer never met the locked database"
                time.sleep(0.05)
            time.sleep(0.5)
        for eid in eids:
            result = runner.wait(eid, timeout=60)
            assert result.status == "Completed"
            record = runner.get_execution(eid)
            assert record is not None and record.status == "Completed"
            assert [t.status for t in record.tasks] == ["Completed", "Completed"]
            assert record.final_context is not None and record.final_context["after"] is True


@pytest.mark.postgres
def test_a_change_refused_for_good_is_isolated_not_the_whole_batch(
    pg_url: str, pg_schema: str
) -> None:
    """An error type longer than its column (255) makes PostgreSQL refuse that task row's
    update for good; the rest of its batches (other executions, the execution's end) are
    still written, so nothing stays Running."""
    long_error = type("E" * 300, (Exception,), {})

    def fails(ctx):  # type: ignore[no-untyped-def]
        raise long_error("too long a name")

    bad = Workflow("dur_long", {"a": make_spec(fails, id="a")})
    good = Workflow("dur_ok", {"a": make_spec(lambda ctx: ctx, id="a")})
    with DefaultRunner.with_schema(pg_url, pg_schema, config(10)) as runner:
        ids = [runner.submit(bad, {}), runner.submit(good, {}), runner.submit(good, {})]
        results = [runner.wait(eid, timeout=60) for eid in ids]
        assert [r.status for r in results] == ["Failed", "Completed", "Completed"]
        stored = [runner.get_execution(eid) for eid in ids]
        assert [rec.status if rec else None for rec in stored] == [
            "Failed",
            "Completed",
            "Completed",
        ]
        assert all(t.status == "Completed" for rec in stored[1:] if rec for t in rec.tasks)


@pytest.mark.postgres
def test_a_nul_in_an_error_message_is_recorded(pg_url: str, pg_schema: str) -> None:
    """PostgreSQL text cannot hold NUL; the failure is stored with the NUL spelled out."""

    def nul(ctx):  # type: ignore[no-untyped-def]
        raise ValueError("bad\x00byte")

    with DefaultRunner.with_schema(pg_url, pg_schema, config(10)) as runner:
        result = runner.execute(Workflow("dur_nul", {"a": make_spec(nul, id="a")}), {})
        assert result.status == "Failed"
        record = runner.get_execution(result.execution_id)
        assert record is not None and record.status == "Failed"
        (task,) = record.tasks
        assert task.status == "Failed"
        assert task.error_message == "bad\\x00byte"
