"""A server stopped mid-execution (killed, or stopped with a short grace period) resumes the
execution when it starts again on the same home: stored packages are reloaded and their
workflows registered before the runner claims the interrupted work."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.server.support import Gate, ServerProcess, wait_status

WF = "data-pipeline-example"


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill", "term"])
def test_restart_mid_execution_completes(
    tmp_path: Path, example_archive: Path, gate: Gate, sig: int
) -> None:
    home = tmp_path / "home"
    first = ServerProcess(home, "--shutdown-grace", "0.2").start()
    try:
        client = first.client()
        client.upload_workflow(example_archive.read_bytes())
        eid = client.execute_workflow(WF, {"api_url": gate.url}).execution_id
        gate.wait_hits(1)  # fetch-data is running, blocked on the data source
        assert client.get_execution(eid).status == "Running"
    finally:
        first.stop(sig)

    second = ServerProcess(home).start()
    try:
        client = second.client()
        assert client.list_workflows().total == 1  # reloaded from the package store
        gate.open()
        detail = wait_status(client, eid)
        assert detail.status == "Completed", detail.additional_properties
        assert "Records processed: 2" in detail.additional_properties["context"]["report"]
        tasks = client.get_execution_tasks("public", eid).tasks
        assert tasks[0].task_name == "fetch-data"
        assert tasks[0].attempt == 2  # the interrupted attempt counts
        assert all(t.status == "Completed" for t in tasks)
        assert gate.hits >= 2
    finally:
        second.stop()
