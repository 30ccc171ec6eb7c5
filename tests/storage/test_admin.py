"""DatabaseAdmin on the real PostgreSQL: a tenant is a role owning one schema; a runner on the
tenant's connection string keeps its tables there and cannot reach another tenant's."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

import cloaca
from cloaca import Context, DatabaseAdmin, TenantConfig, WorkflowBuilder, task
from cloaca.errors import TenantAdminError

PG_URL = os.environ.get("CLOACA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
pytestmark = pytest.mark.postgres


def _reachable() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except Exception:
        return False


@pytest.fixture
def admin() -> DatabaseAdmin:
    if not _reachable():
        pytest.skip(f"no PostgreSQL server at {PG_URL}")
    return DatabaseAdmin(PG_URL)


@pytest.fixture
def tenants(admin: DatabaseAdmin) -> Iterator[list[tuple[str, str]]]:
    made: list[tuple[str, str]] = []
    yield made
    for schema, user in made:
        with contextlib.suppress(TenantAdminError):
            admin.remove_tenant(schema, user)


def _names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:10]
    return f"tenant_{tag}", f"user_{tag}"


def _tables(schema: str) -> set[str]:
    import psycopg

    with psycopg.connect(PG_URL) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
    return {r[0] for r in rows}


def test_tenant_runner_keeps_its_tables_in_its_schema(
    admin: DatabaseAdmin, tenants: list[tuple[str, str]]
) -> None:
    schema, user = _names()
    tenants.append((schema, user))
    creds = admin.create_tenant(TenantConfig(schema_name=schema, username=user))
    assert (creds.schema_name, creds.username) == (schema, user)
    assert len(creds.password) == 32 and creds.password.isalnum()
    assert creds.connection_string.startswith(f"postgresql://{user}:{creds.password}@")
    assert creds.password not in repr(creds)

    with WorkflowBuilder("admin_wf"):

        @task(id="admin_wf_work")
        def work(context: Context) -> Context:
            context.set("processed_records", 1250)
            return context

    config = cloaca.DefaultRunnerConfig(enable_cron_scheduling=False)
    with cloaca.DefaultRunner.with_config(creds.connection_string, config) as runner:
        result = runner.execute("admin_wf", Context({"tenant_id": schema}))
        assert result.status == "Completed"
        assert len(runner.list_executions()) == 1
    assert {"pipeline_executions", "execution_events"} <= _tables(schema)
    assert "pipeline_executions" not in _tables(user)  # nothing in a schema named like the role


def test_tenants_cannot_read_each_other(
    admin: DatabaseAdmin, tenants: list[tuple[str, str]]
) -> None:
    import psycopg

    first, second = _names(), _names()
    tenants.extend([first, second])
    a = admin.create_tenant(TenantConfig(*first, password="explicit_pw_1"))
    b = admin.create_tenant(TenantConfig(*second))
    assert a.password == "explicit_pw_1"
    with psycopg.connect(a.connection_string) as conn:
        conn.execute("CREATE TABLE mine (x int)")
        conn.execute("INSERT INTO mine VALUES (1)")
        conn.commit()
    with psycopg.connect(b.connection_string) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f'SELECT * FROM "{first[0]}".mine')


def test_errors_are_runtime_errors_and_nothing_is_half_created(
    admin: DatabaseAdmin, tenants: list[tuple[str, str]]
) -> None:
    import psycopg

    schema, user = _names()
    tenants.append((schema, user))
    admin.create_tenant(TenantConfig(schema, user))
    other_schema, _ = _names()
    with pytest.raises(RuntimeError, match="role already exists"):
        admin.create_tenant(TenantConfig(other_schema, user))
    with psycopg.connect(PG_URL) as conn:  # the refused call created no schema
        found = conn.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname = %s", (other_schema,)
        ).fetchone()
    assert found is None
    with pytest.raises(TenantAdminError, match="schema already exists"):
        admin.create_tenant(TenantConfig(schema, _names()[1]))
    with pytest.raises(TenantAdminError, match="invalid schema name 'bad-name'"):
        admin.create_tenant(TenantConfig("bad-name", "u"))
    admin.remove_tenant(schema, user)
    tenants.clear()
    assert _tables(schema) == set()
    with pytest.raises(TenantAdminError, match="no such tenant"):
        admin.remove_tenant(schema, user)


def test_admin_needs_a_postgresql_url() -> None:
    with pytest.raises(RuntimeError, match="needs a postgresql:// URL"):
        DatabaseAdmin("sqlite:///x.db")
    with pytest.raises(RuntimeError, match="names no database"):
        DatabaseAdmin("postgresql://u@localhost:5432/")
    assert TenantConfig("s", "u").password == ""
