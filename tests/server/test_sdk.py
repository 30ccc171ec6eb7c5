"""The real ``cloacina-client`` SDK against a real server: health, upload of the example built
by ``cloaca build``, workflows, execution with ``raw_data``, tasks, events, final context,
live events over the WebSocket, and the error contract."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx
import pytest
import websockets
from cloacina_client import AsyncClient, CloacinaApiError

from tests.pythons import HOST
from tests.server.support import RAW_DATA, ServerProcess, wait_status

WF = "data-pipeline-example"
pytestmark = pytest.mark.xdist_group("server-sdk")
TASKS = ["fetch-data", "validate-data", "aggregate-data", "generate-report"]


def test_health_ready_and_openapi(server: ServerProcess) -> None:
    client = server.client()
    # pythons: our optional extension, the Pythons package tasks can run on (its own first)
    assert client.health() == {"status": "ok", "pythons": [HOST]}
    assert client.ready() == (200, {"status": "ready"})
    spec = httpx.get(server.url + "/openapi.json").json()
    assert "/v1/tenants/{tenant_id}/workflows/{name}/execute" in spec["paths"]


def test_upload_is_idempotent_and_lists_the_workflow(
    server: ServerProcess, example_archive: Path, uploaded: str
) -> None:
    client = server.client()
    again = client.upload_workflow(example_archive.read_bytes())
    assert again.tenant_id == "public"
    listing = client.list_workflows()
    assert listing.total == 1 and listing.tenant_id == "public"
    (item,) = listing.items
    assert item.id == again.package_id
    assert (item.package_name, item.workflow_name, item.version) == (WF, WF, "1.0.0")
    assert item.tasks == TASKS and item.paused is False
    detail = client.get_workflow(WF)
    assert detail.build_status == "success" and detail.tenant_id == "public"
    graph = {node.id: node.dependencies for node in detail.task_graph}
    assert graph == {
        "fetch-data": [],
        "validate-data": ["fetch-data"],
        "aggregate-data": ["validate-data"],
        "generate-report": ["aggregate-data"],
    }
    assert len(list((server.home / "packages").glob("*.cloaca"))) == 1


def test_execute_poll_tasks_events_and_final_context(server: ServerProcess, uploaded: str) -> None:
    client = server.client()
    accepted = client.execute_workflow(uploaded, {"raw_data": RAW_DATA})
    assert accepted.status == "scheduled" and accepted.workflow_name == WF
    detail = wait_status(client, accepted.execution_id)
    assert detail.status == "Completed", detail.additional_properties
    context = detail.additional_properties["context"]
    assert context["aggregations"]["count"] == 2
    assert "Records processed: 2" in context["report"]
    assert len(context["validation_errors"]) == 1

    tasks = client.get_execution_tasks("public", accepted.execution_id).tasks
    assert [t.task_name for t in tasks] == TASKS
    assert all(t.status == "Completed" and t.attempt == 1 for t in tasks)
    assert tasks[0].max_attempts == 3  # retry_attempts=3 on fetch-data

    events = client.get_execution_events(accepted.execution_id).events
    kinds = [(e.event_type, e.task_name) for e in events]
    assert kinds[0] == ("task_created", "fetch-data")
    assert ("workflow_started", None) in kinds
    assert kinds[-1] == ("workflow_completed", None)
    for name in TASKS:
        assert kinds.index(("task_started", name)) < kinds.index(("task_completed", name))
    assert [e.sequence_num for e in events] == list(range(1, len(events) + 1))

    page = client.list_executions(workflow=WF, status="Completed", limit=1000)
    assert accepted.execution_id in [i.id for i in page.items]
    assert page.total >= 1 and page.items[0].trigger_origin == "api"


def test_execute_without_context_fails_offline_task(server: ServerProcess, uploaded: str) -> None:
    client = server.client()
    accepted = client.execute_workflow(uploaded)  # no api_url, no raw_data: fetch-data fails
    detail = wait_status(client, accepted.execution_id)
    assert detail.status == "Failed"
    assert "fetch-data" in detail.additional_properties["error"]
    tasks = client.get_execution_tasks("public", accepted.execution_id).tasks
    assert tasks[0].status == "Failed" and tasks[0].attempt == 3 and tasks[0].last_error
    assert [t.status for t in tasks[1:]] == ["Skipped"] * 3
    kinds = [e.event_type for e in client.get_execution_events(accepted.execution_id).events]
    assert "task_failed" in kinds and kinds[-1] == "workflow_failed"


async def test_follow_execution_events_over_websocket(server: ServerProcess, uploaded: str) -> None:
    aclient = AsyncClient(server.url, api_key=server.key)
    accepted = await aclient.execute_workflow(uploaded, {"raw_data": RAW_DATA})
    seen = []

    async def follow() -> None:
        async for event in aclient.follow_execution_events(accepted.execution_id):
            seen.append(event)
            if event["event_type"] in ("workflow_completed", "workflow_failed"):
                return

    await asyncio.wait_for(follow(), 60)
    types = [e["event_type"] for e in seen]
    assert types[-1] == "workflow_completed"
    assert types.count("task_completed") == 4
    assert len({e["id"] for e in seen}) == len(seen)


async def test_websocket_protocol_errors(server: ServerProcess, uploaded: str) -> None:
    aclient = AsyncClient(server.url, api_key=server.key)
    eid = (await aclient.execute_workflow(uploaded, {"raw_data": RAW_DATA})).execution_id
    base = "ws" + server.url[4:] + f"/v1/ws/delivery/exec_events:{eid}"
    ticket = (await aclient.create_ws_ticket()).ticket
    async with websockets.connect(f"{base}?token={ticket}") as sock:
        await sock.send(json.dumps({"type": "hello", "protocol_version": 99}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await sock.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4426
    with pytest.raises(websockets.InvalidStatus):  # tickets are single-use
        async with websockets.connect(f"{base}?token={ticket}"):
            pass
    fresh = (await aclient.create_ws_ticket()).ticket
    unknown = "ws" + server.url[4:] + f"/v1/ws/delivery/exec_events:{uuid.uuid4()}"
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(f"{unknown}?token={fresh}"):
            pass


def test_error_contract(server: ServerProcess, uploaded: str) -> None:
    client = server.client()
    with pytest.raises(CloacinaApiError) as err:
        client.execute_workflow("data-pipeline-exampel", {})
    assert (err.value.status, err.value.code) == (404, "workflow_not_found")
    assert "data-pipeline-example" in err.value.message  # close match
    with pytest.raises(CloacinaApiError) as err:
        client.get_execution("not-a-uuid")
    assert (err.value.status, err.value.code) == (400, "invalid_request")
    with pytest.raises(CloacinaApiError) as err:
        client.get_execution(str(uuid.uuid4()))
    assert (err.value.status, err.value.code) == (404, "execution_not_found")
    with pytest.raises(CloacinaApiError) as err:
        client.list_executions(limit=0)
    assert (err.value.status, err.value.code) == (400, "invalid_pagination")
    with pytest.raises(CloacinaApiError) as err:
        client.get_workflow("nope")
    assert err.value.code == "workflow_not_found"

    with server.http() as http:
        response = http.get("/v1/no/such/route", headers={"x-request-id": "abc-123"})
        assert response.status_code == 404
        assert response.json() == {"error": response.json()["error"], "code": "not_found"}
        assert response.headers["x-request-id"] == "abc-123"
        bad = http.post(f"/v1/tenants/public/workflows/{WF}/execute", content=b"[1, 2")
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_request"
        assert bad.headers["x-request-id"]
        assert http.delete("/health").json()["code"] == "method_not_allowed"


def test_delete_is_idempotent(server: ServerProcess, example_archive: Path, uploaded: str) -> None:
    client = server.client()
    gone = client.delete_workflow(WF, "9.9.9")
    assert (gone.status, gone.package_name, gone.version) == ("deleted", WF, "9.9.9")
