"""Verification against the package format: manifest, fingerprint, target, required members, and
archives written by other tools that follow the format."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from cloaca.errors import IncompatibleTargetError, ManifestError, PackageError
from cloaca.packaging.archive import fingerprint as builder_fingerprint
from cloaca.packaging.targets import TARGETS, host_target
from cloaca.registry.loader import PackageLoaderFactory, PythonPackage
from cloaca.registry.verify import fingerprint_of

from .conftest import (
    TOOLBOX,
    Entry,
    build_archive,
    manifest_for,
    package_entries,
    python_files,
    spec_fingerprint,
    toolbox_task,
)

TASKS = [toolbox_task("record-pid", "record_pid")]


def archive_with(manifest_changes: dict[str, Any] | None = None, **options: Any) -> bytes:
    files = python_files(TOOLBOX)
    manifest = manifest_for("checked", files, TASKS, **options)
    manifest.update(manifest_changes or {})
    return build_archive(package_entries(files, manifest, dirs=("src", "vendor")))


def assert_nothing_left(staging: Path) -> None:
    assert os.listdir(staging) == []


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"tsks": []}, "tsks", "Did you mean 'tasks'?"),
        ({"format_version": "1"}, "format_version", 'format_version "2"'),
        ({"language": "go"}, "language", ""),
        ({"python": None}, None, "'python' section is missing"),
        ({"tasks": [{"id": "bad id!", "function": "pkg.tasks:x"}]}, "tasks.0.id", ""),
        ({"tasks": [{"id": "x", "function": "no_colon_here"}]}, "tasks.function", "module:"),
    ],
)
def test_bad_manifest(
    staging: Path,
    factory: PackageLoaderFactory,
    changes: dict[str, Any],
    field: str | None,
    fragment: str,
) -> None:
    with pytest.raises(ManifestError) as info:
        factory.load(archive_with(changes), source="bad.cloaca")
    if field:
        assert info.value.field == field
    assert fragment in str(info.value)
    assert "bad.cloaca" in str(info.value)
    assert_nothing_left(staging)


def test_manifest_that_is_not_json(staging: Path, factory: PackageLoaderFactory) -> None:
    files = python_files(TOOLBOX)
    entries = [e for e in package_entries(files, {}) if e.name != "manifest.json"]
    data = build_archive([Entry("manifest.json", b"{not json"), *entries])
    with pytest.raises(ManifestError, match="not valid JSON"):
        factory.load(data)
    assert_nothing_left(staging)


def test_missing_manifest(staging: Path, factory: PackageLoaderFactory) -> None:
    files = python_files(TOOLBOX)
    entries = [e for e in package_entries(files, {}) if e.name != "manifest.json"]
    with pytest.raises(PackageError, match="'manifest.json' is missing"):
        factory.load(build_archive(entries))
    assert_nothing_left(staging)


def test_fingerprint_mismatch(staging: Path, factory: PackageLoaderFactory) -> None:
    files = python_files(TOOLBOX)
    manifest = manifest_for("tampered", files, TASKS)
    files["src/pkg/tasks.py"] += b"\nimport os; os.system('echo owned')\n"  # after signing
    data = build_archive(package_entries(files, manifest, dirs=("src", "vendor")))
    with pytest.raises(ManifestError) as info:
        factory.load(data)
    assert info.value.field == "package.fingerprint"
    assert "modified or corrupted" in str(info.value)
    assert_nothing_left(staging)


def test_wrong_target(staging: Path, factory: PackageLoaderFactory) -> None:
    other = next(t for t in TARGETS if t != host_target())
    with pytest.raises(IncompatibleTargetError) as info:
        factory.load(archive_with(targets=[other]))
    assert info.value.target == other
    assert info.value.host == host_target()
    assert f"cloaca build --target {host_target()}" in str(info.value)
    assert_nothing_left(staging)


def test_python_version_the_host_lacks(staging: Path, factory: PackageLoaderFactory) -> None:
    data = archive_with({"python": {"requires_python": ">=4", "entry_module": "pkg.tasks"}})
    with pytest.raises(PackageError, match="requires Python >=4"):
        factory.load(data)
    assert_nothing_left(staging)


@pytest.mark.parametrize(
    ("drop", "fragment"),
    [
        ("requirements.lock", "'requirements.lock' is missing"),
        ("vendor", "'vendor/' is missing"),
    ],
)
def test_required_members(
    staging: Path, factory: PackageLoaderFactory, drop: str, fragment: str
) -> None:
    files = python_files(TOOLBOX)
    files.pop(drop, None)
    manifest = manifest_for("partial", files, TASKS)
    dirs = ("src",) if drop == "vendor" else ("src", "vendor")
    with pytest.raises(PackageError, match=fragment):
        factory.load(build_archive(package_entries(files, manifest, dirs=dirs)))
    assert_nothing_left(staging)


def test_entry_module_must_exist(staging: Path, factory: PackageLoaderFactory) -> None:
    with pytest.raises(ManifestError, match="entry module 'pkg.nowhere'") as info:
        factory.load(archive_with(entry="pkg.nowhere"))
    assert info.value.field == "python.entry_module"
    assert_nothing_left(staging)


def test_rust_library_must_be_under_lib(staging: Path, factory: PackageLoaderFactory) -> None:
    files = {"lib/libx.so": b"\x7fELF"}
    manifest = manifest_for("rusty", files, [{"id": "t", "function": "t"}], language="rust")
    manifest["rust"] = {"library_path": "../libx.so"}
    with pytest.raises(ManifestError, match="under lib/"):
        factory.load(build_archive(package_entries(files, manifest)))
    manifest["rust"] = {"library_path": "lib/missing.so"}
    with pytest.raises(ManifestError, match="not a file in the archive"):
        factory.load(build_archive(package_entries(files, manifest)))
    assert_nothing_left(staging)


def test_fingerprint_matches_the_builder_and_the_spec() -> None:
    files = python_files(TOOLBOX)
    import hashlib

    digests = {p: hashlib.sha256(d).hexdigest() for p, d in files.items()}
    expected = spec_fingerprint(files)
    assert fingerprint_of(digests) == expected == builder_fingerprint(files.items())
    assert fingerprint_of({**digests, "manifest.json": "0" * 64}) == expected


# --------------------------------------------------------------------------- conformant variants
def test_archive_made_with_system_tar_is_accepted(
    tmp_path: Path, factory: PackageLoaderFactory
) -> None:
    """``tar czf pkg.cloaca -C tree .``: ``./`` prefixes, owner names, real mtimes."""
    tree = tmp_path / "tree"
    files = python_files(TOOLBOX)
    for rel, data in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)
    (tree / "vendor").mkdir()
    (tree / "manifest.json").write_text(json.dumps(manifest_for("by-tar", files, TASKS)))
    out = tmp_path / "by-tar.cloaca"
    subprocess.run(["tar", "czf", str(out), "-C", str(tree), "."], check=True)
    with tarfile.open(out) as tar:
        assert tar.getnames()[0].startswith(".")
    loaded = factory.load_path(out)
    assert isinstance(loaded, PythonPackage)
    assert loaded.name == "by-tar"
    assert (loaded.source_dir / "pkg" / "tasks.py").read_bytes() == files["src/pkg/tasks.py"]


def test_links_that_stay_inside_are_accepted(factory: PackageLoaderFactory) -> None:
    files = python_files(TOOLBOX)
    manifest = manifest_for("linked", files, TASKS)
    entries = package_entries(files, manifest, dirs=("src", "vendor"))
    entries += [
        Entry("src/pkg/alias.py", type=tarfile.SYMTYPE, linkname="tasks.py"),
        Entry("vendor/copy.py", type=tarfile.LNKTYPE, linkname="src/pkg/tasks.py"),
    ]
    loaded = factory.load(build_archive(entries))
    assert (loaded.root / "src/pkg/alias.py").read_bytes() == files["src/pkg/tasks.py"]
    assert (loaded.root / "vendor/copy.py").read_bytes() == files["src/pkg/tasks.py"]
    # links are not in the fingerprint, so they key the staged copy apart from a link-free twin
    twin = factory.load(build_archive(package_entries(files, manifest, dirs=("src", "vendor"))))
    assert twin.fingerprint == loaded.fingerprint
    assert twin.root != loaded.root
