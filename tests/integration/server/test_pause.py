"""A paused workflow stays paused across a server restart on the same home, and resuming it
after the restart accepts executions again."""

from __future__ import annotations

from pathlib import Path

import pytest
from cloacina_client import CloacinaApiError

from tests.server.support import RAW_DATA, ServerProcess, wait_status

WF = "data-pipeline-example"


def test_paused_flag_survives_restart(tmp_path: Path, example_archive: Path) -> None:
    home = tmp_path / "home"
    first = ServerProcess(home).start()
    try:
        client = first.client()
        client.upload_workflow(example_archive.read_bytes())
        assert client.pause_workflow(WF).paused is True
    finally:
        first.stop()

    second = ServerProcess(home).start()
    try:
        client = second.client()
        assert client.list_workflows().items[0].paused is True
        assert client.get_workflow(WF).paused is True
        with pytest.raises(CloacinaApiError) as err:
            client.execute_workflow(WF, {"raw_data": RAW_DATA})
        assert (err.value.status, err.value.code) == (409, "workflow_paused")
        assert client.resume_workflow(WF).paused is False
        eid = client.execute_workflow(WF, {"raw_data": RAW_DATA}).execution_id
        assert wait_status(client, eid).status == "Completed"
    finally:
        second.stop()

    third = ServerProcess(home).start()
    try:
        assert third.client().get_workflow(WF).paused is False
    finally:
        third.stop()
