"""Tenants at run time: one :class:`~cloaca.runner.DefaultRunner` per tenant, and the
workflows its packages registered.

Isolation: on PostgreSQL a tenant's executions live in a schema of its own
(``DefaultRunner.with_schema``; ``public`` is the default schema); on SQLite in a database file
of its own beside the main one — both named per generation (:mod:`cloaca.server.schemas`).
Keys and packages are rows with a ``tenant_id`` in the server tables (:mod:`cloaca.server.db`).
A runner only claims executions of workflows registered on it, so the server registers a
tenant's stored packages right after creating its runner and interrupted executions resume
once their workflow is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from cloaca.errors import ApiError
from cloaca.runner import DefaultRunner
from cloaca.server.schemas import claim_storage, release_storage
from cloaca.server.validate import tenant_name_problem
from cloaca.storage.models import pipeline_executions as pe

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


@dataclass
class _Generation:
    """One generation of a tenant: the storage it owns, its runtime (started on first use)
    and the requests using it right now (deletion waits for them)."""

    name: str
    storage: str | None
    runtime: TenantRuntime | None = None
    users: int = 0


class TenantManager:
    """Creates tenants' runners on first use and tears them down.

    Each tenant is a *generation*: created with storage of its own (see
    :mod:`cloaca.server.schemas`), used by requests through :meth:`lease`. Deleting a tenant
    removes it from the map at once (new requests get 404), waits for the requests still
    using it, stops its runner and only then drops its data; a tenant created again with the
    same name gets new storage, so it starts empty whatever the old one still had in flight.
    """

    def __init__(self, config: ServerConfig, db: ServerDB) -> None:
        self.config = config
        self.db = db
        self._tenants = {PUBLIC: _Generation(PUBLIC, None)}
        for name, storage in db.tenant_storage().items():
            self._tenants[name] = _Generation(name, storage)
        self._lock = threading.Condition()

    def exists(self, name: str) -> bool:
        """True for ``public`` and every created tenant."""
        return name in self._tenants

    def names(self) -> list[str]:
        """Every tenant, ``public`` first."""
        return [PUBLIC, *sorted(set(self._tenants) - {PUBLIC})]

    def runtime(self, name: str) -> TenantRuntime:
        """The runtime of tenant ``name`` (its runner is started on first use); 404
        ``tenant_not_found`` when there is no such tenant (any more)."""
        with self._lock:
            gen = self._tenants.get(name)
            if gen is None:
                raise _not_found(name)
            if gen.runtime is None:
                gen.runtime = TenantRuntime(name, self._runner(gen))
            return gen.runtime

    def generation(self, name: str) -> object | None:
        """An opaque token of the tenant's current generation (None: no such tenant)."""
        return self._tenants.get(name)

    @contextmanager
    def lease(self, name: str, generation: object | None = None) -> Iterator[None]:
        """Use tenant ``name`` (of ``generation``, when given) for the duration of the block:
        its deletion waits until the block is left. 404 ``tenant_not_found`` when it is gone."""
        with self._lock:
            gen = self._tenants.get(name)
            if gen is None or (generation is not None and gen is not generation):
                raise _not_found(name)
            gen.users += 1
        try:
            yield
        finally:
            with self._lock:
                gen.users -= 1
                self._lock.notify_all()

    def _runner(self, gen: _Generation) -> DefaultRunner:
        cfg = self.config
        if gen.name == PUBLIC:
            return DefaultRunner(cfg.url, cfg.runner)
        storage = gen.storage or gen.name
        if cfg.is_postgres:
            return DefaultRunner.with_schema(cfg.url, storage, cfg.runner)
        url = cfg.tenant_sqlite_url(storage)
        if url.startswith("sqlite:///") and ":memory:" not in url:
            Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        return DefaultRunner(url, cfg.runner)

    def create(self, name: str, description: str | None) -> None:
        """Create tenant ``name`` with fresh storage (400 for a bad or reserved name, 409 when
        it exists)."""
        problem = tenant_name_problem(name)
        if problem:
            raise ApiError(
                f"invalid tenant name {name!r}: {problem}", status=400, code="invalid_request"
            )
        storage = claim_storage(self.config, self.db, name)
        if not self.db.add_tenant(name, description, storage):
            release_storage(self.config, self.db, storage)
            raise ApiError(f"tenant {name!r} already exists", status=409, code="tenant_exists")
        with self._lock:
            self._tenants[name] = _Generation(name, storage)

    def remove(self, name: str, wait: float = 30.0) -> tuple[int, bool]:
        """Delete tenant ``name``: refuse new requests at once, wait (up to ``wait`` seconds)
        for the ones using it, stop its runner, then drop its data and revoke its keys.

        Returns (keys revoked, whether a runner was stopped).
        """
        with self._lock:
            gen = self._tenants.pop(name, None)
            if gen is None:
                raise _not_found(name)
            if not self._lock.wait_for(lambda: gen.users == 0, timeout=wait):
                log.warning("tenant %r: deleted with %d request(s) still running", name, gen.users)
        if gen.runtime is not None:
            try:
                gen.runtime.runner.shutdown(wait=False, timeout=5)
            except Exception:  # the data goes anyway; nothing may run on in its name
                log.exception("stopping the runner of deleted tenant %r failed", name)
        revoked = self.db.remove_tenant(name)
        release_storage(self.config, self.db, gen.storage or name)
        return revoked, gen.runtime is not None

    def close(self, grace: float) -> None:
        """Stop every runner together; executions still running after ``grace`` seconds are
        left ``Running`` and resumed by the next start."""
        with self._lock:
            runtimes = [g.runtime for g in self._tenants.values() if g.runtime is not None]
            for gen in self._tenants.values():
                gen.runtime = None
        deadline = time.monotonic() + grace

        def stop(rt: TenantRuntime) -> None:
            try:
                rt.runner.shutdown(wait=True, timeout=max(0.0, deadline - time.monotonic()))
            except Exception:
                log.exception("stopping the runner of tenant %r failed", rt.name)

        threads = [threading.Thread(target=stop, args=(rt,), daemon=True) for rt in runtimes]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()) + 10)


def _not_found(name: str) -> ApiError:
    return ApiError(f"no tenant {name!r}", status=404, code="tenant_not_found")
