"""Verification of an extracted ``.cloaca`` archive against the package format (manifest v2).

Owns the checks that need the manifest: the manifest itself (through the one model,
:func:`cloaca.packaging.manifest.parse_manifest`), the target against this host, the vendored
wheels against the manifest and the target, the required members per language, the entry module
and library path, and the fingerprint recomputed from the members' content. Safety of the
members themselves is :mod:`cloaca.registry.extract`'s job.
"""

from __future__ import annotations

import hashlib
import platform
import posixpath
import sys
from collections.abc import Mapping
from pathlib import Path

from cloaca.errors import BuildError, IncompatibleTargetError, ManifestError, PackageError
from cloaca.packaging.manifest import Manifest, VendoredWheel, parse_manifest
from cloaca.packaging.wheels import read_wheels, target_mismatches
from cloaca.registry.extract import ExtractedArchive

GZIP_MAGIC = b"\x1f\x8b"
MANIFEST = "manifest.json"


def check_gzip(data: bytes, label: str) -> None:
    """Refuse ``data`` unless it starts like a gzip stream."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise PackageError(f"expected the archive as bytes, got {type(data).__name__}", path=label)
    if bytes(data[:2]) != GZIP_MAGIC:
        raise PackageError(
            "not a gzip-compressed tar archive (bad magic bytes). A .cloaca package is a "
            ".tar.gz written by `cloaca build`.",
            path=label,
        )


def host_target() -> str:
    """This machine's target name (``linux-x86_64`` ...), or ``<platform>-<machine>`` if unknown."""
    from cloaca.packaging.targets import host_target as known_host

    try:
        return known_host()
    except BuildError:
        return f"{sys.platform}-{platform.machine()}"


def read_manifest(path: Path, label: str, max_bytes: int) -> Manifest:
    """Parse the extracted ``manifest.json`` at ``path`` and check it fits this host."""
    if path.is_symlink() or not path.is_file():
        raise ManifestError("manifest.json must be a regular file", path=label)
    if path.stat().st_size > max_bytes:
        raise ManifestError(f"manifest.json is larger than {max_bytes} bytes", path=label)
    manifest = parse_manifest(path.read_bytes(), label)
    check_host(manifest, label)
    return manifest


def check_host(manifest: Manifest, label: str) -> None:
    """Refuse a package built for another target (the Python is checked once the vendored set
    is unpacked: :func:`check_wheels` and :func:`cloaca.registry.interpreters.choose_interpreter`).
    """
    host = host_target()
    if host not in manifest.package.targets:
        raise IncompatibleTargetError(
            path=label, target=", ".join(manifest.package.targets), host=host
        )


def check_wheels(manifest: Manifest, vendor: Path, label: str) -> list[VendoredWheel]:
    """The wheels of the unpacked ``vendor`` tree, checked against the manifest and the target.

    The tree is the truth: when the manifest records ``python.wheels`` they must be the same
    wheels, and every wheel must have a platform tag that runs on each of the archive's targets
    (a macOS wheel in a Linux archive is refused).

    Raises
    ------
    ManifestError
        ``python.wheels`` does not describe what ``vendor/`` holds.
    PackageError
        A wheel is built for another platform than the archive's target.
    """
    assert manifest.python is not None
    wheels = read_wheels(vendor)
    recorded = manifest.python.wheels
    if recorded is not None and _wheel_keys(recorded) != _wheel_keys(wheels):
        raise ManifestError(
            "the recorded wheels do not match the dist-info directories in vendor/: the "
            "archive was modified after it was built. Rebuild it with `cloaca build`.",
            path=label,
            field="python.wheels",
        )
    for target in manifest.package.targets:
        bad = target_mismatches(wheels, target)
        if bad:
            raise PackageError(
                f"package {manifest.package.name!r} is for {target} but vendors wheel(s) for "
                f"another platform: {'; '.join(bad)}. Rebuild it with `cloaca build --target "
                f"{target}`.",
                path=label,
            )
    return wheels


def _wheel_keys(wheels: list[VendoredWheel]) -> set[tuple[str, str, tuple[str, ...]]]:
    return {(w.name, w.version, tuple(sorted(w.tags))) for w in wheels}


def fingerprint_of(files: Mapping[str, str]) -> str:
    """The spec's fingerprint from ``{path: hex sha256}`` of the regular-file members.

    sha256 over the sorted lines ``path + "\\0" + hex + "\\n"``, ``manifest.json`` excluded.
    """
    lines = sorted(f"{path}\0{digest}\n" for path, digest in files.items() if path != MANIFEST)
    return "sha256:" + hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def check_fingerprint(manifest: Manifest, found: ExtractedArchive, label: str) -> None:
    """Recompute the fingerprint and refuse a mismatch with the manifest's."""
    actual = fingerprint_of(found.files)
    if actual != manifest.package.fingerprint:
        raise ManifestError(
            f"the manifest says {manifest.package.fingerprint} but the archive content hashes "
            f"to {actual}: the archive was modified or corrupted after it was built. Rebuild it "
            "with `cloaca build`.",
            path=label,
            field="package.fingerprint",
        )


def check_layout(manifest: Manifest, found: ExtractedArchive, label: str) -> None:
    """Check the members the manifest's language needs are there."""
    if MANIFEST not in found.files:
        raise PackageError("required member 'manifest.json' is missing", path=label)
    if manifest.language == "python":
        _require_python(manifest, found, label)
    else:
        _require_rust(manifest, found, label)
    for task in manifest.tasks:
        if manifest.language == "python" and not _is_function_ref(task.function):
            raise ManifestError(
                f"task {task.id!r}: function {task.function!r} must look like "
                "'package.module:function_name'",
                path=label,
                field="tasks.function",
            )


def _require_python(manifest: Manifest, found: ExtractedArchive, label: str) -> None:
    for required, kind in (("requirements.lock", "file"), ("src", "dir"), ("vendor", "dir")):
        present = required in found.files if kind == "file" else _is_dir(found, required)
        if not present:
            slash = "/" if kind == "dir" else ""
            raise PackageError(
                f"required member '{required}{slash}' is missing: a Python package holds "
                "manifest.json, requirements.lock, src/ and vendor/ (vendor/ even when empty).",
                path=label,
            )
    assert manifest.python is not None  # the model requires it for language "python"
    entry = manifest.python.entry_module
    base = "src/" + entry.replace(".", "/")
    if f"{base}.py" not in found.files and f"{base}/__init__.py" not in found.files:
        raise ManifestError(
            f"entry module {entry!r} is not in the archive (expected {base}.py or "
            f"{base}/__init__.py)",
            path=label,
            field="python.entry_module",
        )


def _require_rust(manifest: Manifest, found: ExtractedArchive, label: str) -> None:
    assert manifest.rust is not None  # the model requires it for language "rust"
    raw = manifest.rust.library_path
    lib = posixpath.normpath(raw) if raw and not raw.startswith("/") else ""
    if not lib.startswith("lib/"):
        raise ManifestError(
            f"library_path {raw!r} must be a relative path under lib/",
            path=label,
            field="rust.library_path",
        )
    path = found.root / lib
    # is_file() follows the (checked, inside) links and is False for a loop, where resolve()
    # raised RuntimeError
    if lib not in found.files and not (
        any(name == lib for name, _, _ in found.links) and path.is_file()
    ):
        raise ManifestError(
            f"library {raw!r} is not a file in the archive", path=label, field="rust.library_path"
        )


def _is_dir(found: ExtractedArchive, name: str) -> bool:
    # a directory member, implied by members under it, or a link to one (links stay inside)
    return (found.root / name).is_dir()


def _is_function_ref(ref: str) -> bool:
    module, sep, attr = ref.partition(":")
    parts = [*module.split("."), *attr.split(".")]
    return bool(sep) and all(p.isidentifier() for p in parts)


__all__ = [
    "GZIP_MAGIC",
    "check_fingerprint",
    "check_gzip",
    "check_host",
    "check_layout",
    "check_wheels",
    "fingerprint_of",
    "host_target",
    "read_manifest",
]
