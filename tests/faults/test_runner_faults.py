"""Two ``DefaultRunner`` processes on one PostgreSQL database share 10 executions of a 300-task
workflow; one of them is SIGKILLed, or stopped (SIGSTOP) for longer than ``stale_after`` and
then continued (SIGCONT). The other runner takes its executions over: all 10 complete, no
completed task runs again, and no task builds on a result that was lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cloaca import DefaultRunner, DefaultRunnerConfig, ExecutionResult
from cloaca.runner.event_log import list_events
from tests.faults.support import Markers, check_no_lost_or_repeated_work, committed

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
from wideflow import DEPS, wideflow  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.xdist_group("faults-runners"),
    pytest.mark.timeout(600),
]
EXECUTIONS = 10
STALE_AFTER = 2.0
RUNNER = """
import os, sys, time
from cloaca import DefaultRunner, DefaultRunnerConfig, ExecutionResult
from cloaca.runner.event_log import list_events
from wideflow import wideflow
cfg = DefaultRunnerConfig(enable_cron_scheduling=False, scheduler_poll_interval_ms=50)
runner = DefaultRunner({url!r}, cfg, schema={schema!r}, heartbeat_interval=0.2,
                       stale_after={stale!r})
runner.register_workflow(wideflow())
print(runner.runner_id, flush=True)
while not os.path.exists({stop!r}):
    time.sleep(0.1)
runner.shutdown(wait=False, timeout=10)
"""
IDLE = DefaultRunnerConfig(
    enable_cron_scheduling=False, enable_recovery=False, scheduler_poll_interval_ms=10**9
)


def start_runner(url: str, schema: str, stop: Path) -> tuple[subprocess.Popen[str], str]:
    code = RUNNER.format(url=url, schema=schema, stale=STALE_AFTER, stop=str(stop))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FIXTURES), os.getcwd()])}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def wait_terminal(queue: DefaultRunner, eid: str, timeout: float = 300) -> ExecutionResult:
    """The result of ``eid`` once it ends (``queue`` never polls: it only enqueues)."""
    deadline = time.monotonic() + timeout
    while True:
        record = queue.get_execution(eid)
        if record is not None and record.status in ("Completed", "Failed", "Cancelled"):
            return queue.wait(eid)
        assert time.monotonic() < deadline, f"execution {eid} still not finished"
        time.sleep(0.1)


def sessions(url: str) -> str:
    """What the database's sessions are doing (the message of a failed takeover)."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT pid, state, wait_event_type, now() - state_change, left(query, 120)"
            " FROM pg_stat_activity WHERE datname = current_database()"
        ).fetchall()
    return "B did not take A's executions over; sessions:\n" + "\n".join(map(str, rows))


def owners(runner: DefaultRunner, eids: list[str], active: bool = False) -> dict[str, str | None]:
    """Owner of each execution (only the ``Pending``/``Running`` ones with ``active``)."""
    from sqlalchemy import select

    from cloaca.storage.models import pipeline_executions as pe

    q = select(pe.c.id, pe.c.owner).where(pe.c.id.in_(eids))
    if active:
        q = q.where(pe.c.status.in_(["Pending", "Running"]))
    with runner.store.read() as conn:
        rows = conn.execute(q).all()
    return {eid: owner for eid, owner in rows}


@pytest.mark.parametrize("fault", ["sigkill", "sigstop"])
def test_one_of_two_runners_dies_or_stalls(
    fault: str, pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    markers = tmp_path / "markers.log"
    markers.touch()
    stop = tmp_path / "stop"
    with DefaultRunner(pg_url, IDLE, schema=pg_schema) as queue:
        queue.register_workflow(wideflow())
        a, a_id = start_runner(pg_url, pg_schema, stop)
        b, b_id = start_runner(pg_url, pg_schema, stop)
        procs = [a, b]
        try:
            assert a_id and b_id, a.stderr.read() if a.stderr else ""  # type: ignore[union-attr]
            jobs = {}
            for i in range(EXECUTIONS):
                ctx = {"job": f"j{i}", "markers": str(markers)}
                jobs[queue.enqueue("wideflow", ctx)] = f"j{i}"
            eids = list(jobs)
            # strike once runner A owns work and a sixth of all task bodies finished
            deadline = time.monotonic() + 180
            while (
                sum(Markers(markers).dones.values()) < EXECUTIONS * len(DEPS) // 6
                or a_id not in owners(queue, eids, active=True).values()
            ):
                assert time.monotonic() < deadline, "runner A got no work"
                time.sleep(0.02)
            a_owned = [e for e, o in owners(queue, eids, active=True).items() if o == a_id]
            os.kill(a.pid, signal.SIGKILL if fault == "sigkill" else signal.SIGSTOP)
            if fault == "sigkill":
                a.wait(30)
            time.sleep(0.3)  # a commit sent just before the signal lands
            cut = Markers(markers).of(a.pid)
            at_cut = committed(pg_url, pg_schema, jobs)
            settled = Markers(markers)
            if fault == "sigstop":
                # B takes A's work over once A's heartbeat is older than stale_after
                deadline = time.monotonic() + 60
                while a_id in owners(queue, a_owned, active=True).values():
                    assert time.monotonic() < deadline, sessions(pg_url)
                    time.sleep(0.05)
                os.kill(a.pid, signal.SIGCONT)
            results = {eid: wait_terminal(queue, eid) for eid in eids}
            recovered = sum(
                e.event_type == "task_recovered"
                for eid in eids
                for e in list_events(queue.store, eid)
            )
        finally:
            stop.touch()
            for proc in procs:
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGCONT)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    final = Markers(markers)
    failed = {eid: r.error_message for eid, r in results.items() if r.status != "Completed"}
    assert not failed, f"{len(failed)}/{EXECUTIONS} not Completed: {failed}"
    for eid, result in results.items():
        got = {t: result.final_context[t] for t in DEPS}
        assert got == {t: f"{t}-{jobs[eid]}" for t in DEPS}
    claimed = at_cut.get(f"claimed:{a_id}", set())
    rerun = check_no_lost_or_repeated_work(
        cut, settled, final, at_cut.get("Completed", set()), jobs.values(), DEPS, claimed
    )
    if fault == "sigstop":  # A, woken up, started nothing in the executions B took over
        a_after = [
            line for line in final.of(a.pid).lines[len(cut.lines) :] if line[0] == "start"
        ]  # fmt: skip
        taken = {jobs[e] for e in a_owned}
        # only attempts it had claimed before it stopped (the new owner counted them as lost)
        late = [ln for ln in a_after if ln[1] in taken and f"{ln[1]}/{ln[2]}" not in claimed]
        assert not late, late[:5]
    report = {
        "fault": fault,
        "completed": sum(r.status == "Completed" for r in results.values()),
        "executions": EXECUTIONS,
        "owned_by_victim": len(a_owned),
        "task_recovered_events": recovered,
        "bodies_run_again": rerun,
        "never_finished": 0,
    }
    print("FAULT-REPORT", json.dumps(report))
