"""Tenant schemas on PostgreSQL: a tenant never takes over a schema it did not create (tenant
``app_data`` beside an existing ``app_data`` schema), deleting it drops only what the server
created, and a tenant from before generations (named schema, storage NULL) is released the same
careful way — the foreign table in its schema survives."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from tests.server.archives import base_archive
from tests.server.support import PG_URL, ServerProcess, _pg_reason

pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("server-schemas")]
WF = "base-pkg"


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for each test (dropped afterwards)."""
    reason = _pg_reason()
    if reason:
        pytest.skip(reason)
    name = f"cloaca_sch_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG_URL.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg(pg_database: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to ``pg_database``."""
    with psycopg.connect(pg_database, autocommit=True) as conn:
        yield conn


def _tables(conn: psycopg.Connection, schema: str) -> list[str]:
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename", (schema,)
    ).fetchall()
    return [r[0] for r in rows]


def _schemas(conn: psycopg.Connection, pattern: str) -> list[str]:
    rows = conn.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s ORDER BY nspname", (pattern,)
    ).fetchall()
    return [r[0] for r in rows]


def _run_one(http: httpx.Client, tenant: str) -> None:
    files = {"file": ("b.cloaca", base_archive())}
    assert http.post(f"/v1/tenants/{tenant}/workflows", files=files).status_code == 201
    eid = http.post(f"/v1/tenants/{tenant}/workflows/{WF}/execute", json={}).json()["execution_id"]
    deadline = time.monotonic() + 60
    while http.get(f"/v1/tenants/{tenant}/executions/{eid}").json()["status"] != "Completed":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_foreign_schema_is_never_used_nor_dropped(
    pg: psycopg.Connection, pg_database: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    pg.execute("CREATE SCHEMA app_data")
    pg.execute("CREATE TABLE app_data.customers (id int PRIMARY KEY, name text)")
    pg.execute("INSERT INTO app_data.customers VALUES (1, 'keep me')")
    srv = ServerProcess(tmp_path_factory.mktemp("schemas"), "--database-url", pg_database).start()
    try:
        with srv.http() as http:
            assert http.post("/v1/tenants", json={"name": "app_data"}).status_code == 201
            _run_one(http, "app_data")
            assert _tables(pg, "app_data") == ["customers"]  # nothing of ours went there
            (own,) = _schemas(pg, "cloacina\\_app\\_data\\_%")
            assert "pipeline_executions" in _tables(pg, own)
            assert http.delete("/v1/tenants/app_data").status_code == 200
            assert _schemas(pg, "cloacina\\_app\\_data\\_%") == []
            rows = pg.execute("SELECT id, name FROM app_data.customers").fetchall()
            assert rows == [(1, "keep me")]
            for name in ("information_schema", "pg_toast", "public"):
                assert http.post("/v1/tenants", json={"name": name}).status_code == 400
    finally:
        srv.stop()


def test_legacy_tenant_schema_keeps_foreign_objects(
    pg: psycopg.Connection, pg_database: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("legacy")
    srv = ServerProcess(home, "--database-url", pg_database).start()
    srv.stop()
    # a tenant created before generations: its schema is named after it, and holds a table
    # someone else put there
    pg.execute("CREATE SCHEMA legacy_t")
    pg.execute("CREATE TABLE legacy_t.keep_me (id int)")
    pg.execute(
        "INSERT INTO cloacina_tenants (name, description, created_at, storage) "
        "VALUES ('legacy_t', NULL, 1.0, NULL)"
    )
    srv.start()
    try:
        with srv.http() as http:
            _run_one(http, "legacy_t")
            assert "pipeline_executions" in _tables(pg, "legacy_t")
            assert http.delete("/v1/tenants/legacy_t").status_code == 200
            assert _tables(pg, "legacy_t") == ["keep_me"]
            assert http.post("/v1/tenants", json={"name": "legacy_t"}).status_code == 201
            listing = http.get("/v1/tenants/legacy_t/executions").json()
            assert listing["total"] == 0
    finally:
        srv.stop()
