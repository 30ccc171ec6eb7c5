"""The server tables are versioned by Alembic migrations applied on open: a fresh database
migrates, opening it again runs no DDL, tables made by the old ``create_all`` are adopted, the
migrated schema matches the models, and a real server restarts on its home unchanged — on
SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, inspect, text

from cloaca.server import migrate
from cloaca.server.db import ServerDB, metadata
from cloaca.storage import Store
from tests.server.support import PG_URL, ServerProcess, _pg_reason

pytestmark = pytest.mark.xdist_group("server-migrations")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh SQLite file, or a fresh PostgreSQL database (its default schema)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'server.db'}"
        return
    reason = _pg_reason()
    if reason:
        pytest.skip(reason)
    name = f"cloaca_mig_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG_URL.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _diff(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"include_name": migrate.include_name, "compare_type": True}
        )
        return compare_metadata(ctx, metadata)


def _revision(store: Store) -> str | None:
    with store.read() as conn:
        return migrate.current_revision(conn)


def test_fresh_database_migrates_to_head_and_matches_the_models(db_url: str) -> None:
    db = ServerDB(db_url)
    try:
        assert _revision(db.store) == migrate.HEAD
        tables = set(inspect(db.store.engine).get_table_names())
        assert migrate.SERVER_TABLES | {migrate.VERSION_TABLE} <= tables
        assert "alembic_version" not in tables  # the runner's history stays its own
        assert _diff(db.store) == []
    finally:
        db.close()


def test_reopening_runs_no_ddl_and_keeps_the_data(db_url: str) -> None:
    db = ServerDB(db_url)
    db.add_tenant("acme", "first")
    db.close()
    store = Store(db_url, migrate=False, pool_size=1)
    statements: list[str] = []
    event.listen(
        store.engine, "before_cursor_execute", lambda *a: statements.append(a[2].lstrip().upper())
    )
    try:
        migrate.upgrade(store)
        assert not [s for s in statements if s.startswith(("CREATE", "ALTER", "DROP", "INSERT"))]
        assert _revision(store) == migrate.HEAD
    finally:
        store.dispose()
    again = ServerDB(db_url)
    try:
        assert again.list_tenants() == [("acme", "first")]
    finally:
        again.close()


def test_upgrading_from_s0001_adds_the_workflow_pauses_table(db_url: str) -> None:
    store = Store(db_url, migrate=False, pool_size=1)
    try:
        migrate.upgrade(store, "s0001")
        assert _revision(store) == "s0001"
        assert "cloacina_workflow_pauses" not in inspect(store.engine).get_table_names()
        with store.write() as conn:
            conn.execute(
                text("INSERT INTO cloacina_tenants (name, created_at) VALUES ('old', 1.0)")
            )
        migrate.upgrade(store)
        assert _revision(store) == migrate.HEAD == "s0003"
        assert "cloacina_workflow_pauses" in inspect(store.engine).get_table_names()
        assert _diff(store) == []
    finally:
        store.dispose()
    db = ServerDB(db_url)
    try:
        assert [name for name, _ in db.list_tenants()] == ["old"]
        assert db.tenant_storage() == {"old": None}  # s0003: storage named after the tenant
        assert not db.is_paused("old", "wf")
        db.set_paused("old", "wf", True)
        db.set_paused("old", "wf", True)  # idempotent
        assert db.paused_workflows("old") == {"wf"}
        db.remove_tenant("old")
        assert db.paused_workflows("old") == set()
    finally:
        db.close()


def test_tables_made_by_create_all_are_adopted(db_url: str) -> None:
    store = Store(db_url, migrate=False, pool_size=1)
    try:
        metadata.create_all(store.engine)  # what servers before the migrations did
        with store.write() as conn:
            conn.execute(
                text("INSERT INTO cloacina_tenants (name, created_at) VALUES ('old', 1.0)")
            )
        migrate.upgrade(store)
        assert _revision(store) == migrate.HEAD
        assert _diff(store) == []
    finally:
        store.dispose()
    db = ServerDB(db_url)
    try:
        assert [name for name, _ in db.list_tenants()] == ["old"]
    finally:
        db.close()


def test_server_restart_on_an_existing_home_is_a_no_op(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = ServerProcess(home).start()
    try:
        key = first.key
        first.client().create_tenant("kept")
    finally:
        first.stop()
    second = ServerProcess(home).start()
    try:
        assert second.key == key  # no second bootstrap
        assert {t.name for t in second.client().list_tenants().items} >= {"public", "kept"}
    finally:
        second.stop()
    store = Store(f"sqlite:///{home / 'server.db'}", migrate=False, pool_size=1)
    try:
        assert _revision(store) == migrate.HEAD
        with store.read() as conn:
            rows = conn.execute(text(f"SELECT count(*) FROM {migrate.VERSION_TABLE}")).scalar()
        assert rows == 1
    finally:
        store.dispose()
