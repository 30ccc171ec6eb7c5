"""Access control, on SQLite and on PostgreSQL: every route of the OpenAPI spec by every kind of
key (none, unknown, revoked, the bootstrap key, a global admin key, read/write/admin keys of
``public``, of the target tenant and of another tenant) is refused or served exactly as its
scope says — never a 5xx. Plus the keys' own rules: the bootstrap key cannot be revoked through
the API (only rotated on the host, with the real CLI), tenant listings never show it, and
revoking a key voids its WebSocket tickets and closes its open streams at once."""

from __future__ import annotations

import base64
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.server.archives import base_archive
from tests.server.support import ServerProcess, bin_path

pytestmark = [pytest.mark.xdist_group("server-access"), pytest.mark.timeout(600)]
T, OTHER, WF = "acc", "acc_other", "base-pkg"

# who may call each operation: "open" (no key), "any" (any valid key), "god" (the bootstrap
# key), or the least role needed in the path's tenant
RULES: dict[tuple[str, str], str] = {
    ("GET", "/health"): "open",
    ("GET", "/ready"): "open",
    ("GET", "/v1/auth/whoami"): "any",
    ("POST", "/v1/auth/ws-ticket"): "any",
    ("GET", "/v1/auth/keys"): "god",
    ("POST", "/v1/auth/keys"): "god",
    ("DELETE", "/v1/auth/keys/{key_id}"): "god",
    ("GET", "/v1/tenants"): "god",
    ("POST", "/v1/tenants"): "god",
    ("DELETE", "/v1/tenants/{schema_name}"): "god",
    ("GET", "/v1/tenants/{tenant_id}/keys"): "admin",
    ("POST", "/v1/tenants/{tenant_id}/keys"): "admin",
    ("DELETE", "/v1/tenants/{tenant_id}/keys/{key_id}"): "admin",
    ("GET", "/v1/tenants/{tenant_id}/workflows"): "read",
    ("POST", "/v1/tenants/{tenant_id}/workflows"): "write",
    ("GET", "/v1/tenants/{tenant_id}/workflows/{name}"): "read",
    ("DELETE", "/v1/tenants/{tenant_id}/workflows/{name}/{version}"): "write",
    ("POST", "/v1/tenants/{tenant_id}/workflows/{name}/execute"): "write",
    ("POST", "/v1/tenants/{tenant_id}/workflows/{name}/pause"): "write",
    ("POST", "/v1/tenants/{tenant_id}/workflows/{name}/resume"): "write",
    ("GET", "/v1/tenants/{tenant_id}/executions"): "read",
    ("GET", "/v1/tenants/{tenant_id}/executions/{exec_id}"): "read",
    ("GET", "/v1/tenants/{tenant_id}/executions/{exec_id}/events"): "read",
    ("GET", "/v1/tenants/{tenant_id}/executions/{exec_id}/tasks"): "read",
}
ROLES = ("read", "write", "admin")


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def access_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server on SQLite or on a fresh PostgreSQL database."""
    args = []
    if request.param == "postgresql":
        args += ["--database-url", request.getfixturevalue("pg_database")]
    srv = ServerProcess(tmp_path_factory.mktemp(f"access-{request.param}"), *args).start()
    yield srv
    srv.stop()


def _key(http: httpx.Client, path: str, name: str, role: str) -> dict[str, Any]:
    response = http.post(path, json={"name": name, "role": role})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _scopes(srv: ServerProcess, http: httpx.Client) -> dict[str, tuple[str | None, str]]:
    """Scope name -> (key, what it may do: none|god|<tenant>:<role>)."""
    revoked = _key(http, "/v1/auth/keys", "gone", "admin")
    assert http.delete(f"/v1/auth/keys/{revoked['id']}").status_code == 200
    scopes: dict[str, tuple[str | None, str]] = {
        "no key": (None, "none"),
        "unknown key": ("clk_" + "x" * 43, "none"),
        "revoked key": (revoked["key"], "none"),
        "bootstrap": (srv.key, "god"),
        "global admin": (_key(http, "/v1/auth/keys", "g", "admin")["key"], "public:admin"),
    }
    for tenant in ("public", T, OTHER):
        for role in ROLES:
            key = _key(http, f"/v1/tenants/{tenant}/keys", f"{tenant}-{role}", role)["key"]
            scopes[f"{tenant} {role}"] = (key, f"{tenant}:{role}")
    return scopes


def _allowed(rule: str, grant: str, tenant: str | None) -> bool:
    if rule == "open":
        return True
    if grant == "none":
        return False
    if grant == "god" or rule == "any":
        return True
    if rule == "god":
        return False
    home, _, role = grant.partition(":")
    return home == tenant and ROLES.index(role) >= ROLES.index(rule)


def test_every_route_by_every_key_scope(access_server: ServerProcess) -> None:
    srv = access_server
    with srv.http() as http:
        for tenant in (T, OTHER):
            assert http.post("/v1/tenants", json={"name": tenant}).status_code == 201
        for tenant in ("public", T):
            files = {"file": ("b.cloaca", base_archive())}
            assert http.post(f"/v1/tenants/{tenant}/workflows", files=files).status_code == 201
        eid = http.post(f"/v1/tenants/{T}/workflows/{WF}/execute", json={}).json()["execution_id"]
        scopes = _scopes(srv, http)
        spec = http.get("/openapi.json").json()
    operations = [(method.upper(), path) for path, item in spec["paths"].items() for method in item]
    unclassified = [op for op in operations if op not in RULES]
    assert unclassified == [], "classify the new route(s) in RULES"
    values = {
        "tenant_id": T,
        "schema_name": "no_such_tenant",
        "name": WF,
        "version": "9.9.9",
        "exec_id": eid,
        "key_id": str(uuid.uuid4()),
    }
    wrong: list[tuple[str, str, str, int]] = []
    counted = 0
    for scope, (key, grant) in scopes.items():
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        with httpx.Client(base_url=srv.url, headers=headers, timeout=30) as client:
            for method, template in operations:
                path = template.format(**values)
                tenant = T if "{tenant_id}" in template else None
                kwargs: dict[str, Any] = {}
                if template.endswith("/workflows") and method == "POST":
                    kwargs["files"] = {"file": ("b.cloaca", base_archive())}
                elif template == "/v1/tenants" and method == "POST":
                    kwargs["json"] = {"name": f"t_{uuid.uuid4().hex[:8]}"}
                elif template.endswith("/keys") and method == "POST":
                    kwargs["json"] = {"name": "probe", "role": "read"}
                elif method == "POST":
                    kwargs["json"] = {}
                status = client.request(method, path, **kwargs).status_code
                counted += 1
                allowed = _allowed(RULES[(method, template)], grant, tenant)
                refused = 401 if grant == "none" else 403
                ok = status not in (401, 403) and status < 500 if allowed else status == refused
                if not ok:
                    wrong.append((scope, method, template, status))
    assert counted == len(scopes) * len(operations) >= 14 * 24
    assert wrong == []


def _ws_url(srv: ServerProcess, ticket: str, eid: str) -> str:
    recipient = quote(f"exec_events:{eid}", safe="")
    return f"ws{srv.url[4:]}/v1/ws/delivery/{recipient}?token={quote(ticket)}"


def test_bootstrap_key_is_protected_and_hidden(access_server: ServerProcess) -> None:
    srv = access_server
    with srv.http() as god:
        boot = [k for k in god.get("/v1/auth/keys").json()["items"] if k["is_admin"]]
        assert len(boot) == 1 and not boot[0]["revoked"]
        public_admin = _key(god, "/v1/tenants/public/keys", "pa", "admin")["key"]
        response = god.delete(f"/v1/auth/keys/{boot[0]['id']}")
        assert (response.status_code, response.json()["code"]) == (403, "bootstrap_key_protected")
        assert "rotate-key" in response.json()["error"]
    with srv.http(public_admin) as admin:
        listed = admin.get("/v1/tenants/public/keys").json()["items"]
        assert listed and not [k for k in listed if k["is_admin"] or k["name"] == "bootstrap"]
        response = admin.delete(f"/v1/tenants/public/keys/{boot[0]['id']}")
        assert (response.status_code, response.json()["code"]) == (404, "key_not_found")
    with srv.http() as god:
        assert god.get("/v1/auth/whoami").json()["is_admin"] is True


def test_revoking_a_key_voids_its_tickets_and_closes_its_streams(
    access_server: ServerProcess,
) -> None:
    srv = access_server
    with srv.http() as god:
        files = {"file": ("b.cloaca", base_archive())}
        assert god.post("/v1/tenants/public/workflows", files=files).status_code in (201, 200)
        eid = god.post(f"/v1/tenants/public/workflows/{WF}/execute", json={}).json()["execution_id"]
        reader = _key(god, "/v1/tenants/public/keys", "streamer", "read")
    with srv.http(reader["key"]) as http:
        unused = http.post("/v1/auth/ws-ticket").json()["ticket"]
        live = http.post("/v1/auth/ws-ticket").json()["ticket"]
    with connect(_ws_url(srv, live, eid), open_timeout=10) as sock:
        sock.send(json.dumps({"type": "hello", "protocol_version": 1}))
        assert json.loads(sock.recv(10))["type"] == "welcome"
        events = []
        while not events or events[-1] not in ("workflow_completed", "workflow_failed"):
            frame = json.loads(sock.recv(30))
            events.append(json.loads(base64.b64decode(frame["payload_b64"]))["event_type"])
        with srv.http() as god:  # the stream is idle now; revoke its key
            assert god.delete(f"/v1/tenants/public/keys/{reader['id']}").status_code == 200
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            while time.monotonic() - started < 30:
                sock.recv(30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    with pytest.raises(InvalidStatus) as refused:
        connect(_ws_url(srv, unused, eid), open_timeout=10)
    assert refused.value.response.status_code == 403


def test_rotate_key_on_the_host(access_server: ServerProcess) -> None:
    srv = access_server
    old = srv.key
    at = srv.args.index("--database-url") if "--database-url" in srv.args else None
    database = ["--database-url", srv.args[at + 1]] if at is not None else []
    args = [bin_path("cloacina"), "--home", str(srv.home), "-o", "json", "server", "rotate-key"]
    args += database
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["key_file"] == str(srv.home / "bootstrap-key")
    new = srv.key
    assert new != old
    assert httpx.get(srv.url + "/v1/auth/whoami", headers={"Authorization": f"Bearer {old}"},
                     timeout=30).status_code == 401  # fmt: skip
    me = httpx.get(srv.url + "/v1/auth/whoami", headers={"Authorization": f"Bearer {new}"},
                   timeout=30)  # fmt: skip
    assert me.status_code == 200 and me.json()["is_admin"] is True
