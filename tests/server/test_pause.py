"""Workflow pause/resume through the real ``cloacina-client`` SDK against a real server: a
paused workflow is listed as paused and refuses new executions (409 ``workflow_paused``) while a
run started before the pause completes; resuming accepts executions again; both verbs are
idempotent, need a write key of the tenant and answer 404 for unknown workflows."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from cloacina_client import CloacinaApiError

from tests.server.support import RAW_DATA, Gate, ServerProcess, wait_status

WF = "data-pipeline-example"
pytestmark = pytest.mark.xdist_group("server-pause")


def _code(call: Any) -> tuple[int, str]:
    with pytest.raises(CloacinaApiError) as err:
        call()
    return err.value.status, err.value.code


def test_pause_refuses_new_runs_lets_running_ones_finish_and_resume_reopens(
    server: ServerProcess, uploaded: str, gate: Gate
) -> None:
    client = server.client()
    running = client.execute_workflow(uploaded, {"api_url": gate.url}).execution_id
    gate.wait_hits(1)  # fetch-data is running, blocked on the data source

    paused = client.pause_workflow(WF)
    assert (paused.name, paused.tenant_id, paused.paused, paused.status) == (
        WF, "public", True, "paused",
    )  # fmt: skip
    (item,) = client.list_workflows().items
    assert paused.id == item.id and item.paused is True
    assert client.get_workflow(WF).paused is True
    assert client.pause_workflow(WF).paused is True  # idempotent

    assert _code(lambda: client.execute_workflow(WF, {"raw_data": RAW_DATA})) == (
        409, "workflow_paused",
    )  # fmt: skip
    with server.http() as http:
        refused = http.post(f"/v1/tenants/public/workflows/{WF}/execute", json={"context": {}})
    assert refused.status_code == 409
    assert refused.json()["code"] == "workflow_paused" and "paused" in refused.json()["error"]

    gate.open()
    detail = wait_status(client, running)
    assert detail.status == "Completed", detail.additional_properties

    resumed = client.resume_workflow(WF)
    assert (resumed.paused, resumed.status, resumed.id) == (False, "resumed", item.id)
    assert client.resume_workflow(WF).paused is False  # idempotent
    assert client.list_workflows().items[0].paused is False
    assert client.get_workflow(WF).paused is False
    eid = client.execute_workflow(WF, {"raw_data": RAW_DATA}).execution_id
    assert wait_status(client, eid).status == "Completed"


def test_unknown_workflow_is_404(server: ServerProcess, uploaded: str) -> None:
    client = server.client()
    assert _code(lambda: client.pause_workflow("no-such-workflow")) == (404, "workflow_not_found")
    assert _code(lambda: client.resume_workflow("no-such-workflow")) == (404, "workflow_not_found")


def test_pause_needs_a_write_key_of_the_tenant(server: ServerProcess, uploaded: str) -> None:
    admin = server.client()
    reader = server.client(key=admin.create_key("pause-reader", role="read").key)
    writer = server.client(key=admin.create_key("pause-writer", role="write").key)
    assert _code(lambda: reader.pause_workflow(WF)) == (403, "insufficient_permissions")
    assert _code(lambda: reader.resume_workflow(WF)) == (403, "insufficient_permissions")
    with server.http(key="clk_not_a_key") as http:
        for verb in ("pause", "resume"):
            answer = http.post(f"/v1/tenants/public/workflows/{WF}/{verb}")
            assert answer.status_code == 401 and set(answer.json()) >= {"error", "code"}
    with httpx.Client(base_url=server.url, timeout=30) as http:  # no key at all
        assert http.post(f"/v1/tenants/public/workflows/{WF}/pause").status_code == 401

    admin.create_tenant("pause_other")
    other = server.client(
        key=admin.create_tenant_key("w", "write", tenant="pause_other").key, tenant="pause_other"
    )
    assert _code(lambda: other.pause_workflow(WF, tenant="public")) == (
        403, "tenant_access_denied",
    )  # fmt: skip
    assert _code(lambda: other.pause_workflow(WF)) == (404, "workflow_not_found")

    try:
        assert writer.pause_workflow(WF).paused is True
        assert reader.get_workflow(WF).paused is True
    finally:
        assert writer.resume_workflow(WF).paused is False
