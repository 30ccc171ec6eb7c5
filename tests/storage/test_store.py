"""Opening databases: migrations on open, SQLite pragmas, schemas only on PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from cloaca.errors import StorageError
from cloaca.storage import Store
from cloaca.storage.migrate import HEAD

TABLES = {
    "runners",
    "workflow_registrations",
    "pipeline_executions",
    "task_executions",
    "cron_schedules",
    "cron_executions",
    "trigger_schedules",
    "trigger_executions",
    "alembic_version",
}


def test_open_creates_schema_at_head(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    store = Store(f"sqlite:///{path}")
    assert set(inspect(store.engine).get_table_names()) >= TABLES
    with store.read() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 5000
    store.dispose()
    Store(f"sqlite:///{path}").dispose()  # reopening is a no-op migration
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)


def test_concurrent_first_opens_migrate_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            Store(url).dispose()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_schema_needs_postgres(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="PostgreSQL"):
        Store(f"sqlite:///{tmp_path / 'x.db'}", schema="tenant")


def test_unopenable_path_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="could not open"):
        Store(f"sqlite:///{blocker}/sub/x.db")


def test_upgrade_from_0002_adds_attempt_claim_columns(tmp_path: Path) -> None:
    from cloaca.storage.migrate import upgrade

    store = Store(f"sqlite:///{tmp_path / 'old.db'}", migrate=False)
    upgrade(store, "0002")
    columns = {c["name"] for c in inspect(store.engine).get_columns("task_executions")}
    assert "claimed_attempt" not in columns
    upgrade(store)
    columns = {c["name"] for c in inspect(store.engine).get_columns("task_executions")}
    assert {"attempt_owner", "claimed_attempt"} <= columns
    with store.read() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD
    store.dispose()
