"""Tenant provisioning on PostgreSQL: upstream's ``DatabaseAdmin``, ``TenantConfig`` and
``TenantCredentials``.

``DatabaseAdmin(admin_url).create_tenant(TenantConfig(schema_name, username))`` creates, in one
transaction, a login role and a schema it owns, and makes that schema the role's
``search_path``; the returned :class:`TenantCredentials` carry a connection string for the role,
so ``DefaultRunner(credentials.connection_string)`` keeps every table of that tenant in its
schema, and the role cannot use the other tenants' schemas. ``remove_tenant`` drops both.
Failures are :class:`~cloaca.errors.TenantAdminError` (a ``RuntimeError``, as upstream).
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from cloaca.errors import TenantAdminError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_ALPHABET = string.ascii_letters + string.digits
PASSWORD_LENGTH = 32


def generate_password(length: int = PASSWORD_LENGTH) -> str:
    """A random password of letters and digits (no characters a URL would need to escape)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


@dataclass(frozen=True, init=False)
class TenantConfig:
    """What ``create_tenant`` provisions: the schema, the role, and its password (empty or
    None: generate one)."""

    schema_name: str
    username: str
    password: str

    def __init__(self, schema_name: str, username: str, password: str | None = None) -> None:
        object.__setattr__(self, "schema_name", schema_name)
        object.__setattr__(self, "username", username)
        object.__setattr__(self, "password", password or "")

    def __repr__(self) -> str:
        return f"TenantConfig(schema_name={self.schema_name!r}, username={self.username!r})"


@dataclass(frozen=True)
class TenantCredentials:
    """What ``create_tenant`` returns; ``connection_string`` logs in as the tenant's role."""

    username: str
    password: str
    schema_name: str
    connection_string: str

    def __repr__(self) -> str:  # never show the password
        return f"TenantCredentials(username={self.username!r}, schema_name={self.schema_name!r})"


def _check_ident(value: Any, what: str, schema: str | None, user: str | None) -> str:
    if not isinstance(value, str) or not _IDENT.match(value):
        raise TenantAdminError(
            f"invalid {what} {value!r}: use 1-63 letters, digits and '_' "
            "(not starting with a digit)",
            schema=schema,
            username=user,
        )
    return value


class DatabaseAdmin:
    """Provision and remove tenants on the PostgreSQL database at ``database_url``, connecting
    with its (administrative) role, which needs ``CREATEROLE`` and ``CREATE`` on the database."""

    def __init__(self, database_url: str) -> None:
        parts = urlsplit(database_url) if isinstance(database_url, str) else None
        if parts is None or parts.scheme not in ("postgres", "postgresql"):
            raise TenantAdminError(
                "DatabaseAdmin needs a postgresql:// URL (tenants are PostgreSQL schemas; "
                "with SQLite use one database file per tenant)",
                url=str(database_url),
            )
        if not parts.path.strip("/"):
            raise TenantAdminError(
                "the URL names no database; use postgresql://user@host:port/dbname",
                url=database_url,
            )
        self._url = database_url
        self._parts = parts

    @property
    def display_url(self) -> str:
        """The admin URL without its password."""
        host = self._parts.hostname or ""
        port = f":{self._parts.port}" if self._parts.port else ""
        user = f"{self._parts.username}@" if self._parts.username else ""
        return f"postgresql://{user}{host}{port}{self._parts.path}"

    def _connect(self) -> Any:
        import psycopg  # imported on use: `import cloaca` stays light

        url = urlunsplit(self._parts._replace(scheme="postgresql"))
        try:
            return psycopg.connect(url, connect_timeout=10)
        except psycopg.Error as exc:
            raise TenantAdminError(
                f"cannot connect ({type(exc).__name__}: {str(exc).strip()})",
                url=self.display_url,
            ) from exc

    def tenant_url(self, username: str, password: str) -> str:
        """The connection string of a tenant role: this database, logged in as ``username``."""
        host = self._parts.hostname or "localhost"
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        port = f":{self._parts.port}" if self._parts.port else ""
        netloc = f"{quote(username, safe='')}:{quote(password, safe='')}@{host}{port}"
        return urlunsplit(("postgresql", netloc, self._parts.path, self._parts.query, ""))

    def create_tenant(self, config: TenantConfig) -> TenantCredentials:
        """Create the tenant's role and schema in one transaction; return its credentials.

        Raises
        ------
        TenantAdminError
            Invalid names, a schema or role that already exists, missing privileges, or no
            connection. Nothing is left half-created.
        """
        import psycopg
        from psycopg import sql

        schema = _check_ident(config.schema_name, "schema name", config.schema_name, None)
        user = _check_ident(config.username, "username", schema, config.username)
        password = config.password or generate_password()
        with self._connect() as conn:
            try:
                with conn.transaction():
                    if conn.execute(
                        "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)
                    ).fetchone():
                        raise TenantAdminError(
                            "schema already exists; pick another name or remove_tenant() first",
                            schema=schema,
                            username=user,
                        )
                    if conn.execute(
                        "SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)
                    ).fetchone():
                        raise TenantAdminError(
                            "role already exists; pick another username",
                            schema=schema,
                            username=user,
                        )
                    ident_user, ident_schema = sql.Identifier(user), sql.Identifier(schema)
                    conn.execute(
                        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                            ident_user, sql.Literal(password)
                        )
                    )
                    conn.execute(
                        sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                            ident_schema, ident_user
                        )
                    )
                    conn.execute(
                        sql.SQL("ALTER ROLE {} SET search_path TO {}").format(
                            ident_user, ident_schema
                        )
                    )
            except psycopg.Error as exc:
                raise TenantAdminError(
                    f"could not create the tenant ({type(exc).__name__}: {str(exc).strip()})",
                    schema=schema,
                    username=user,
                ) from exc
        return TenantCredentials(user, password, schema, self.tenant_url(user, password))

    def remove_tenant(self, schema_name: str, username: str) -> None:
        """Drop the tenant's schema (with every table in it) and its role.

        Raises
        ------
        TenantAdminError
            Invalid names, neither the schema nor the role exists, or the drop failed.
        """
        import psycopg
        from psycopg import sql

        schema = _check_ident(schema_name, "schema name", schema_name, None)
        user = _check_ident(username, "username", schema, username)
        with self._connect() as conn:
            try:
                with conn.transaction():
                    has_schema = conn.execute(
                        "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)
                    ).fetchone()
                    has_role = conn.execute(
                        "SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)
                    ).fetchone()
                    if not has_schema and not has_role:
                        raise TenantAdminError(
                            "no such tenant: neither the schema nor the role exists",
                            schema=schema,
                            username=user,
                        )
                    if has_schema:
                        conn.execute(
                            sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema))
                        )
                    if has_role:
                        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(user)))
                        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(user)))
            except psycopg.Error as exc:
                raise TenantAdminError(
                    f"could not remove the tenant ({type(exc).__name__}: {str(exc).strip()})",
                    schema=schema,
                    username=user,
                ) from exc

    def __repr__(self) -> str:
        return f"DatabaseAdmin({self.display_url!r})"


__all__ = ["DatabaseAdmin", "TenantConfig", "TenantCredentials", "generate_password"]
