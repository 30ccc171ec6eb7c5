"""Execution events recorded as they happen, through the real SDK: a task that fails once and
then succeeds shows both attempts (over REST and over the WebSocket), the log survives a server
restart, and two server processes sharing a PostgreSQL database serve the same events."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from cloacina_client import AsyncClient

from tests.server.archives import flaky_archive
from tests.server.support import ServerProcess, wait_status

WF = "flaky-pkg"


def _events(srv: ServerProcess, eid: str, key: str | None = None) -> list[dict[str, Any]]:
    return [e.to_dict() for e in srv.client(key).get_execution_events(eid).events]


def _check_retry_story(events: list[dict[str, Any]]) -> None:
    assert [e["sequence_num"] for e in events] == list(range(1, len(events) + 1))
    flaky = [e for e in events if e["task_name"] == "flaky"]
    kinds = [e["event_type"] for e in flaky]
    assert kinds == [
        "task_created", "task_started", "task_failed", "task_retrying", "task_started",
        "task_completed",
    ]  # fmt: skip
    failed = json.loads(flaky[2]["event_data"])
    assert failed["attempt"] == 1 and failed["will_retry"] is True
    assert "first attempt fails on purpose" in failed["error"]
    assert json.loads(flaky[4]["event_data"]) == {"attempt": 2}
    assert events[-1]["event_type"] == "workflow_completed"


async def _follow(srv: ServerProcess, eid: str) -> list[dict[str, Any]]:
    aclient = AsyncClient(srv.url, api_key=srv.key)
    seen: list[dict[str, Any]] = []
    async for event in aclient.follow_execution_events(eid):
        seen.append(event)
        if event["event_type"] in ("workflow_completed", "workflow_failed"):
            break
    return seen


def test_retried_task_events_over_rest_websocket_and_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    srv = ServerProcess(home).start()
    try:
        client = srv.client()
        client.upload_workflow(flaky_archive())
        eid = client.execute_workflow(WF, {"marker": str(tmp_path / "marker")}).execution_id
        followed = asyncio.run(asyncio.wait_for(_follow(srv, eid), 60))
        assert wait_status(client, eid).status == "Completed"
        tasks = client.get_execution_tasks("public", eid).tasks
        assert tasks[0].task_name == "flaky" and tasks[0].attempt == 2
        before = _events(srv, eid)
        _check_retry_story(before)
        assert [e["id"] for e in followed] == [e["id"] for e in before]
        assert [e["event_type"] for e in followed] == [e["event_type"] for e in before]
    finally:
        srv.stop()
    again = ServerProcess(home).start()
    try:
        assert _events(again, eid) == before
    finally:
        again.stop()


@pytest.mark.postgres
@pytest.mark.xdist_group("server-postgres")
def test_two_processes_on_postgres_serve_the_same_events(
    tmp_path_factory: pytest.TempPathFactory, pg_database: str, tmp_path: Path
) -> None:
    first = ServerProcess(tmp_path_factory.mktemp("pg-a"), "--database-url", pg_database).start()
    second = ServerProcess(tmp_path_factory.mktemp("pg-b"), "--database-url", pg_database)
    try:
        second.start()
        client = first.client()
        client.upload_workflow(flaky_archive())
        eid = client.execute_workflow(WF, {"marker": str(tmp_path / "marker")}).execution_id
        assert wait_status(client, eid).status == "Completed"
        events = _events(first, eid)
        _check_retry_story(events)
        assert _events(second, eid, key=first.key) == events  # the key is in the shared db
    finally:
        second.stop()
        first.stop()
