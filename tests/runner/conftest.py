"""Fixtures for the durable runner tests: SQLite URLs, a PostgreSQL URL (or one skip reason),
unique tenant schemas dropped afterwards, and child processes importing fixture modules."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
PG_URL = os.environ.get("CLOACA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
_pg_state: dict[str, str | None] = {}


def _pg_reason() -> str | None:
    if "reason" not in _pg_state:
        try:
            import psycopg

            url = PG_URL.replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(url, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _pg_state["reason"] = None
        except Exception as exc:  # any failure means: no server for these tests
            _pg_state["reason"] = f"no PostgreSQL server at {PG_URL} ({type(exc).__name__})"
    return _pg_state["reason"]


@pytest.fixture
def pg_url() -> str:
    """The test PostgreSQL URL; skips the test with one clear reason when unreachable."""
    reason = _pg_reason()
    if reason:
        pytest.skip(reason)
    return PG_URL


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    """A unique schema name, dropped after the test."""
    names: list[str] = []
    name = f"t_{uuid.uuid4().hex[:12]}"
    names.append(name)
    yield name
    drop_schemas(pg_url, names)


@pytest.fixture
def pg_schemas(pg_url: str) -> Iterator[list[str]]:
    """Factory-ish list: append names to it; all are dropped after the test."""
    names: list[str] = []
    yield names
    drop_schemas(pg_url, names)


def drop_schemas(url: str, names: list[str]) -> None:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        for name in names:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite file URL."""
    return f"sqlite:///{tmp_path / 'runner.db'}"


def spawn(code: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``python -c code`` with the fixture modules importable."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(FIXTURES), str(Path(__file__).parents[2]), full_env.get("PYTHONPATH", "")]
    )
    full_env.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
