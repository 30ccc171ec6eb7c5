"""Database URL handling: the URL forms users write, turned into SQLAlchemy URLs.

Accepted forms
--------------
- ``sqlite:///abs/path/file.db`` and ``sqlite:////abs/path/file.db`` — an absolute path.
- ``sqlite://relative/file.db`` — a path relative to the working directory (Cloacina's form).
- ``sqlite:///:memory:`` / ``sqlite://:memory:`` / bare ``:memory:`` (upstream's cron
  tutorial) — a private in-memory database.
- a bare filesystem path (``runs.db``) — a SQLite file.
- ``postgresql://...``, ``postgres://...``, ``postgresql+psycopg://...`` — PostgreSQL through
  psycopg 3.

Query parameters Cloacina users append to SQLite URLs (``mode=rwc``, ``_journal_mode=WAL``,
``_busy_timeout=5000`` ...) are accepted; the busy timeout is honoured, the rest are implied
(the file is created when missing and always runs in WAL mode).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import parse_qs

from cloaca.errors import StorageError

_PG_PREFIXES = ("postgresql+psycopg://", "postgresql://", "postgres://")
SCHEMA_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")  # use with fullmatch


@dataclass(frozen=True)
class DatabaseURL:
    """A parsed database location.

    ``dialect`` is ``"sqlite"`` or ``"postgresql"``; ``sqlalchemy_url`` is what
    :func:`sqlalchemy.create_engine` receives; ``path`` is the SQLite file (None in memory);
    ``busy_timeout_ms`` applies to SQLite only.
    """

    original: str
    dialect: str
    sqlalchemy_url: str
    path: str | None = None
    busy_timeout_ms: int = 5000

    @property
    def is_memory(self) -> bool:
        """True for a private in-memory SQLite database."""
        return self.dialect == "sqlite" and self.path is None

    @property
    def display(self) -> str:
        """The URL without any password, for messages."""
        return re.sub(r"://([^:/@]+):[^@/]*@", r"://\1:***@", self.original)


def parse_database_url(url: str) -> DatabaseURL:
    """Parse any accepted URL form (see the module docstring).

    Raises
    ------
    StorageError
        For an unsupported scheme, naming the accepted ones.
    """
    if not isinstance(url, str) or not url:
        raise StorageError("database URL must be a non-empty string", url=str(url))
    for prefix in _PG_PREFIXES:
        if url.startswith(prefix):
            return DatabaseURL(url, "postgresql", "postgresql+psycopg://" + url[len(prefix) :])
    if url.startswith("sqlite:"):
        rest = url[len("sqlite:") :]
        rest = rest[2:] if rest.startswith("//") else rest
        rest, _, query = rest.partition("?")
        busy = _busy_timeout(query)
        if rest in ("", ":memory:", "/:memory:"):
            return DatabaseURL(url, "sqlite", "sqlite://", None, busy)
        if rest.startswith("//"):  # SQLAlchemy's four-slash absolute form
            rest = rest[1:]
        return _sqlite_file(url, rest, busy)
    if url == ":memory:":
        return DatabaseURL(url, "sqlite", "sqlite://", None, 5000)
    if "://" in url:
        raise StorageError(
            "unsupported database URL scheme; use sqlite:///path/file.db, sqlite:///:memory: "
            "or postgresql://user@host:port/dbname",
            url=url,
        )
    return _sqlite_file(url, url, 5000)


def _busy_timeout(query: str) -> int:
    params = parse_qs(query)
    for key in ("_busy_timeout", "busy_timeout"):
        if key in params:
            try:
                return int(params[key][0])
            except ValueError:
                pass
    return 5000


def _sqlite_file(original: str, path: str, busy: int) -> DatabaseURL:
    full = os.path.abspath(os.path.expanduser(path))
    return DatabaseURL(original, "sqlite", f"sqlite:///{full}", full, busy)


def check_schema_name(schema: str) -> str:
    """Return ``schema`` if it is a safe PostgreSQL identifier, else raise ValueError."""
    if not isinstance(schema, str) or not SCHEMA_RE.fullmatch(schema):
        raise ValueError(
            f"invalid schema name {schema!r}: use letters, digits and underscores "
            "(not starting with a digit), at most 63 characters"
        )
    return schema
