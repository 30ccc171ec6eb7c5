"""The server on PostgreSQL: the SDK flow, tenants as schemas (isolated), and a restart
mid-execution — each against a fresh database."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cloacina_client import CloacinaApiError

from tests.server.support import RAW_DATA, Gate, ServerProcess, wait_status

pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("server-postgres")]
WF = "data-pipeline-example"


@pytest.fixture(scope="module")
def pg_server(
    tmp_path_factory: pytest.TempPathFactory, pg_database: str
) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("pg-home"), "--database-url", pg_database)
    yield srv.start()
    srv.stop()


def test_sdk_flow_on_postgres(pg_server: ServerProcess, example_archive: Path) -> None:
    client = pg_server.client()
    assert client.ready() == (200, {"status": "ready"})
    assert not (pg_server.home / "server.db").exists()
    client.upload_workflow(example_archive.read_bytes())
    eid = client.execute_workflow(WF, {"raw_data": RAW_DATA}).execution_id
    detail = wait_status(client, eid)
    assert detail.status == "Completed"
    assert detail.additional_properties["context"]["aggregations"]["count"] == 2
    assert [t.status for t in client.get_execution_tasks("public", eid).tasks] == ["Completed"] * 4
    assert client.get_execution_events(eid).events[-1].event_type == "workflow_completed"


def test_tenants_are_schemas(
    pg_server: ServerProcess, pg_database: str, example_archive: Path
) -> None:
    admin = pg_server.client()
    admin.create_tenant("globex")
    globex = pg_server.client(
        key=admin.create_tenant_key("ci", "write", tenant="globex").key, tenant="globex"
    )
    globex.upload_workflow(example_archive.read_bytes())
    eid = globex.execute_workflow(WF, {"raw_data": RAW_DATA}).execution_id
    assert wait_status(globex, eid).status == "Completed"
    with psycopg.connect(pg_database) as conn:
        (schema,) = _schemas(conn, "cloacina\\_globex\\_%")  # its own generation's schema
        count = conn.execute(f'SELECT count(*) FROM "{schema}".pipeline_executions').fetchone()
        assert "globex" not in _schemas(conn, "%")
    assert count == (1,)
    with pytest.raises(CloacinaApiError) as err:
        globex.list_executions(tenant="public")
    assert err.value.code == "tenant_access_denied"
    with pytest.raises(CloacinaApiError) as err:
        admin.get_execution(eid)  # not in public
    assert err.value.code == "execution_not_found"
    admin.remove_tenant("globex")
    with psycopg.connect(pg_database) as conn:
        assert _schemas(conn, "cloacina\\_globex\\_%") == []


def _schemas(conn: psycopg.Connection, pattern: str) -> list[str]:
    rows = conn.execute(
        "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
        (pattern,),
    ).fetchall()
    return [r[0] for r in rows]


@pytest.mark.slow
def test_restart_on_postgres(pg_server: ServerProcess, example_archive: Path, gate: Gate) -> None:
    client = pg_server.client()
    client.upload_workflow(example_archive.read_bytes())
    eid = client.execute_workflow(WF, {"api_url": gate.url}).execution_id
    gate.wait_hits(1)
    pg_server.stop(signal.SIGKILL)
    pg_server.start()
    gate.open()
    client = pg_server.client()
    assert wait_status(client, eid).status == "Completed"
    assert client.get_execution_tasks("public", eid).tasks[0].attempt == 2
