"""Engines and connections: SQLite pragmas (WAL, busy timeout), PostgreSQL schemas, and the
:class:`Store` handle the runner uses for reads and short write transactions.

SQLite write transactions start with ``BEGIN IMMEDIATE`` so that a read-then-write (a claim)
is atomic across processes and never fails half-way with "database is locked"; readers use
plain deferred transactions and, thanks to WAL, never wait for the writer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from cloaca.errors import StorageError
from cloaca.storage.url import DatabaseURL, check_schema_name, parse_database_url


class Store:
    """An open runner database: the engine, its dialect and the tenant schema.

    Parameters
    ----------
    url:
        Any URL accepted by :func:`~cloaca.storage.url.parse_database_url`.
    schema:
        PostgreSQL schema holding this tenant's tables (created on first use); None means
        ``public``. Not available on SQLite.
    pool_size:
        Connection pool size.
    migrate:
        Apply pending Alembic migrations now (the default).
    idle_transaction_timeout:
        PostgreSQL only: seconds after which the server ends a session of this store that sits
        idle inside a transaction (``idle_in_transaction_session_timeout``). A runner passes
        its ``stale_after``: a process stopped in the middle of a transaction (SIGSTOP, a paused
        VM) then releases its row locks, so another runner can take its executions over.
    application_name:
        PostgreSQL only: the sessions' ``application_name`` (a runner names them after its id,
        so another runner can end the sessions of a runner it found dead).
    """

    def __init__(
        self,
        url: str | DatabaseURL,
        *,
        schema: str | None = None,
        pool_size: int = 10,
        migrate: bool = True,
        idle_transaction_timeout: float | None = None,
        application_name: str | None = None,
    ) -> None:
        self.url = url if isinstance(url, DatabaseURL) else parse_database_url(url)
        if schema is not None and self.url.dialect != "postgresql":
            raise StorageError(
                "schemas (tenants) need PostgreSQL; use one SQLite file per tenant instead",
                url=self.url.display,
            )
        self.schema = check_schema_name(schema) if schema is not None else None
        self.dialect = self.url.dialect
        # an in-memory database is one connection shared by every thread: serialise access
        self._memory_lock: threading.RLock | None = (
            threading.RLock() if self.url.is_memory else None
        )
        self._idle_timeout = idle_transaction_timeout
        self._application_name = application_name
        try:
            self.engine = self._create_engine(pool_size)
            if self.schema is not None:
                self._create_schema()
            if migrate:
                from cloaca.storage.migrate import upgrade

                upgrade(self)
        except StorageError:
            raise
        except Exception as exc:
            raise StorageError(f"could not open: {exc}", url=self.url.display) from exc

    # ------------------------------------------------------------------ engine setup
    def _create_engine(self, pool_size: int) -> Engine:
        if self.dialect == "sqlite":
            return _sqlite_engine(self.url, pool_size)
        connect_args: dict[str, Any] = {}
        if self._application_name is not None:
            connect_args["application_name"] = self._application_name
        if self._idle_timeout is not None:
            ms = max(1, int(self._idle_timeout * 1000))
            connect_args["options"] = f"-c idle_in_transaction_session_timeout={ms}"
        engine = create_engine(
            self.url.sqlalchemy_url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            connect_args=connect_args,
        )
        if self.schema is not None:
            path = f'"{self.schema}"'

            @event.listens_for(engine, "connect")
            def _set_search_path(dbapi_conn: Any, record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute(f"SET search_path TO {path}")
                cur.close()
                dbapi_conn.commit()

        return engine

    def _create_schema(self) -> None:
        with self.engine.connect() as conn, conn.begin():
            # serialise concurrent first uses of the same schema (CREATE ... IF NOT EXISTS races)
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": self.schema})
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))

    # ------------------------------------------------------------------ connections
    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection inside a (deferred) transaction, for queries."""
        with self._memory_lock or nullcontext(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection inside a write transaction (``BEGIN IMMEDIATE`` on SQLite)."""
        with self._memory_lock or nullcontext(), self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn = conn.execution_options(cloaca_immediate=True)
            with conn.begin():
                yield conn

    @property
    def supports_skip_locked(self) -> bool:
        """True on PostgreSQL, where claims use ``FOR UPDATE SKIP LOCKED``."""
        return self.dialect == "postgresql"

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __repr__(self) -> str:
        tenant = f", schema={self.schema!r}" if self.schema else ""
        return f"Store({self.url.display!r}{tenant})"


def _sqlite_engine(url: DatabaseURL, pool_size: int) -> Engine:
    if url.is_memory:
        engine = create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    else:
        engine = create_engine(
            url.sqlalchemy_url,
            pool_size=pool_size,
            max_overflow=pool_size,
            connect_args={"check_same_thread": False, "timeout": url.busy_timeout_ms / 1000},
        )
    busy = int(url.busy_timeout_ms)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see "begin" below)
        cur = dbapi_conn.cursor()
        if not url.is_memory:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={busy}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("cloaca_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
