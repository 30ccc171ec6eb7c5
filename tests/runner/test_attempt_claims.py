"""Per-attempt claims (:mod:`cloaca.runner.attempts`): refused claims, the default per backend,
and a runner stalled with SIGSTOP on PostgreSQL that must not start an attempt after waking."""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from cloaca import DefaultRunner, DefaultRunnerConfig
from cloaca.runner.attempts import claim_attempt, count_claimed
from cloaca.storage import Store
from cloaca.storage.models import pipeline_executions as pe
from cloaca.storage.models import task_executions as te
from tests.runner.conftest import FIXTURES, spawn
from tests.runner.test_execute import diamond

sys.path.insert(0, str(FIXTURES))
import stallflow  # noqa: F401  (registers "stallflow" here too, for the taking-over runner)

IDLE = DefaultRunnerConfig(
    enable_cron_scheduling=False, enable_recovery=False, scheduler_poll_interval_ms=10**9
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, sqlite_url: str) -> tuple[str, str | None]:
    """(url, schema) on a SQLite file, and on PostgreSQL in a unique schema."""
    if request.param == "sqlite":
        return sqlite_url, None
    return request.getfixturevalue("pg_url"), request.getfixturevalue("pg_schema")


def test_claims_of_a_claimed_attempt_or_a_foreign_execution_are_refused(
    db: tuple[str, str | None],
) -> None:
    url, schema = db
    with DefaultRunner(url, IDLE, schema=schema) as runner:
        eid = runner.enqueue(diamond("claim_unit"), {"n": 0})
        store, me = runner.store, runner.runner_id
        assert not claim_attempt(store, me, eid, "a", 1), "nobody owns it yet"
        with store.write() as conn:
            conn.execute(update(pe).where(pe.c.id == eid).values(owner=me))
        assert claim_attempt(store, me, eid, "a", 1)
        assert not claim_attempt(store, me, eid, "a", 1), "attempt 1 is claimed already"
        assert claim_attempt(store, me, eid, "a", 2)
        assert not claim_attempt(store, me, eid, "a", 1), "an older attempt"
        assert not claim_attempt(store, str(uuid.uuid4()), eid, "a", 3), "not the owner"
        assert not claim_attempt(store, me, eid, "nope", 1), "no such task"
        assert claim_attempt(store, me, eid, "b", 1)
        with store.read() as conn:
            rows = [
                dict(r._mapping) for r in conn.execute(select(te).where(te.c.execution_id == eid))
            ]
        by_task = {r["task_id"]: r for r in count_claimed(rows)}
        assert (by_task["a"]["claimed_attempt"], by_task["a"]["attempt_owner"]) == (2, me)
        assert (by_task["a"]["attempts"], by_task["a"]["status"]) == (2, "Running")
        assert (by_task["c"]["attempts"], by_task["c"]["status"]) == (0, "Pending")


def test_claims_default_by_backend_and_record_every_attempt(db: tuple[str, str | None]) -> None:
    url, schema = db
    quiet = DefaultRunnerConfig(enable_cron_scheduling=False, task_timeout_seconds=None)
    for claim in (None, True):
        with DefaultRunner(url, quiet, schema=schema, claim_attempts=claim) as runner:
            assert runner.claim_attempts is (schema is not None if claim is None else claim)
            result = runner.execute(diamond(f"claim_default_{claim}"), {"n": 0})
            assert result.status == "Completed" and result.final_context["n"] == 3
            with runner.store.read() as conn:
                rows = conn.execute(
                    select(te.c.claimed_attempt, te.c.attempt_owner).where(
                        te.c.execution_id == result.execution_id
                    )
                ).all()
            want = (1, runner.runner_id) if runner.claim_attempts else (None, None)
            assert [tuple(r) for r in rows] == [want] * 4


STALL_CHILD = """
import os, stallflow
from cloaca import DefaultRunner, DefaultRunnerConfig
cfg = DefaultRunnerConfig(enable_cron_scheduling=False, enable_recovery=False)
runner = DefaultRunner({url!r}, cfg, schema={schema!r}, heartbeat_interval=0.1, stale_after=1.0)
markers = os.environ["CLOACA_TEST_MARKERS"]
eid = runner.submit("stallflow", {{}})
with open(os.path.join(markers, "eid"), "w") as fh:
    fh.write(eid + " " + runner.runner_id)
try:
    outcome = "finished: " + runner.wait(eid, timeout=120).status
except Exception as exc:
    outcome = "stopped: " + str(exc)
with open(os.path.join(markers, "outcome"), "w") as fh:
    fh.write(outcome)
runner.shutdown()
"""


def _wait_for(predicate: Any, what: str, child: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert child.poll() is None or predicate(), child.stderr.read().decode()
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.postgres
@pytest.mark.slow
def test_stalled_runner_starts_no_attempt_after_a_takeover(
    pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    child = spawn(
        STALL_CHILD.format(url=pg_url, schema=pg_schema), {"CLOACA_TEST_MARKERS": str(markers)}
    )
    os.environ["CLOACA_TEST_MARKERS"] = str(markers)  # for the attempts run in this process
    store = Store(pg_url, schema=pg_schema)
    try:
        _wait_for(lambda: (markers / "eid").exists() and any(markers.glob("block.*")), "A", child)
        eid, runner_a = (markers / "eid").read_text().split()

        def block_running() -> bool:
            with store.read() as conn:
                row = conn.execute(
                    select(te.c.status, te.c.attempts).where(
                        te.c.execution_id == eid, te.c.task_id == "block"
                    )
                ).one()
            return tuple(row) == ("Running", 1)

        _wait_for(block_running, "A's record of block's first attempt", child)
        os.kill(child.pid, signal.SIGSTOP)  # A stalls inside block's first attempt
        (markers / "release").touch()
        config = DefaultRunnerConfig(enable_cron_scheduling=False, scheduler_poll_interval_ms=10)
        with DefaultRunner(
            pg_url, config, schema=pg_schema, heartbeat_interval=0.1, stale_after=1.0
        ) as runner_b:
            result = runner_b.wait(eid, timeout=60)  # B takes over once A's heartbeat is stale
            runner_b_id = runner_b.runner_id
            os.kill(child.pid, signal.SIGCONT)  # A wakes: block's attempt 1 returns
            _wait_for(lambda: (markers / "outcome").exists(), "A's outcome", child)
            _out, err = child.communicate(timeout=60)
            assert child.returncode == 0, err.decode()
            record = runner_b.get_execution(eid)
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGCONT)
            child.kill()
        os.environ.pop("CLOACA_TEST_MARKERS", None)
    assert result.status == "Completed"
    outcome = (markers / "outcome").read_text()
    print("runner A:", outcome)
    assert outcome.startswith("stopped: ")
    starts: dict[str, list[int]] = {}
    for path in markers.iterdir():
        if path.name.startswith(("first.", "block.", "last.")):
            task_id, pid, _ = path.name.split(".")
            starts.setdefault(task_id, []).append(int(pid))
    b_pid = os.getpid()
    # every (task, attempt) started once across both processes: first (A), block 1 (A),
    # block 2 (B), last (B) — A started nothing after it woke up
    assert sorted(starts["first"]) == [child.pid]
    assert sorted(starts["block"]) == sorted([child.pid, b_pid])
    assert starts["last"] == [b_pid]
    assert record is not None and record.status == "Completed"
    tasks = {t.task_id: t for t in record.tasks}
    assert {k: t.attempts for k, t in tasks.items()} == {"first": 1, "block": 2, "last": 1}
    assert all(t.status == "Completed" for t in tasks.values())
    assert record.final_context is not None
    assert record.final_context["block"] == record.final_context["last"] == b_pid
    with store.read() as conn:
        owner = conn.execute(select(pe.c.owner).where(pe.c.id == eid)).scalar()
        claimed = {
            r.task_id: (r.claimed_attempt, r.attempt_owner)
            for r in conn.execute(select(te).where(te.c.execution_id == eid))
        }
    store.dispose()
    assert owner == runner_b_id != runner_a
    assert claimed == {
        "first": (1, runner_a),
        "block": (2, runner_b_id),
        "last": (1, runner_b_id),
    }
