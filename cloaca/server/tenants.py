"""Tenants at run time: one :class:`~cloaca.runner.DefaultRunner` per tenant, and the
workflows its packages registered.

Isolation: on PostgreSQL a tenant's executions live in the schema named after it
(``DefaultRunner.with_schema``; ``public`` is the default schema); on SQLite in a database file
of its own beside the main one. Keys and packages are rows with a ``tenant_id`` in the server
tables (:mod:`cloaca.server.db`). A runner only claims executions of workflows registered on it,
so the server registers a tenant's stored packages right after creating its runner and
interrupted executions resume once their workflow is back.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from cloaca.errors import ApiError
from cloaca.runner import DefaultRunner
from cloaca.storage.models import pipeline_executions as pe
from cloaca.storage.url import SCHEMA_RE

if TYPE_CHECKING:
    from cloaca.registry.loader import LoadedPackage
    from cloaca.server.config import ServerConfig
    from cloaca.server.db import PackageRow, ServerDB
    from cloaca.workflow import Workflow

log = logging.getLogger("cloaca.server")
PUBLIC = "public"


@dataclass(frozen=True)
class Installed:
    """A package installed in a tenant: its row, the loaded package and its workflow — None
    while it cannot be built (``build_error`` says why; see :mod:`cloaca.server.builds`)."""

    row: PackageRow
    loaded: LoadedPackage
    workflow: Workflow | None
    build_error: str | None = None


class TenantRuntime:
    """One tenant's runner and workflows (the newest version of each package is active)."""

    def __init__(self, name: str, runner: DefaultRunner) -> None:
        self.name = name
        self.runner = runner
        self._installed: dict[str, list[Installed]] = {}  # package name -> oldest first
        self._lock = threading.Lock()

    def install(self, item: Installed) -> None:
        """Add a package version; the newest version of its name is active (and registered on
        the runner once it is built)."""
        with self._lock:
            versions = [i for i in self._installed.get(item.row.package_name, []) if
                        i.row.id != item.row.id]  # fmt: skip
            versions.append(item)
            versions.sort(key=lambda i: i.row.created_at)
            self._installed[item.row.package_name] = versions
            active = versions[-1]
        self._register(active)

    def uninstall(self, package_name: str, package_id: str) -> None:
        """Remove a package version; the previous version (if any) becomes active."""
        with self._lock:
            versions = [i for i in self._installed.get(package_name, []) if i.row.id != package_id]
            if versions:
                self._installed[package_name] = versions
            else:
                self._installed.pop(package_name, None)
        if versions:
            self._register(versions[-1])

    def set_build(
        self, package_name: str, package_id: str, workflow: Workflow | None, error: str | None
    ) -> None:
        """Record the outcome of (re)building a package version's workflow."""
        with self._lock:
            versions = self._installed.get(package_name, [])
            for i, item in enumerate(versions):
                if item.row.id == package_id:
                    versions[i] = Installed(item.row, item.loaded, workflow, error)
            active = versions[-1] if versions else None
        if active is not None and active.row.id == package_id:
            self._register(active)

    def _register(self, item: Installed) -> None:
        if item.workflow is not None:
            self.runner.register_workflow(item.workflow, name=item.row.package_name)

    def active_packages(self) -> dict[str, Installed]:
        """The active version of every package, by name."""
        with self._lock:
            return {name: versions[-1] for name, versions in self._installed.items()}

    def active(self, workflow_name: str) -> Installed | None:
        """The active version of the workflow named ``workflow_name``, or None."""
        with self._lock:
            versions = self._installed.get(workflow_name)
            return versions[-1] if versions else None

    def workflow_names(self) -> list[str]:
        """Names of the tenant's workflows."""
        with self._lock:
            return sorted(self._installed)

    def count_executions(self, workflow: str | None, status: str | None) -> int:
        """How many executions match the filters."""
        q = select(func.count()).select_from(pe)
        if workflow is not None:
            q = q.where(pe.c.workflow_name == workflow)
        if status is not None:
            q = q.where(pe.c.status == status)
        with self.runner.store.read() as conn:
            return int(conn.execute(q).scalar_one())

    def running_count(self, workflow: str) -> int:
        """Executions of ``workflow`` still Pending or Running."""
        return self.count_executions(workflow, "Running") + self.count_executions(
            workflow, "Pending"
        )


class TenantManager:
    """Creates tenants' runners on first use and tears them down."""

    def __init__(self, config: ServerConfig, db: ServerDB) -> None:
        self.config = config
        self.db = db
        self._runtimes: dict[str, TenantRuntime] = {}
        self._names = {PUBLIC} | {name for name, _ in db.list_tenants()}
        self._lock = threading.Lock()

    def exists(self, name: str) -> bool:
        """True for ``public`` and every created tenant."""
        return name in self._names

    def names(self) -> list[str]:
        """Every tenant, ``public`` first."""
        return [PUBLIC, *sorted(self._names - {PUBLIC})]

    def runtime(self, name: str) -> TenantRuntime:
        """The runtime of tenant ``name`` (its runner is started on first use)."""
        with self._lock:
            rt = self._runtimes.get(name)
            if rt is None:
                rt = self._runtimes[name] = TenantRuntime(name, self._runner(name))
            return rt

    def _runner(self, name: str) -> DefaultRunner:
        cfg = self.config
        if cfg.is_postgres:
            if name == PUBLIC:
                return DefaultRunner(cfg.url, cfg.runner)
            return DefaultRunner.with_schema(cfg.url, name, cfg.runner)
        url = cfg.url if name == PUBLIC else cfg.tenant_sqlite_url(name)
        if url.startswith("sqlite:///") and ":memory:" not in url:
            Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        return DefaultRunner(url, cfg.runner)

    def create(self, name: str, description: str | None) -> None:
        """Create tenant ``name`` (400 for a bad name, 409 when it exists)."""
        if not SCHEMA_RE.match(name) or name.lower().startswith("pg_"):
            raise ApiError(
                f"invalid tenant name {name!r}: use letters, digits and underscores, starting "
                "with a letter or underscore, at most 63 characters",
                status=400,
                code="invalid_request",
            )
        if name == PUBLIC or not self.db.add_tenant(name, description):
            raise ApiError(f"tenant {name!r} already exists", status=409, code="tenant_exists")
        with self._lock:
            self._names.add(name)

    def remove(self, name: str) -> tuple[int, bool]:
        """Delete tenant ``name``: stop its runner, drop its data, revoke its keys.

        Returns (keys revoked, whether a runner was stopped).
        """
        with self._lock:
            self._names.discard(name)
            rt = self._runtimes.pop(name, None)
        if rt is not None:
            rt.runner.shutdown(wait=False, timeout=5)
        revoked = self.db.remove_tenant(name)
        self._drop_data(name)
        return revoked, rt is not None

    def _drop_data(self, name: str) -> None:
        if self.config.is_postgres:
            from sqlalchemy import text

            with self.db.store.write() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
            return
        url = self.config.tenant_sqlite_url(name)
        if url.startswith("sqlite:///") and ":memory:" not in url:
            base = Path(url[len("sqlite:///") :])
            for suffix in ("", "-wal", "-shm"):
                Path(f"{base}{suffix}").unlink(missing_ok=True)

    def close(self, grace: float) -> None:
        """Stop every runner; executions still running after ``grace`` seconds are left
        ``Running`` and resumed by the next start."""
        with self._lock:
            runtimes = list(self._runtimes.values())
            self._runtimes.clear()
        for rt in runtimes:
            try:
                rt.runner.shutdown(wait=True, timeout=grace)
            except Exception:
                log.exception("stopping the runner of tenant %r failed", rt.name)
