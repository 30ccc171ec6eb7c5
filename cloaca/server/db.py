"""The server's own tables — tenants, API keys, uploaded packages, paused workflows — and
their queries.

They live in the main database (beside the ``public`` tenant's runner tables), one row per
object with a ``tenant_id`` column, so tenants never see each other's keys or packages. Each
tenant's executions live in that tenant's runner database (see :mod:`cloaca.server.tenants`).
Timestamps are UTC epoch seconds, as in the runner's tables. The schema is versioned by the
Alembic migrations in :mod:`cloaca.server.migrations`: a change here needs a new revision there.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
    text,
    update,
)

from cloaca.storage import Store

metadata = MetaData()

tenants = Table(
    "cloacina_tenants",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("description", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    # the schema (PostgreSQL) or file stem (SQLite) this generation of the tenant owns;
    # NULL for tenants created before s0003 (their storage is named after them)
    Column("storage", String(63), nullable=True),
)

api_keys = Table(
    "cloacina_api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),  # sha256 hex, never the key
    Column("role", String(8), nullable=False),  # read | write | admin
    Column("tenant_id", String(63), nullable=True),  # None: a global key
    Column("is_admin", Boolean, nullable=False, default=False),  # god mode (bootstrap only)
    Column("revoked", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
)

packages = Table(
    "cloacina_packages",
    metadata,
    Column("tenant_id", String(63), nullable=False),
    Column("id", String(36), nullable=False),  # derived from the archive's sha256
    Column("package_name", String(255), nullable=False),
    Column("version", String(64), nullable=False),
    Column("description", Text, nullable=True),
    Column("sha256", String(64), nullable=False),
    Column("fingerprint", String(80), nullable=False),
    Column("manifest", Text, nullable=False),  # the verified manifest, JSON
    Column("created_at", Float, nullable=False),
    PrimaryKeyConstraint("tenant_id", "id", name="pk_cloacina_packages"),
    UniqueConstraint("tenant_id", "package_name", "version", name="uq_cloacina_packages_nv"),
)

workflow_pauses = Table(
    "cloacina_workflow_pauses",
    metadata,
    Column("tenant_id", String(63), nullable=False),
    Column("workflow_name", String(255), nullable=False),
    Column("paused_at", Float, nullable=False),
    PrimaryKeyConstraint("tenant_id", "workflow_name", name="pk_cloacina_workflow_pauses"),
)


@dataclass(frozen=True)
class KeyRow:
    """A stored API key (without its hash)."""

    id: str
    name: str
    role: str
    tenant_id: str | None
    is_admin: bool
    revoked: bool
    created_at: float


@dataclass(frozen=True)
class PackageRow:
    """A stored package of one tenant; ``manifest`` is the verified manifest as a dict."""

    tenant_id: str
    id: str
    package_name: str
    version: str
    description: str | None
    sha256: str
    fingerprint: str
    manifest: dict[str, Any]
    created_at: float


def _key(row: Any) -> KeyRow:
    return KeyRow(
        row.id, row.name, row.role, row.tenant_id, bool(row.is_admin), bool(row.revoked),
        row.created_at,
    )  # fmt: skip


def _package(row: Any) -> PackageRow:
    return PackageRow(
        row.tenant_id, row.id, row.package_name, row.version, row.description, row.sha256,
        row.fingerprint, json.loads(row.manifest), row.created_at,
    )  # fmt: skip


class ServerDB:
    """Queries on the server tables of the database at ``url``, migrated to the newest
    revision on open (:mod:`cloaca.server.migrate`)."""

    def __init__(self, url: str) -> None:
        from cloaca.server.migrate import upgrade

        self.store = Store(url, migrate=False, pool_size=5)
        upgrade(self.store)

    def ping(self) -> None:
        """Raise when the database does not answer."""
        with self.store.read() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        """Release every connection."""
        self.store.dispose()

    # ------------------------------------------------------------------ tenants
    def list_tenants(self) -> list[tuple[str, str | None]]:
        """Every created tenant as (name, description), by name (``public`` is implicit)."""
        with self.store.read() as conn:
            rows = conn.execute(select(tenants).order_by(tenants.c.name)).all()
        return [(r.name, r.description) for r in rows]

    def tenant_storage(self) -> dict[str, str | None]:
        """Every created tenant's storage name (None: named after the tenant), by name."""
        with self.store.read() as conn:
            rows = conn.execute(select(tenants.c.name, tenants.c.storage)).all()
        return {r.name: r.storage for r in rows}

    def add_tenant(self, name: str, description: str | None, storage: str | None = None) -> bool:
        """Create tenant ``name`` owning ``storage``; False when a tenant of that name (in any
        letter case) exists."""
        taken = select(tenants.c.name).where(func.lower(tenants.c.name) == name.lower())
        row = {"name": name, "description": description, "created_at": _now(), "storage": storage}
        with self.store.write() as conn:
            if conn.execute(taken).first():
                return False
            conn.execute(insert(tenants), [row])
        return True

    def remove_tenant(self, name: str) -> int:
        """Delete tenant ``name`` with its packages; revoke its keys; return keys revoked."""
        with self.store.write() as conn:
            conn.execute(delete(tenants).where(tenants.c.name == name))
            conn.execute(delete(packages).where(packages.c.tenant_id == name))
            conn.execute(delete(workflow_pauses).where(workflow_pauses.c.tenant_id == name))
            res = conn.execute(
                update(api_keys)
                .where(api_keys.c.tenant_id == name, api_keys.c.revoked.is_(False))
                .values(revoked=True)
            )
        return int(res.rowcount or 0)

    # ------------------------------------------------------------------ keys
    def add_key(self, row: dict[str, Any]) -> KeyRow:
        """Insert a key row (``key_hash`` included) and return it."""
        full = {"revoked": False, "is_admin": False, "created_at": _now(), **row}
        with self.store.write() as conn:
            conn.execute(insert(api_keys), [full])
        return KeyRow(
            full["id"], full["name"], full["role"], full["tenant_id"], bool(full["is_admin"]),
            False, full["created_at"],
        )  # fmt: skip

    def find_key(self, key_hash: str) -> KeyRow | None:
        """The active key with this hash, or None."""
        q = select(api_keys).where(api_keys.c.key_hash == key_hash, api_keys.c.revoked.is_(False))
        with self.store.read() as conn:
            row = conn.execute(q).first()
        return _key(row) if row else None

    def list_keys(self, tenant_id: str | None = None, *, all_tenants: bool = False) -> list[KeyRow]:
        """Keys of ``tenant_id`` (None: the ``public`` tenant's global keys), never the
        server-wide god-mode key; every key with ``all_tenants``."""
        q = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        if not all_tenants:
            q = q.where(
                api_keys.c.tenant_id.is_(None)
                if tenant_id is None
                else api_keys.c.tenant_id == tenant_id,
                api_keys.c.is_admin.is_(False),
            )
        with self.store.read() as conn:
            return [_key(r) for r in conn.execute(q)]

    def get_key(self, key_id: str) -> KeyRow | None:
        """The key with this id (revoked or not), or None."""
        with self.store.read() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        return _key(row) if row else None

    def revoke_key(self, key_id: str) -> None:
        """Mark the key revoked (idempotent)."""
        with self.store.write() as conn:
            conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked=True))

    def has_active_admin_key(self) -> bool:
        """True when some unrevoked god-mode key exists."""
        q = select(api_keys.c.id).where(
            api_keys.c.is_admin.is_(True), api_keys.c.revoked.is_(False)
        )
        with self.store.read() as conn:
            return conn.execute(q.limit(1)).first() is not None

    # ------------------------------------------------------------------ packages
    def add_package(self, row: dict[str, Any]) -> None:
        """Insert a package row (``manifest`` as a dict)."""
        full = {**row, "manifest": json.dumps(row["manifest"]), "created_at": _now()}
        with self.store.write() as conn:
            conn.execute(insert(packages), [full])

    def list_packages(self, tenant_id: str | None = None) -> list[PackageRow]:
        """Packages of one tenant (or all), oldest first."""
        q = select(packages).order_by(packages.c.created_at, packages.c.id)
        if tenant_id is not None:
            q = q.where(packages.c.tenant_id == tenant_id)
        with self.store.read() as conn:
            return [_package(r) for r in conn.execute(q)]

    def find_package(
        self, tenant_id: str, *, package_id: str | None = None, name: str | None = None,
        version: str | None = None,
    ) -> PackageRow | None:  # fmt: skip
        """The package with this id, or this name and version, in ``tenant_id``."""
        q = select(packages).where(packages.c.tenant_id == tenant_id)
        if package_id is not None:
            q = q.where(packages.c.id == package_id)
        if name is not None:
            q = q.where(packages.c.package_name == name)
        if version is not None:
            q = q.where(packages.c.version == version)
        with self.store.read() as conn:
            row = conn.execute(q.order_by(packages.c.created_at.desc()).limit(1)).first()
        return _package(row) if row else None

    def remove_package(self, tenant_id: str, package_id: str) -> None:
        """Delete one package row."""
        with self.store.write() as conn:
            conn.execute(
                delete(packages).where(
                    packages.c.tenant_id == tenant_id, packages.c.id == package_id
                )
            )

    def sha256_in_use(self, sha256: str) -> bool:
        """True when some tenant still has the archive with this digest."""
        with self.store.read() as conn:
            q = select(packages.c.id).where(packages.c.sha256 == sha256).limit(1)
            return conn.execute(q).first() is not None

    # ------------------------------------------------------------------ pauses
    def set_paused(self, tenant_id: str, workflow_name: str, paused: bool) -> None:
        """Pause or resume the workflow ``workflow_name`` of ``tenant_id`` (idempotent)."""
        match = (
            workflow_pauses.c.tenant_id == tenant_id,
            workflow_pauses.c.workflow_name == workflow_name,
        )
        with self.store.write() as conn:
            exists = conn.execute(select(workflow_pauses.c.paused_at).where(*match)).first()
            if paused and exists is None:
                conn.execute(
                    insert(workflow_pauses),
                    [{"tenant_id": tenant_id, "workflow_name": workflow_name, "paused_at": _now()}],
                )
            elif not paused and exists is not None:
                conn.execute(delete(workflow_pauses).where(*match))

    def is_paused(self, tenant_id: str, workflow_name: str) -> bool:
        """True while the workflow ``workflow_name`` of ``tenant_id`` is paused."""
        q = select(workflow_pauses.c.paused_at).where(
            workflow_pauses.c.tenant_id == tenant_id,
            workflow_pauses.c.workflow_name == workflow_name,
        )
        with self.store.read() as conn:
            return conn.execute(q).first() is not None

    def paused_workflows(self, tenant_id: str) -> set[str]:
        """Names of the paused workflows of ``tenant_id``."""
        q = select(workflow_pauses.c.workflow_name).where(workflow_pauses.c.tenant_id == tenant_id)
        with self.store.read() as conn:
            return {r.workflow_name for r in conn.execute(q)}


def _now() -> float:
    return time.time()
