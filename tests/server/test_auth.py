"""Keys, roles and tenants: 401 without a valid key, 403 for another tenant's key or too weak
a role, keys stored as SHA-256 only, and tenants that never see each other's data."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import httpx
import pytest
from cloacina_client import CloacinaApiError

from tests.server.support import RAW_DATA, ServerProcess, wait_status

WF = "data-pipeline-example"
pytestmark = pytest.mark.xdist_group("server-auth")


def _code(call: object) -> tuple[int, str]:
    with pytest.raises(CloacinaApiError) as err:
        call()  # type: ignore[operator]
    return err.value.status, err.value.code


def test_bootstrap_key_file_and_hash_only_storage(server: ServerProcess) -> None:
    path = server.home / "bootstrap-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = server.key
    assert key.startswith("clk_") and len(key) == 4 + 43
    log = (server.home / "test-server.log").read_text()
    assert key not in log
    created = server.client().create_key("ci", role="write")
    rows = sqlite3.connect(server.home / "server.db").execute(
        "SELECT key_hash FROM cloacina_api_keys"
    )
    hashes = [r[0] for r in rows]
    assert len(hashes) >= 2 and all(len(h) == 64 for h in hashes)
    raw = (server.home / "server.db").read_bytes()
    assert key.encode() not in raw and created.key.encode() not in raw


def test_missing_wrong_and_revoked_keys_are_401(server: ServerProcess) -> None:
    response = httpx.get(server.url + "/v1/tenants/public/workflows")
    assert response.status_code == 401 and response.json()["code"] == "unauthorized"
    assert response.headers["x-request-id"]
    assert _code(server.client(key="clk_wrong").list_workflows) == (401, "unauthorized")
    created = server.client().create_key("short-lived", role="read")
    reader = server.client(key=created.key)
    assert reader.whoami().role == "read"
    revoked = server.client().revoke_key(created.id)
    assert revoked.status == "revoked"
    assert _code(reader.list_workflows) == (401, "unauthorized")
    assert _code(lambda: server.client().revoke_key("nope")) == (400, "invalid_request")


def test_roles(server: ServerProcess, example_archive: Path, uploaded: str) -> None:
    admin = server.client()
    reader = server.client(key=admin.create_key("reader", role="read").key)
    writer = server.client(key=admin.create_key("writer", role="write").key)
    assert reader.list_workflows().total == 1
    assert _code(lambda: reader.execute_workflow(WF, {})) == (403, "insufficient_permissions")
    assert _code(lambda: reader.upload_workflow(example_archive.read_bytes())) == (
        403,
        "insufficient_permissions",
    )
    eid = writer.execute_workflow(WF, {"raw_data": RAW_DATA}).execution_id
    assert wait_status(reader, eid).status == "Completed"
    assert _code(writer.list_tenants) == (403, "admin_required")
    assert _code(lambda: writer.create_key("x")) == (403, "admin_required")
    assert _code(writer.list_tenant_keys) == (403, "insufficient_permissions")
    me = writer.whoami()
    assert (me.name, me.role, me.is_admin, me.tenant_id) == ("writer", "write", False, None)


def test_tenants_are_isolated(server: ServerProcess, example_archive: Path, uploaded: str) -> None:
    admin = server.client()
    created = admin.create_tenant("acme", description="Acme Corp")
    assert (created.name, created.username) == ("acme", "acme")
    assert _code(lambda: admin.create_tenant("acme")) == (409, "tenant_exists")
    assert _code(lambda: admin.create_tenant("bad-name!")) == (400, "invalid_request")
    assert {t.name for t in admin.list_tenants().items} >= {"public", "acme"}

    ops_key = admin.create_tenant_key("ops", "admin", tenant="acme").key
    acme_admin = server.client(key=ops_key, tenant="acme")
    acme = server.client(key=acme_admin.create_tenant_key("ci", "write").key, tenant="acme")
    assert acme.whoami().tenant_id == "acme"
    assert acme.list_workflows().total == 0  # public's package is not visible
    acme.upload_workflow(example_archive.read_bytes())
    eid = acme.execute_workflow(WF, {"raw_data": RAW_DATA}).execution_id
    assert wait_status(acme, eid).status == "Completed"

    # acme's key in public, and public's key in acme: 403
    assert _code(lambda: acme.list_workflows(tenant="public")) == (403, "tenant_access_denied")
    public_writer = server.client(key=admin.create_key("pw", role="write").key)
    assert _code(lambda: public_writer.get_execution(eid, tenant="acme")) == (
        403,
        "tenant_access_denied",
    )
    # the admin key sees both, and each tenant only its own executions
    assert _code(lambda: admin.get_execution(eid)) == (404, "execution_not_found")
    assert admin.get_execution(eid, tenant="acme").status == "Completed"
    assert eid not in [i.id for i in admin.list_executions(limit=1000).items]
    assert [i.id for i in admin.list_executions(tenant="acme").items] == [eid]
    keys = acme_admin.list_tenant_keys(tenant="acme")
    assert {k.name for k in keys.items} == {"ops", "ci"}
    assert _code(lambda: admin.list_workflows(tenant="ghost")) == (404, "tenant_not_found")

    removed = admin.remove_tenant("acme")
    assert (removed.status, removed.schema_name, removed.revoked_keys) == ("removed", "acme", 2)
    assert _code(acme.whoami) == (401, "unauthorized")
    assert "acme" not in {t.name for t in admin.list_tenants().items}
    # the archive is shared with public (content-addressed), so it stays
    assert len(list((server.home / "packages").glob("*.cloaca"))) == 1
    assert not (server.home / "tenants" / "acme.db").exists()
    assert _code(lambda: admin.remove_tenant("public")) == (400, "invalid_request")
