"""URL forms accepted by the runner's storage."""

from __future__ import annotations

import os

import pytest

from cloaca.errors import StorageError
from cloaca.storage import check_schema_name, parse_database_url


def test_sqlite_absolute_forms() -> None:
    for url in ("sqlite:///tmp/x/runs.db", "sqlite:////tmp/x/runs.db"):
        parsed = parse_database_url(url)
        assert parsed.dialect == "sqlite"
        assert parsed.path == "/tmp/x/runs.db"
        assert parsed.sqlalchemy_url == "sqlite:////tmp/x/runs.db"


def test_sqlite_relative_and_cloacina_query() -> None:
    parsed = parse_database_url("sqlite://runs.db?mode=rwc&_busy_timeout=1234")
    assert parsed.path == os.path.abspath("runs.db")
    assert parsed.busy_timeout_ms == 1234
    assert parse_database_url("runs.db").path == os.path.abspath("runs.db")


def test_memory_forms() -> None:
    for url in ("sqlite:///:memory:", "sqlite://:memory:", "sqlite://", ":memory:"):
        assert parse_database_url(url).is_memory


def test_postgres_forms_use_psycopg3() -> None:
    for url in (
        "postgresql://u:pw@h:5432/db",
        "postgres://u:pw@h:5432/db",
        "postgresql+psycopg://u:pw@h:5432/db",
    ):
        parsed = parse_database_url(url)
        assert parsed.dialect == "postgresql"
        assert parsed.sqlalchemy_url == "postgresql+psycopg://u:pw@h:5432/db"
        assert "pw" not in parsed.display


def test_unsupported_scheme() -> None:
    with pytest.raises(StorageError, match="unsupported"):
        parse_database_url("mysql://x/y")


def test_schema_names() -> None:
    assert check_schema_name("tenant_1") == "tenant_1"
    for bad in ("1abc", "a-b", 'x"; drop', "", "a" * 64):
        with pytest.raises(ValueError):
            check_schema_name(bad)
