"""An execution's events, live, over the server's delivery WebSocket.

:func:`follow_events` asks for a one-use ticket (``POST /v1/auth/ws-ticket``), connects to
``/v1/ws/delivery/exec_events:<id>``, speaks the SDK's protocol (hello, then one ``push`` frame
per event, each acked) and yields each event as the REST API shows it (``event_type``,
``task_name``, ``event_data`` as JSON text, ``created_at``, ``sequence_num``). It ends after the
execution's last event (``workflow_completed`` / ``workflow_failed``). Events recorded before
the connection are sent first, so nothing is missed when the run is faster than the connect.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from cloaca.remote.client import ApiClient

END_EVENTS = frozenset({"workflow_completed", "workflow_failed"})
PROTOCOL_VERSION = 1


def delivery_url(server: str, execution_id: str, ticket: str) -> str:
    """The WebSocket URL of an execution's event stream (``http`` → ``ws``)."""
    base = "ws" + server[len("http") :] if server.startswith("http") else server
    recipient = quote("exec_events:" + execution_id, safe="")
    return f"{base}/v1/ws/delivery/{recipient}?token={quote(ticket)}"


def follow_events(
    client: ApiClient, execution_id: str, *, open_timeout: float = 10.0
) -> Iterator[dict[str, Any]]:
    """Yield the events of execution ``execution_id`` until its last one.

    Blocking (the ``websockets`` sync client), so the caller's thread receives every event:
    the kernel's main thread can apply them to widgets directly, and Ctrl-C closes the stream.

    Raises
    ------
    ApiError
        The ticket was refused (e.g. a bad key).
    websockets.exceptions.WebSocketException, OSError
        The stream could not be opened or broke off.
    """
    from websockets.sync.client import connect

    ticket = client.post("/v1/auth/ws-ticket")["ticket"]
    url = delivery_url(client.server, execution_id, ticket)
    with connect(url, open_timeout=open_timeout) as sock:
        hello = {"type": "hello", "protocol_version": PROTOCOL_VERSION, "since_id": None}
        sock.send(json.dumps(hello))
        for raw in sock:
            frame = json.loads(raw)
            if frame.get("type") != "push":
                continue
            event: dict[str, Any] = json.loads(base64.b64decode(frame["payload_b64"]))
            ack = {"type": "ack", "protocol_version": PROTOCOL_VERSION, "id": frame["id"]}
            sock.send(json.dumps(ack))
            yield event
            if event["event_type"] in END_EVENTS:
                return
