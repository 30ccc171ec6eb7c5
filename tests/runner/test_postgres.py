"""DefaultRunner on a real PostgreSQL server: executions, two runner processes claiming work,
stale-heartbeat recovery, and one schema per tenant."""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from cloaca import DefaultRunner, DefaultRunnerConfig
from cloaca.storage import Store
from cloaca.storage.models import pipeline_executions as pe
from cloaca.storage.models import runners
from tests.runner.conftest import FIXTURES, spawn
from tests.runner.test_execute import diamond

sys.path.insert(0, str(FIXTURES))
import claimflow  # noqa: F401  (registers "claimflow" here too, for enqueue)

pytestmark = pytest.mark.postgres
QUIET = DefaultRunnerConfig(enable_cron_scheduling=False)


def _idle_config() -> DefaultRunnerConfig:
    """A runner that stores executions but never claims work itself."""
    return DefaultRunnerConfig(
        enable_cron_scheduling=False, enable_recovery=False, scheduler_poll_interval_ms=10**9
    )


def test_execute_and_history_on_postgres(pg_url: str, pg_schema: str) -> None:
    with DefaultRunner.with_schema(pg_url, pg_schema, QUIET) as runner:
        ok = runner.execute(diamond("pg_ok"), {"n": 1})
        bad = runner.execute(diamond("pg_bad", fail=True))
        assert ok.status == "Completed" and ok.final_context["n"] == 4
        assert bad.status == "Failed"
        record = runner.get_execution(bad.execution_id)
        assert record is not None
        states = {t.task_id: t.status for t in record.tasks}
        assert states == {"a": "Completed", "b": "Completed", "c": "Failed", "d": "Skipped"}
        assert {e.id for e in runner.list_executions()} == {ok.execution_id, bad.execution_id}


RUNNER_CHILD = """
import os, time, claimflow
from cloaca import DefaultRunner, DefaultRunnerConfig
cfg = DefaultRunnerConfig(enable_cron_scheduling=False, scheduler_poll_interval_ms=10)
runner = DefaultRunner.with_schema({url!r}, {schema!r}, cfg)
markers = os.environ["CLOACA_TEST_MARKERS"]
open(os.path.join(markers, "ready-%d" % os.getpid()), "w").close()
deadline = time.time() + 120
while time.time() < deadline:
    busy = runner.list_executions(status="Pending") + runner.list_executions(status="Running")
    if not busy and os.path.exists(os.path.join(markers, "all-enqueued")):
        break
    time.sleep(0.05)
runner.shutdown()
"""


@pytest.mark.slow
def test_two_runner_processes_never_run_the_same_task_twice(
    pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    env = {"CLOACA_TEST_MARKERS": str(markers)}
    with DefaultRunner.with_schema(pg_url, pg_schema, _idle_config()) as producer:
        children = [spawn(RUNNER_CHILD.format(url=pg_url, schema=pg_schema), env) for _ in range(2)]
        deadline = time.monotonic() + 60
        while len(list(markers.glob("ready-*"))) < 2:
            assert time.monotonic() < deadline, "runner children did not start"
            assert all(c.poll() is None for c in children), children[0].stderr.read()  # type: ignore[union-attr]
            time.sleep(0.05)
        jobs = 30
        ids = [producer.enqueue("claimflow", {"job": i}) for i in range(jobs)]
        (markers / "all-enqueued").touch()
        for child in children:
            _out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err.decode()
        records = [producer.get_execution(eid) for eid in ids]
    child_pids = {c.pid for c in children}
    assert all(r is not None and r.status == "Completed" for r in records)
    names = [p.name for p in markers.iterdir() if not p.name.startswith(("ready-", "all-"))]
    runs: dict[tuple[str, str], list[int]] = {}
    for name in names:
        job, task_id, pid, _ = name.split(".")
        runs.setdefault((job, task_id), []).append(int(pid))
    assert len(runs) == jobs * 3
    assert all(len(pids) == 1 for pids in runs.values()), "a task ran twice"
    used = {pids[0] for pids in runs.values()}
    assert used <= child_pids
    print("runner processes that ran work:", len(used))
    for record in records:  # one execution ran in one process
        assert record is not None and record.final_context is not None
        ctx = record.final_context
        assert ctx["one"] == ctx["two"] == ctx["three"]


CLAIM_CHILD = """
import json, os, sys, time, uuid
from cloaca.runner import claims
from cloaca.storage import Store
store = Store({url!r}, schema={schema!r})
rid = str(uuid.uuid4())
claims.register_runner(store, rid)
open({go!r} + "." + rid, "w").close()  # ready: imported, connected, registered
go = {go!r}
while not os.path.exists(go):
    time.sleep(0.001)
got = []
while True:
    batch = claims.claim_executions(store, rid, ["claimflow"], time.time() - 60, limit=1)
    if not batch:
        break
    got.extend(row["id"] for row, _ in batch)
print(json.dumps(got))
"""


@pytest.mark.slow
def test_claims_are_exclusive_between_processes(
    pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    go = str(tmp_path / "go")
    with DefaultRunner.with_schema(pg_url, pg_schema, _idle_config()) as producer:
        ids = {producer.enqueue("claimflow", {"job": i}) for i in range(150)}
    children = [spawn(CLAIM_CHILD.format(url=pg_url, schema=pg_schema, go=go)) for _ in range(2)]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("go.*"))) < 2:  # both imported, connected and registered
        assert time.monotonic() < deadline and all(c.poll() is None for c in children)
        time.sleep(0.01)
    Path(go).touch()
    claimed = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err.decode()
        claimed.append(json.loads(out.decode().strip().splitlines()[-1]))
    first, second = set(claimed[0]), set(claimed[1])
    assert len(claimed[0]) == len(first) and len(claimed[1]) == len(second)
    assert not first & second, "an execution was claimed twice"
    assert first | second == ids
    assert first and second, "both processes should have claimed work"


def test_stale_heartbeat_execution_is_recovered(pg_url: str, pg_schema: str) -> None:
    wf = diamond("pg_stale")
    with DefaultRunner.with_schema(pg_url, pg_schema, _idle_config()) as producer:
        eid = producer.enqueue(wf, {"n": 0})
        producer.register_workflow(wf)
    store = Store(pg_url, schema=pg_schema)
    dead = str(uuid.uuid4())
    with store.write() as conn:  # a runner on another host that stopped beating long ago
        conn.execute(
            insert(runners),
            [
                {
                    "id": dead,
                    "hostname": "elsewhere",
                    "pid": 1,
                    "started_at": 0.0,
                    "heartbeat_at": 1.0,
                }
            ],
        )
        conn.execute(pe.update().where(pe.c.id == eid).values(owner=dead, status="Running"))
    with DefaultRunner.with_schema(pg_url, pg_schema, QUIET) as runner:
        runner.register_workflow(wf)
        runner.claim_work()
        result = runner.wait(eid, timeout=60)
    assert result.status == "Completed" and result.final_context["n"] == 3
    with store.read() as conn:
        row = conn.execute(select(pe.c.owner, pe.c.recovery_count).where(pe.c.id == eid)).one()
    assert row.owner != dead and row.recovery_count == 1
    store.dispose()


def test_tenants_are_isolated(pg_url: str, pg_schemas: list[str]) -> None:
    a, b = f"ta_{uuid.uuid4().hex[:10]}", f"tb_{uuid.uuid4().hex[:10]}"
    pg_schemas.extend([a, b])
    with (
        DefaultRunner.with_schema(pg_url, a, QUIET) as ra,
        DefaultRunner.with_schema(pg_url, b, QUIET) as rb,
    ):
        assert ra.schema == a
        ea = ra.execute(diamond("tenant_wf")).execution_id
        eb = rb.execute(diamond("tenant_wf")).execution_id
        sid = ra.register_cron_workflow("tenant_wf", "0 3 * * *")
        assert [e.id for e in ra.list_executions()] == [ea]
        assert [e.id for e in rb.list_executions()] == [eb]
        assert rb.get_execution(ea) is None
        assert ra.get_execution(eb) is None
        assert rb.list_cron_schedules() == []
        assert ra.get_cron_schedule(sid)["workflow_name"] == "tenant_wf"
    store = Store(pg_url, migrate=False)
    with store.read() as conn:
        found = set(
            conn.scalars(
                text(
                    "SELECT table_schema FROM information_schema.tables "
                    "WHERE table_name = 'pipeline_executions' AND table_schema IN (:a, :b)"
                ),
                {"a": a, "b": b},
            )
        )
    store.dispose()
    assert found == {a, b}


def test_tenant_schema_name_is_checked(pg_url: str) -> None:
    with pytest.raises(ValueError, match="invalid schema name"):
        DefaultRunner.with_schema(pg_url, 'x"; DROP SCHEMA public; --')


def test_postgres_url_forms(pg_url: str, pg_schema: str) -> None:
    plus = pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
    with DefaultRunner(plus, QUIET, schema=pg_schema) as runner:
        assert runner.execute(diamond("pg_forms")).status == "Completed"
