"""Apply the Alembic migrations under ``cloaca/storage/migrations`` programmatically.

Opening a database brings it to the newest revision. Concurrent openers are serialised (a
PostgreSQL advisory lock; SQLite's write lock via ``BEGIN IMMEDIATE``), so two runner processes
starting on a fresh database do not both create the tables.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from sqlalchemy import text

if TYPE_CHECKING:
    from cloaca.storage.engine import Store

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")
HEAD = "0005"


def upgrade(store: Store, revision: str = "head") -> None:
    """Bring ``store`` to ``revision`` (default: the newest)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS_DIR)
    with store.write() as conn:
        if store.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('cloaca-migrations'))"))
        if revision == "head" and current_revision(conn) == HEAD:
            return  # the common case: skip loading Alembic's script directory
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(conn: object) -> str | None:
    """The revision recorded in ``alembic_version``, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()  # type: ignore[arg-type]
