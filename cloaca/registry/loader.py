"""Loading ``.cloaca`` packages: :class:`PackageLoaderFactory` and the loaded-package types.

``PackageLoaderFactory(staging_dir).load(data)`` verifies an archive (gzip tar, safe members,
manifest, fingerprint, target), stages it under ``staging_dir/<fingerprint>/`` and returns a
:class:`PythonPackage` or a :class:`RustPackage`. Nothing here imports package code: tasks run in
worker processes (:mod:`cloaca.registry.workers`) once :func:`register_package_tasks` put them in
a :class:`~cloaca.task_registry.TaskRegistry`.

Staging layout::

    staging_dir/
      <fingerprint hex>/        the extracted package (manifest.json, src/, vendor/ or lib/)
      .index/<archive sha256>.json   the verified manifest of each archive seen, for fast reuse

An archive is extracted into ``staging_dir/.incoming-*/`` and renamed into place only once fully
verified, so a rejected archive leaves nothing behind. The same package loaded twice reuses its
staged copy; the same archive bytes loaded twice are not even unpacked again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from cloaca.errors import PackageError
from cloaca.packaging.manifest import Manifest, parse_manifest
from cloaca.registry.extract import ArchiveLimits, ExtractedArchive, extract_archive
from cloaca.registry.interpreters import Interpreter, choose_interpreter, host_interpreter
from cloaca.registry.tasks import register_package_tasks
from cloaca.registry.verify import (
    MANIFEST,
    check_fingerprint,
    check_gzip,
    check_host,
    check_layout,
    check_wheels,
    host_target,
    read_manifest,
)

_INDEX = ".index"
_KEY = re.compile(r"[0-9a-f]{64}(-[0-9a-f]{16})?")  # what staging_key() returns
log = logging.getLogger("cloaca.registry.loader")


@dataclass(frozen=True)
class _Loaded:
    manifest: Manifest
    root: Path
    archive_sha256: str

    @property
    def name(self) -> str:
        """The package name (also the namespace of its tasks in a registry)."""
        return self.manifest.package.name

    @property
    def version(self) -> str:
        """The package version."""
        return self.manifest.package.version

    @property
    def fingerprint(self) -> str:
        """``sha256:<hex>`` of the package content (the staging key)."""
        return self.manifest.package.fingerprint

    @property
    def task_ids(self) -> list[str]:
        """The ids of the package's tasks, in manifest order."""
        return [t.id for t in self.manifest.tasks]


@dataclass(frozen=True)
class PythonPackage(_Loaded):
    """A staged Python package: ``source_dir`` (``src/``) and ``vendor_dir`` go on ``sys.path``
    of its workers, which run on ``interpreter`` (one its vendored set runs on; None: the
    host's) and import ``entry_module``."""

    entry_module: str
    source_dir: Path
    vendor_dir: Path
    interpreter: Interpreter | None = None


@dataclass(frozen=True)
class RustPackage(_Loaded):
    """A staged Rust package: its workers load ``library_path`` with ctypes."""

    library_path: Path


LoadedPackage = PythonPackage | RustPackage


class PackageLoaderFactory:
    """Verify, stage and describe ``.cloaca`` archives.

    Parameters
    ----------
    staging_dir:
        Where packages are unpacked (created if needed). Packages are keyed by fingerprint, so
        several factories or processes may share one staging dir.
    limits:
        Member count and size limits against decompression bombs (:class:`ArchiveLimits`).
    interpreters:
        The Pythons that may run the packages' workers, the preferred first (default: only
        this process's). A Python package whose vendored set runs on none is refused.
    """

    def __init__(
        self,
        staging_dir: str | Path,
        *,
        limits: ArchiveLimits | None = None,
        interpreters: list[Interpreter] | None = None,
    ) -> None:
        self.staging_dir = Path(staging_dir).resolve()
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        self.limits = limits or ArchiveLimits()
        self.interpreters = list(interpreters or [host_interpreter()])
        self._loaded: dict[str, LoadedPackage] = {}

    def load_path(self, path: str | Path) -> LoadedPackage:
        """Read the archive at ``path`` and :meth:`load` it (errors name the file)."""
        return self.load(Path(path).read_bytes(), source=str(path))

    def load(self, data: bytes, *, source: str | None = None) -> LoadedPackage:
        """Verify and stage the archive ``data``; return the loaded package.

        Parameters
        ----------
        data:
            The ``.cloaca`` archive (a gzip-compressed tar, see the package format).
        source:
            Where the bytes came from (a file name, an upload id); used in error messages.

        Returns
        -------
        PythonPackage or RustPackage
            Paths point into the staged copy under :attr:`staging_dir`.

        Raises
        ------
        PackageError
            Not a gzip tar, a required member missing, a Python version this host lacks.
        UnsafeArchiveError
            A member escapes the archive, is a device or FIFO, or a size/count limit is hit.
        ManifestError
            The manifest is invalid, or its fingerprint does not match the content.
        IncompatibleTargetError
            The package was built for another platform.
        IncompatiblePythonError
            Its vendored set runs on none of :attr:`interpreters` (or ``requires-python``
            excludes them all).
        """
        label = source or "package archive"
        check_gzip(data, label)
        digest = hashlib.sha256(data).hexdigest()
        known = self._loaded.get(digest) or self._from_index(digest, label)
        if known is not None:
            self._loaded[digest] = known
            return known
        incoming = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self.staging_dir))
        try:
            manifest, found, interpreter = self._verify_into(data, incoming / "package", label)
            final = self.staging_dir / staging_key(manifest, found)
            try:
                os.rename(found.root, final)
            except OSError:
                if not _is_staged(final):
                    raise
                # already staged (loaded before, or by a concurrent loader): reuse that copy
            self._write_index(digest, final.name, manifest)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
        loaded = describe(manifest, final, digest, interpreter)
        self._loaded[digest] = loaded
        return loaded

    def discard(self, loaded: LoadedPackage) -> None:
        """Forget a staged package and delete its staged copy (a rejected upload); the caller
        makes sure nothing else uses it."""
        self._loaded.pop(loaded.archive_sha256, None)
        self._index_path(loaded.archive_sha256).unlink(missing_ok=True)
        root = loaded.root
        if root.parent == self.staging_dir and _is_staged(root):
            shutil.rmtree(root, ignore_errors=True)

    def _verify_into(
        self, data: bytes, dest: Path, label: str
    ) -> tuple[Manifest, ExtractedArchive, Interpreter | None]:
        seen: list[Manifest] = []

        def on_member(name: str, path: Path) -> None:
            if name == MANIFEST:  # refuse a bad manifest or a wrong target before unpacking more
                seen.append(read_manifest(path, label, self.limits.max_manifest_bytes))

        found = extract_archive(data, dest, limits=self.limits, label=label, on_member=on_member)
        if not seen:
            raise PackageError(
                "required member 'manifest.json' is missing; is this a .cloaca package?",
                path=label,
            )
        check_layout(seen[0], found, label)
        check_fingerprint(seen[0], found, label)
        return seen[0], found, self._interpreter_for(seen[0], found.root, label)

    def _interpreter_for(self, manifest: Manifest, root: Path, label: str) -> Interpreter | None:
        if manifest.language != "python":
            return None
        wheels = check_wheels(manifest, root / "vendor", label)
        return choose_interpreter(manifest, wheels, self.interpreters, label, host_target())

    # ------------------------------------------------------------------ index for fast reuse
    def _index_path(self, digest: str) -> Path:
        return self.staging_dir / _INDEX / f"{digest}.json"

    def _write_index(self, digest: str, key: str, manifest: Manifest) -> None:
        # best effort: without the entry a later load only verifies the archive again
        path = self._index_path(digest)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            path.parent.mkdir(exist_ok=True)
            tmp.write_text(json.dumps({"key": key, "manifest": manifest.to_json()}))
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("could not record %s in the staging index: %s", key, exc)
            tmp.unlink(missing_ok=True)

    def _from_index(self, digest: str, label: str) -> LoadedPackage | None:
        try:
            entry = json.loads(self._index_path(digest).read_text())
            manifest = parse_manifest(entry["manifest"], label)
            key = entry["key"]
        except (OSError, ValueError, RecursionError, KeyError, TypeError, PackageError):
            return None
        # the key must be the one staging_key() gives this manifest: a damaged or planted entry
        # cannot point the package at another directory ("..", ".index", an absolute path ...)
        fingerprint = manifest.package.fingerprint.removeprefix("sha256:")
        if not isinstance(key, str) or not _KEY.fullmatch(key) or not key.startswith(fingerprint):
            return None
        root = self.staging_dir / key
        if not _is_staged(root):
            return None
        check_host(manifest, label)
        return describe(manifest, root, digest, self._interpreter_for(manifest, root, label))


def _is_staged(root: Path) -> bool:
    # a real directory of the staging dir holding a manifest (not a link to somewhere else)
    return root.is_dir() and not root.is_symlink() and (root / MANIFEST).is_file()


def staging_key(manifest: Manifest, found: ExtractedArchive) -> str:
    """The staged directory name: the fingerprint's hex digest.

    Links do not enter the fingerprint (the spec hashes regular files only), so when an archive
    holds links a digest of them is appended, keeping different trees apart.
    """
    key = manifest.package.fingerprint.removeprefix("sha256:")
    if found.links:
        lines = "".join(f"{p}\0{kind}\0{t}\n" for p, kind, t in sorted(found.links))
        key += "-" + hashlib.sha256(lines.encode()).hexdigest()[:16]
    return key


def describe(
    manifest: Manifest, root: Path, digest: str, interpreter: Interpreter | None = None
) -> LoadedPackage:
    """Build the :data:`LoadedPackage` for a package staged at ``root`` (``interpreter``: the
    Python its workers run on, None for the host's)."""
    if manifest.language == "rust":
        assert manifest.rust is not None
        return RustPackage(manifest, root, digest, library_path=root / manifest.rust.library_path)
    assert manifest.python is not None
    return PythonPackage(
        manifest,
        root,
        digest,
        entry_module=manifest.python.entry_module,
        source_dir=root / "src",
        vendor_dir=root / "vendor",
        interpreter=interpreter,
    )


__all__ = [
    "ArchiveLimits",
    "LoadedPackage",
    "PackageLoaderFactory",
    "PythonPackage",
    "RustPackage",
    "register_package_tasks",
]
