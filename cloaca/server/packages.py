"""The package store and package (un)installation.

Archives are stored content-addressed under ``<home>/packages/<sha256>.cloaca`` (written to a
temporary file, then renamed, so a crash never leaves half an archive). An upload is verified
by the loader (:class:`~cloaca.registry.PackageLoaderFactory`: gzip tar, safe members,
manifest, fingerprint, target) and its workflow built *before* anything is stored; package
code is never imported here (its tasks run in worker processes). The workflow a package
registers is named after ``package.name``; uploading the same package again is a no-op that
answers the same id. Workflows are built by :mod:`cloaca.server.builds` (cross-package
dependencies included) and rebuilt when a package they may depend on comes or goes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from cloaca.errors import ApiError, CloacaError
from cloaca.execution.executors.archives import register_archive
from cloaca.registry.extract import ArchiveLimits
from cloaca.registry.interpreters import Interpreter
from cloaca.registry.loader import PackageLoaderFactory
from cloaca.registry.workers import WorkerPools
from cloaca.server.builds import build_workflow, check_alone, foreign_dependencies
from cloaca.server.tenants import Installed, TenantRuntime
from cloaca.server.validate import check_text

if TYPE_CHECKING:
    from cloaca.registry.loader import LoadedPackage
    from cloaca.server.db import PackageRow, ServerDB

log = logging.getLogger("cloaca.server")


def package_id(sha256: str) -> str:
    """The API id of an archive: its SHA-256's first 128 bits, written as a UUID."""
    return str(uuid.UUID(hex=sha256[:32]))


def check_columns(loaded: LoadedPackage) -> None:
    """400 ``upload_failed`` naming the manifest field that no package column can hold."""
    pkg = loaded.manifest.package
    try:
        check_text(pkg.name, "manifest field package.name", 255)
        check_text(pkg.version, "manifest field package.version", 64)
        check_text(pkg.description, "manifest field package.description", 65536)
    except ApiError as exc:
        raise ApiError(exc.message, status=400, code="upload_failed") from None


class PackageStore:
    """Archives on disk, keyed by SHA-256."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        """Where the archive with this digest lives."""
        return self.root / f"{sha256}.cloaca"

    def save(self, data: bytes, sha256: str) -> None:
        """Store ``data`` (temp file + rename; a no-op when present)."""
        final = self.path(sha256)
        if final.exists():
            return
        fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read(self, sha256: str) -> bytes:
        """The archive's bytes."""
        return self.path(sha256).read_bytes()

    def remove(self, sha256: str) -> None:
        """Delete the archive (no error when absent)."""
        self.path(sha256).unlink(missing_ok=True)


class Packages:
    """Installs, reloads and removes packages of tenants."""

    def __init__(
        self,
        db: ServerDB,
        store: PackageStore,
        staging: Path,
        max_manifest_bytes: int,
        *,
        interpreters: list[Interpreter] | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.loader = PackageLoaderFactory(
            staging,
            limits=ArchiveLimits(max_manifest_bytes=max_manifest_bytes),
            interpreters=interpreters,
        )
        self.pools = WorkerPools()
        self._lock = threading.Lock()

    def rebuild(self, runtime: TenantRuntime, changed: str | None = None) -> None:
        """Build again the workflows that ``changed`` (a package name; None: every package)
        may affect: its own, and every package with cross-package dependencies."""
        active = runtime.active_packages()
        loaded = {name: item.loaded for name, item in active.items()}
        for name, item in active.items():
            if changed is None or name == changed or foreign_dependencies(item.loaded):
                workflow, error = build_workflow(name, loaded, self.pools, runtime.name)
                if error is not None:
                    log.info("tenant %r: workflow %r not built: %s", runtime.name, name, error)
                runtime.set_build(name, item.row.id, workflow, error)

    def upload(self, runtime: TenantRuntime, data: bytes) -> tuple[PackageRow, bool]:
        """Verify, store and install ``data`` in ``runtime``'s tenant.

        Returns the package row and whether it is new. Raises :class:`ApiError` 400
        ``upload_failed`` for an invalid package, 409 ``package_exists`` when another archive
        with the same name and version is installed.
        """
        sha256 = hashlib.sha256(data).hexdigest()
        try:
            loaded = self.loader.load(data, source=f"upload {sha256[:12]}")
        except CloacaError as exc:
            raise ApiError(str(exc), status=400, code="upload_failed") from exc
        try:
            check_columns(loaded)
            check_alone(loaded, self.pools)
        except CloacaError as exc:
            self._discard(loaded)
            raise ApiError(str(exc), status=400, code="upload_failed") from exc
        except ApiError:
            self._discard(loaded)
            raise
        tenant = runtime.name
        with self._lock:
            same = self.db.find_package(tenant, name=loaded.name, version=loaded.version)
            if same is not None:
                if same.fingerprint == loaded.fingerprint:
                    return same, False
                raise ApiError(
                    f"package {loaded.name} {loaded.version} is already installed with other "
                    "content; bump the version, or delete it first",
                    status=409,
                    code="package_exists",
                )
            try:
                self.store.save(data, sha256)
                register_archive(loaded, self.store.path(sha256))  # for executor="dask"
                pkg = loaded.manifest.package
                self.db.add_package(
                    {
                        "tenant_id": tenant,
                        "id": package_id(sha256),
                        "package_name": pkg.name,
                        "version": pkg.version,
                        "description": pkg.description,
                        "sha256": sha256,
                        "fingerprint": pkg.fingerprint,
                        "manifest": loaded.manifest.model_dump(mode="json"),
                    }
                )
            except BaseException:  # nothing half-stored: no archive without its row
                if not self.db.sha256_in_use(sha256):
                    self.store.remove(sha256)
                raise
            row = self.db.find_package(tenant, package_id=package_id(sha256))
            assert row is not None
            runtime.install(Installed(row, loaded, None, "not built yet"))
            self.rebuild(runtime, loaded.name)
        return row, True

    def _discard(self, loaded: LoadedPackage) -> None:
        """Delete the staged copy of a rejected upload unless an installed package uses it."""
        with self._lock:
            if not any(r.fingerprint == loaded.fingerprint for r in self.db.list_packages()):
                self.loader.discard(loaded)

    def reload(self, runtime: TenantRuntime) -> int:
        """Install every stored package of ``runtime``'s tenant again (server start)."""
        count = 0
        for row in self.db.list_packages(runtime.name):
            try:
                loaded = self.loader.load(self.store.read(row.sha256), source=row.package_name)
                register_archive(loaded, self.store.path(row.sha256))  # for executor="dask"
                runtime.install(Installed(row, loaded, None, "not built yet"))
                count += 1
            except Exception:
                log.exception(
                    "cannot reload package %s %s of tenant %r",
                    row.package_name,
                    row.version,
                    runtime.name,
                )
        with self._lock:
            self.rebuild(runtime)  # every package is in: cross-package references resolve
        return count

    def delete(self, runtime: TenantRuntime, row: PackageRow, *, force: bool) -> None:
        """Remove a package version (409 ``workflow_running`` while executions of its
        workflow are running, unless ``force``)."""
        active = runtime.active(row.package_name)
        if not force and active is not None and active.row.id == row.id:
            running = runtime.running_count(row.package_name)
            if running:
                raise ApiError(
                    f"workflow {row.package_name!r} has {running} running execution(s); "
                    "wait for them or delete with force=true",
                    status=409,
                    code="workflow_running",
                )
        with self._lock:
            self.db.remove_package(runtime.name, row.id)
            runtime.uninstall(row.package_name, row.id)
            self.rebuild(runtime, row.package_name)
            if not self.db.sha256_in_use(row.sha256):
                self.store.remove(row.sha256)

    def drop_orphans(self) -> None:
        """Delete the stored archives no package row uses any more (tenant removal)."""
        with self._lock:
            used = {row.sha256 for row in self.db.list_packages()}
            for path in self.store.root.glob("*.cloaca"):
                if path.stem not in used:
                    path.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop every worker process."""
        self.pools.close()
