"""The delivery WebSocket, ``GET /v1/ws/delivery/exec_events:<execution id>?token=<ticket>``.

Protocol (``cloacina-client``'s, version 1): the client sends ``{"type": "hello",
"protocol_version": 1}``; the server answers ``{"type": "welcome", ...}`` or closes with 4426
for another version; then it sends ``{"type": "push", "id", "kind", "recipient", "tenant_id",
"payload_b64"}`` frames — each payload one execution event as JSON, ids stable across
reconnects — and the client acks them (``{"type": "ack", "id"}``). After the execution's last
event the connection stays open (idle) until the client leaves. A bad ticket, another
recipient kind, or an execution the key cannot see is refused at the handshake (HTTP 403).
Revoking the key (or deleting the tenant) closes its open streams at once (code 4401) and
voids its unused tickets.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from cloaca.errors import ApiError
from cloaca.runner.event_log import WORKFLOW_ENDS, list_events
from cloaca.runner.history import ExecutionRecord
from cloaca.server.auth import Principal
from cloaca.server.state import ServerState
from cloaca.server.views import TERMINAL, derived_events, event_view

router = APIRouter()
log = logging.getLogger("cloaca.server")
PROTOCOL_VERSION = 1
POLL_SECONDS = 0.1
HELLO_TIMEOUT = 10.0
KEY_CHECK_SECONDS = 1.0


def _find(state: ServerState, principal: Principal, eid: str) -> tuple[str, object] | None:
    """The tenant (and its generation) holding execution ``eid`` that the key may see."""
    row = state.db.get_key(principal.key_id)
    if row is None or row.revoked:
        return None
    tenants = state.tenants.names() if principal.is_admin else [principal.home_tenant]
    for tenant in tenants:
        generation = state.tenants.generation(tenant)
        if generation is None:
            continue
        try:
            with state.tenants.lease(tenant, generation):
                if state.tenants.runtime(tenant).runner.get_execution(eid):
                    return tenant, generation
        except ApiError:  # deleted meanwhile
            continue
    return None


def _still_allowed(state: ServerState, principal: Principal) -> bool:
    """False once the stream's key is revoked (by any server process)."""
    row = state.db.get_key(principal.key_id)
    return row is not None and not row.revoked


def _push_id(event_id: str) -> int:
    return int(event_id.replace("-", "")[:13], 16)


@router.websocket("/v1/ws/delivery/{recipient}")
async def delivery(websocket: WebSocket, recipient: str) -> None:
    """Stream one execution's events (see the module docstring)."""
    state: ServerState = websocket.app.state.server
    principal = state.tickets.redeem(websocket.query_params.get("token"))
    kind, _, eid = recipient.partition(":")
    found = None
    if principal is not None and kind == "exec_events" and eid:
        try:
            found = await run_in_threadpool(_find, state, principal, eid)
        except Exception:
            found = None
    if found is None or principal is None:
        await websocket.close(code=1008)
        return
    tenant, generation = found
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
            stream = _Stream(websocket, state, principal, tenant, generation, recipient)
            # after the run's last event: idle until the client leaves (or the key goes)
            if not (await stream.run(eid, reader) and await stream.idle(reader)):
                await websocket.close(code=4401, reason="key revoked or tenant deleted")
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


class _Stream:
    """One stream's events; it ends as soon as its key is revoked or its tenant deleted."""

    def __init__(
        self,
        websocket: WebSocket,
        state: ServerState,
        principal: Principal,
        tenant: str,
        generation: object,
        recipient: str,
    ) -> None:
        self.websocket = websocket
        self.state = state
        self.principal = principal
        self.tenant = tenant
        self.generation = generation
        self.recipient = recipient
        self._checked = 0.0

    def _allowed(self) -> bool:
        if self.state.tickets.is_revoked(self.principal.key_id):
            return False
        if self.state.tenants.generation(self.tenant) is not self.generation:
            return False
        now = time.monotonic()
        if now - self._checked >= KEY_CHECK_SECONDS:  # revoked by another server process?
            self._checked = now
            return _still_allowed(self.state, self.principal)
        return True

    def _read(self, eid: str, after: int) -> tuple[list[Any], ExecutionRecord | None]:
        with self.state.tenants.lease(self.tenant, self.generation):
            runner = self.state.tenants.runtime(self.tenant).runner
            records = list_events(runner.store, eid, after)
            rec = None if records else runner.get_execution(eid)
            if rec is not None and rec.status in TERMINAL:
                records = list_events(runner.store, eid, after)  # its last events may be in
            return records, rec

    async def run(self, eid: str, reader: asyncio.Task[Any]) -> bool:
        """Send the events of ``eid`` until its last one; False when cut off."""
        last = 0  # sequence_num of the last event sent
        while not reader.done():
            if not await run_in_threadpool(self._allowed):
                return False
            try:
                records, rec = await run_in_threadpool(self._read, eid, last)
            except ApiError:  # the tenant is gone
                return False
            for record in records:
                await _push(self.websocket, self.tenant, self.recipient, event_view(record))
                last = record.sequence_num
            if any(r.event_type in WORKFLOW_ENDS for r in records):
                return True
            if not records and rec is None:
                return True
            if rec is not None and rec.status in TERMINAL:
                legacy = derived_events(rec) if last == 0 and not records else []
                for event in legacy:
                    await _push(self.websocket, self.tenant, self.recipient, event)
                return True
            await asyncio.wait({reader}, timeout=POLL_SECONDS)
        return True

    async def idle(self, reader: asyncio.Task[Any]) -> bool:
        """Wait for the client to leave; False when the key or tenant goes first."""
        while not reader.done():
            if not await run_in_threadpool(self._allowed):
                return False
            await asyncio.wait({reader}, timeout=POLL_SECONDS * 5)
        return True


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
