"""Where a tenant's executions are stored, per generation: claimed when the tenant is
created, released when it is deleted.

- PostgreSQL: a schema ``cloacina_<name>_<8 hex>``, made with ``CREATE SCHEMA`` (never ``IF NOT
  EXISTS``: a schema that already exists is never adopted — another random suffix is tried).
  So tenant ``app_data`` never writes into an existing ``app_data`` schema, and a tenant
  created again with the same name gets another, empty schema.
- SQLite: a database file ``<name>_<8 hex>.db`` beside the main one (see
  :meth:`ServerConfig.tenant_sqlite_url`).

Releasing drops only what the runner created: its tables (the runner's and Alembic's
``alembic_version``), one by one, then the schema itself only when nothing else is left in it
— a foreign object put there is kept (and logged). Tenants created before generations
existed (storage NULL) use the schema or file named after them; they are released the same
careful way.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from cloaca.storage.models import metadata as runner_metadata
from cloaca.storage.url import check_schema_name

if TYPE_CHECKING:
    from cloaca.server.config import ServerConfig
    from cloaca.server.db import ServerDB

log = logging.getLogger("cloaca.server")
SCHEMA_PREFIX = "cloacina_"
_TRIES = 8


def storage_name(config: ServerConfig, name: str) -> str:
    """A fresh storage name for tenant ``name`` (not yet claimed)."""
    token = secrets.token_hex(4)
    if config.is_postgres:
        return check_schema_name(f"{SCHEMA_PREFIX}{name[:44]}_{token}")
    return f"{name}_{token}"


def claim_storage(config: ServerConfig, db: ServerDB, name: str) -> str:
    """Claim new storage for tenant ``name`` and return its name (the schema is created now,
    so it is ours; an existing one is never reused)."""
    for _ in range(_TRIES):
        storage = storage_name(config, name)
        if config.is_postgres:
            try:
                with db.store.write() as conn:
                    conn.execute(text(f'CREATE SCHEMA "{storage}"'))
            except DBAPIError as exc:
                if "already exists" not in str(exc):
                    raise
                continue
            return storage
        if not any(path.exists() for path in _sqlite_files(config, storage)):
            return storage
    raise RuntimeError(f"could not find unused storage for tenant {name!r}")


def release_storage(config: ServerConfig, db: ServerDB, storage: str) -> None:
    """Drop what the runner created in ``storage`` (see the module docstring)."""
    if not config.is_postgres:
        for path in _sqlite_files(config, storage):
            path.unlink(missing_ok=True)
        return
    schema = check_schema_name(storage)
    owned = [t.name for t in reversed(runner_metadata.sorted_tables)] + ["alembic_version"]
    for table in owned:
        try:
            with db.store.write() as conn:
                conn.execute(text(f'DROP TABLE IF EXISTS "{schema}"."{table}"'))
        except DBAPIError as exc:  # something foreign depends on it: keep it
            log.warning("schema %r: table %r kept: %s", schema, table, exc.orig)
    with db.store.write() as conn:
        left = conn.execute(
            text(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = :s"
            ),
            {"s": schema},
        ).scalar_one()
        exists = conn.execute(
            text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}
        ).first()
    if exists is None:
        return
    if left:
        log.warning("schema %r kept: it holds %d object(s) the server did not create", schema, left)
        return
    try:
        with db.store.write() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}"'))  # RESTRICT: only when empty
    except DBAPIError as exc:
        log.warning("schema %r kept: %s", schema, exc.orig)


def _sqlite_files(config: ServerConfig, storage: str) -> list[Path]:
    url = config.tenant_sqlite_url(storage)
    if not url.startswith("sqlite:///") or ":memory:" in url:
        return []  # in memory: nothing on disk
    base = Path(url[len("sqlite:///") :])
    return [Path(f"{base}{suffix}") for suffix in ("", "-wal", "-shm")]
