"""Bring the server tables (:mod:`cloaca.server.db`) to the newest Alembic revision.

The server's migrations (:mod:`cloaca.server.migrations`) are a history of their own, recorded
in the ``cloacina_server_version`` table, so they share the main database with the ``public``
tenant's runner tables (versioned in ``alembic_version``) without colliding. Concurrent server
starts are serialised (a PostgreSQL advisory lock; SQLite's write lock via ``BEGIN
IMMEDIATE``). A database whose server tables predate the migrations (created by
``create_all``) is adopted: stamped at the first revision, then upgraded.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect, text

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from cloaca.storage import Store

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")
VERSION_TABLE = "cloacina_server_version"
HEAD = "s0003"
FIRST = "s0001"
FIRST_TABLES = frozenset({"cloacina_tenants", "cloacina_api_keys", "cloacina_packages"})
SERVER_TABLES = FIRST_TABLES | {"cloacina_workflow_pauses"}


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic filter: only the server's tables (the runner's live in the same database)."""
    return type_ != "table" or name in SERVER_TABLES


def upgrade(store: Store, revision: str = "head") -> None:
    """Bring the server tables of ``store`` to ``revision`` (default: the newest).

    Parameters
    ----------
    store:
        The main database of the server.
    revision:
        An Alembic revision of the server's history, or ``"head"``.
    """
    from alembic import command

    with store.write() as conn:
        if store.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('cloaca-server-migrations'))"))
        current = current_revision(conn)
        if revision == "head" and current == HEAD:
            return  # the common case: skip loading Alembic's script directory
        cfg = _config(conn)
        if current is None and set(inspect(conn).get_table_names()) >= FIRST_TABLES:
            command.stamp(cfg, FIRST)  # tables made by create_all before migrations existed
        command.upgrade(cfg, revision)


def current_revision(conn: Connection) -> str | None:
    """The server revision recorded in ``cloacina_server_version``, or None."""
    from alembic.runtime.migration import MigrationContext

    ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


def _config(conn: Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS_DIR)
    cfg.attributes["connection"] = conn
    return cfg
