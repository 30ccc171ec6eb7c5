"""Faults under the Dask executor, with real processes: a Dask worker SIGKILLed mid-task (the
attempt is lost and re-run on another worker under the task's recovery budget, not its retry
policy), and the Dask scheduler
killed mid-execution (the execution fails with a clear error and resumes once it is back)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloaca import DefaultRunner, DefaultRunnerConfig, Workflow
from cloaca.runner.event_log import list_events
from cloaca.task import make_spec
from tests.execution import dask_tasks as t

pytestmark = pytest.mark.xdist_group("dask")
DASK = str(Path(sys.executable).parent / "dask")


def wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def dask_config(address: str) -> DefaultRunnerConfig:
    return DefaultRunnerConfig(
        enable_cron_scheduling=False, executor="dask", dask_scheduler=address
    )


def test_worker_killed_mid_task_is_a_lost_attempt_then_a_recovery(
    address: str, sqlite_url: str, tmp_path: Path
) -> None:
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    spec = make_spec(t.slow_on_worker, id="slow")  # no retries: the recovery is not one
    workflow = Workflow("dask_worker_killed", {"slow": spec})
    with DefaultRunner(sqlite_url, dask_config(address)) as runner:
        eid = runner.submit(workflow, {"pid_dir": str(pid_dir), "sleep": 2.0})
        wait_for(lambda: any(pid_dir.iterdir()))
        (first,) = pid_dir.iterdir()
        killed_address = first.read_text()
        os.kill(int(first.stem), signal.SIGKILL)
        result = runner.wait(eid, timeout=120)
        stored = runner.get_execution(eid)
        events = [(e.event_type, e.data) for e in list_events(runner.store, eid)]
    assert result.status == "Completed", result.error_message
    assert result.tasks["slow"].attempts == 2
    assert result.final_context["done_on"] != killed_address
    # the killed attempt and the retry ran; Dask's own silent re-run was refused
    assert len(list(pid_dir.iterdir())) == 2
    assert stored is not None
    (row,) = stored.tasks
    assert (row.status, row.attempts) == ("Completed", 2)
    kinds = [k for k, _ in events]
    assert kinds.count("task_recovered") == 1 and "task_failed" not in kinds
    data = json.loads(events[kinds.index("task_recovered")][1])
    assert (data["attempt"], data["recovery"], data["max_recoveries"]) == (1, 1, 3)
    assert killed_address in data["reason"]


# ---------------------------------------------------------------------------- scheduler loss
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StandaloneCluster:
    """``dask scheduler`` and ``dask worker`` processes that can be killed and started again."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.scheduler: subprocess.Popen[bytes] | None = None

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"dask-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen([DASK, *args], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        from distributed import Client

        self.scheduler = self._spawn(
            "scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"
        )
        self._spawn(
            "worker", self.address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"
        )
        with Client(self.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=60)

    def kill_scheduler(self) -> None:
        assert self.scheduler is not None
        self.scheduler.kill()
        self.scheduler.wait()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[StandaloneCluster]:
    cluster = StandaloneCluster(tmp_path)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def test_scheduler_loss_fails_the_execution_and_resume_finishes_it(
    standalone: StandaloneCluster, sqlite_url: str, tmp_path: Path
) -> None:
    log, started, release = tmp_path / "runs.log", tmp_path / "started", tmp_path / "release"
    specs = {
        "first": make_spec(t.count, id="first"),
        "wait": make_spec(t.wait_for_file, id="wait", dependencies=["first"]),
        "last": make_spec(t.count, id="last", dependencies=["wait"]),
    }
    workflow = Workflow("dask_scheduler_lost", specs)
    context = {"log": str(log), "started": str(started), "release": str(release)}
    with DefaultRunner(sqlite_url, dask_config(standalone.address)) as runner:
        eid = runner.submit(workflow, context)
        wait_for(started.exists)
        standalone.kill_scheduler()
        failed = runner.wait(eid, timeout=60)
        assert failed.status == "Failed"
        assert failed.error_message is not None
        assert "lost the Dask scheduler" in failed.error_message
        stored = runner.get_execution(eid)
        assert stored is not None
        rows = {r.task_id: r for r in stored.tasks}
        assert rows["wait"].error_type == "DaskSchedulerLost"
        assert rows["last"].status == "Skipped"

        release.write_text("go")
        standalone.start()  # the same address again
        runner.resume(eid)
        done = runner.wait(eid, timeout=120)
        stored = runner.get_execution(eid)
        with pytest.raises(ValueError, match="only such executions can be resumed"):
            runner.resume(eid)
        with pytest.raises(KeyError):
            runner.resume("no-such-execution")
    assert done.status == "Completed"
    assert done.final_context["waited"] is True
    assert done.final_context["counted"] == 2
    assert stored is not None
    rows = {r.task_id: r for r in stored.tasks}
    assert {k: (r.status, r.attempts) for k, r in rows.items()} == {
        "first": ("Completed", 1),
        "wait": ("Completed", 1),
        "last": ("Completed", 1),
    }
    # "first" ran once (before the loss), "last" once (after the resume)
    assert log.read_text().split() == ["x", "x"]
