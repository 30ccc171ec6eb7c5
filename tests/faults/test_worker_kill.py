"""SIGKILL of a package worker process while it runs a task body: the attempt is lost, not
failed — the task runs again in a fresh worker under its recovery budget (``task_recovered``
in the execution's events), though the task allows no retries, and nothing else re-runs."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.faults.packages import DEPS, NAME, fault_archive
from tests.faults.support import Markers
from tests.server.support import ServerProcess, wait_status

JOBS = 3


@pytest.mark.slow
@pytest.mark.xdist_group("faults-server")
@pytest.mark.timeout(300)
def test_sigkill_of_a_package_worker_mid_task(tmp_path: Path) -> None:
    markers = tmp_path / "markers.log"
    markers.touch()
    server = ServerProcess(tmp_path / "home").start()
    try:
        client, http = server.client(), server.http()
        client.upload_workflow(fault_archive(with_slow=True))
        jobs = {}
        for i in range(JOBS):
            ctx = {"job": f"j{i}", "markers": str(markers), "sleep": 0.01}
            jobs[f"j{i}"] = client.execute_workflow(NAME, ctx).execution_id
        deadline = time.monotonic() + 60
        while sum(p == ("start", "slow") for p in _pairs(markers)) < JOBS:
            assert time.monotonic() < deadline, "slow did not start everywhere"
            time.sleep(0.02)
        (victim,) = Markers(markers).pids_starting("j0", "slow")
        os.kill(victim, signal.SIGKILL)
        # the lost attempt is recorded, and re-run in a fresh worker, before the release
        deadline = time.monotonic() + 60
        while len(Markers(markers).pids_starting("j0", "slow")) < 2:
            assert time.monotonic() < deadline, "slow of j0 was not re-run"
            time.sleep(0.02)
        (tmp_path / "release").touch()
        details = {job: wait_status(client, eid, timeout=120) for job, eid in jobs.items()}
        events = http.get(f"/v1/tenants/public/executions/{jobs['j0']}/events").json()["events"]
        tasks = http.get(f"/v1/tenants/public/executions/{jobs['j0']}/tasks").json()["tasks"]
        http.close()
    finally:
        server.stop()
    assert {j: d.status for j, d in details.items()} == {j: "Completed" for j in jobs}
    final = Markers(markers)
    pids = final.pids_starting("j0", "slow")
    assert pids[0] == victim and pids[1] != victim
    for job in jobs:  # nothing else ran twice
        for task in [*DEPS, "slow"]:
            want = 2 if (job, task) == ("j0", "slow") else 1
            assert final.starts[(job, task)] == want, (job, task)
            assert final.dones[(job, task)] == 1, (job, task)
    slow = [e for e in events if e["task_name"] == "slow"]
    assert [e["event_type"] for e in slow] == [
        "task_created",
        "task_started",
        "task_recovered",
        "task_started",
        "task_completed",
    ]
    data = json.loads(slow[2]["event_data"])
    assert (data["attempt"], data["recovery"], data["max_recoveries"]) == (1, 1, 3)
    assert "SIGKILL" in data["reason"] and str(victim) in data["reason"]
    by_name = {t["task_name"]: t for t in tasks}
    assert (by_name["slow"]["status"], by_name["slow"]["attempt"]) == ("Completed", 2)


def _pairs(path: Path) -> list[tuple[str, str]]:
    return [(kind, task) for kind, _job, task, _pid in Markers(path).lines]
