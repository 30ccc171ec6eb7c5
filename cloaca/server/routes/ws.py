"""The delivery WebSocket, ``GET /v1/ws/delivery/exec_events:<execution id>?token=<ticket>``.

Protocol (``cloacina-client``'s, version 1): the client sends ``{"type": "hello",
"protocol_version": 1}``; the server answers ``{"type": "welcome", ...}`` or closes with 4426
for another version; then it sends ``{"type": "push", "id", "kind", "recipient", "tenant_id",
"payload_b64"}`` frames — each payload one execution event as JSON, ids stable across
reconnects — and the client acks them (``{"type": "ack", "id"}``). After the execution's last
event the connection stays open (idle) until the client leaves. A bad ticket, another
recipient kind, or an execution the key cannot see is refused at the handshake (HTTP 403).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from cloaca.runner.event_log import WORKFLOW_ENDS, list_events
from cloaca.server.auth import Principal
from cloaca.server.state import ServerState
from cloaca.server.views import TERMINAL, derived_events, event_view

router = APIRouter()
log = logging.getLogger("cloaca.server")
PROTOCOL_VERSION = 1
POLL_SECONDS = 0.1
HELLO_TIMEOUT = 10.0


def _find(state: ServerState, principal: Principal, eid: str) -> str | None:
    tenants = state.tenants.names() if principal.is_admin else [principal.home_tenant]
    for tenant in tenants:
        if state.tenants.exists(tenant) and state.tenants.runtime(tenant).runner.get_execution(eid):
            return tenant
    return None


def _push_id(event_id: str) -> int:
    return int(event_id.replace("-", "")[:13], 16)


@router.websocket("/v1/ws/delivery/{recipient}")
async def delivery(websocket: WebSocket, recipient: str) -> None:
    """Stream one execution's events (see the module docstring)."""
    state: ServerState = websocket.app.state.server
    principal = state.tickets.redeem(websocket.query_params.get("token"))
    kind, _, eid = recipient.partition(":")
    tenant = None
    if principal is not None and kind == "exec_events" and eid:
        try:
            tenant = await run_in_threadpool(_find, state, principal, eid)
        except Exception:
            tenant = None
    if tenant is None:
        await websocket.close(code=1008)
        return
    await websocket.accept()
    try:
        hello = json.loads(await asyncio.wait_for(websocket.receive_text(), HELLO_TIMEOUT))
        version = hello.get("protocol_version") if isinstance(hello, dict) else None
        if not isinstance(hello, dict) or hello.get("type") != "hello":
            await websocket.close(code=4400, reason="expected a hello frame")
            return
        if version != PROTOCOL_VERSION:
            await websocket.close(code=4426, reason=f"unsupported protocol_version {version}")
            return
        welcome = {"type": "welcome", "protocol_version": PROTOCOL_VERSION, "recipient": recipient}
        await websocket.send_text(json.dumps(welcome))
        reader = asyncio.create_task(_drain(websocket))
        try:
            await _stream(websocket, state, tenant, eid, recipient, reader)
            await reader  # the run is over: idle until the client leaves
        finally:
            reader.cancel()
    except (TimeoutError, WebSocketDisconnect, ValueError, RuntimeError):
        return


async def _drain(websocket: WebSocket) -> None:
    """Read (and drop) acks until the client disconnects."""
    try:
        while True:
            await websocket.receive_text()
    except (WebSocketDisconnect, RuntimeError):
        return


async def _stream(
    websocket: WebSocket,
    state: ServerState,
    tenant: str,
    eid: str,
    recipient: str,
    reader: asyncio.Task[Any],
) -> None:
    runner = state.tenants.runtime(tenant).runner
    last = 0  # sequence_num of the last event sent
    while not reader.done():
        log = await run_in_threadpool(list_events, runner.store, eid, last)
        for record in log:
            await _push(websocket, tenant, recipient, event_view(record))
            last = record.sequence_num
        if any(r.event_type in WORKFLOW_ENDS for r in log):
            return
        if not log:
            rec = await run_in_threadpool(runner.get_execution, eid)
            if rec is None:
                return
            if rec.status in TERMINAL:  # its last events may have landed since the read
                rest = await run_in_threadpool(list_events, runner.store, eid, last)
                legacy = derived_events(rec) if last == 0 and not rest else []
                for event in [event_view(r) for r in rest] + legacy:
                    await _push(websocket, tenant, recipient, event)
                return
        await asyncio.wait({reader}, timeout=POLL_SECONDS)


async def _push(websocket: WebSocket, tenant: str, recipient: str, event: dict[str, Any]) -> None:
    frame = {
        "type": "push",
        "protocol_version": PROTOCOL_VERSION,
        "id": _push_id(event["id"]),
        "kind": "execution_event",
        "recipient": recipient,
        "tenant_id": tenant,
        "payload_b64": base64.b64encode(json.dumps(event).encode()).decode(),
    }
    await websocket.send_text(json.dumps(frame))
