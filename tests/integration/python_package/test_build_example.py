"""``cloaca build`` on the reference example, through the real CLI, real uv and real archives."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from cloaca.packaging.archive import fingerprint
from cloaca.packaging.manifest import parse_manifest
from cloaca.packaging.targets import host_target

from .conftest import EXAMPLE, REPO, Cli

pytestmark = pytest.mark.slow

TASKS = {
    "fetch-data": [],
    "validate-data": ["fetch-data"],
    "aggregate-data": ["validate-data"],
    "generate-report": ["aggregate-data"],
}


def _members(archive: Path) -> dict[str, bytes | None]:
    with tarfile.open(archive) as tar:
        return {
            m.name: (tar.extractfile(m).read() if m.isfile() else None)  # type: ignore[union-attr]
            for m in tar.getmembers()
        }


def test_one_archive_for_the_host_named_after_the_package(host_archive: Path) -> None:
    assert host_archive.name == f"data-pipeline-example-1.0.0-{host_target()}.cloaca"
    assert [p.name for p in host_archive.parent.iterdir()] == [host_archive.name]


def test_archive_layout(host_archive: Path) -> None:
    files = _members(host_archive)
    for required in ("manifest.json", "requirements.lock", "src/data_pipeline/__init__.py",
                     "src/data_pipeline/tasks.py", "vendor"):  # fmt: skip
        assert required in files
    assert any(n.startswith("vendor/httpx/") for n in files)
    assert any(n.startswith("vendor/pydantic/") for n in files)
    assert not any("__pycache__" in n or n.startswith("vendor/bin/") for n in files)
    lock = files["requirements.lock"].decode()  # type: ignore[union-attr]
    pins = {line.split("==")[0] for line in lock.splitlines() if "==" in line}
    assert {"httpx", "pydantic", "pydantic-core", "httpcore"} <= pins
    assert lock.count("--hash=sha256:") >= len(pins)
    with tarfile.open(host_archive) as tar:
        for info in tar.getmembers():
            assert not info.name.startswith("/") and ".." not in info.name.split("/")
            assert info.isfile() or info.isdir()
            assert (info.uid, info.gid, info.uname, info.gname) == (0, 0, "", "")


def test_manifest_is_valid_v2_with_the_four_tasks(host_archive: Path) -> None:
    files = _members(host_archive)
    manifest = parse_manifest(files["manifest.json"], path=str(host_archive))  # type: ignore[arg-type]
    assert manifest.format_version == "2" and manifest.language == "python"
    assert manifest.package.name == "data-pipeline-example"
    assert manifest.package.version == "1.0.0"
    assert manifest.package.targets == [host_target()]
    assert manifest.python is not None
    assert manifest.python.entry_module == "data_pipeline.tasks"
    assert manifest.python.requires_python == ">=3.11"
    assert {t.id: t.dependencies for t in manifest.tasks} == TASKS
    fetch = manifest.tasks[0]
    assert (fetch.function, fetch.retries, fetch.timeout_seconds) == (
        "data_pipeline.tasks:fetch_data", 2, 30,
    )  # fmt: skip
    assert manifest.created_at == "2023-11-14T22:13:20Z"
    assert manifest.signature is None
    content = {n: c for n, c in files.items() if c is not None}
    assert manifest.package.fingerprint == fingerprint(content.items())


def test_vendored_httpx_and_pydantic_import_and_the_pipeline_runs(
    host_archive: Path, tmp_path: Path
) -> None:
    with tarfile.open(host_archive) as tar:
        tar.extractall(tmp_path, filter="data")
    script = f"""
import asyncio, sys
sys.path[:0] = [{str(tmp_path / "vendor")!r}, {str(tmp_path / "src")!r}, {str(REPO)!r}]
import httpx, pydantic, pydantic_core
for mod in (httpx, pydantic, pydantic_core):
    assert mod.__file__.startswith({str(tmp_path / "vendor")!r}), mod.__file__
from data_pipeline.tasks import aggregate_data, fetch_data, generate_report, validate_data
data = [{{"id": 1, "name": "a", "value": 2.5}}, {{"id": "x"}}]
ctx = asyncio.run(fetch_data({{"raw_data": data}}))
for step in (validate_data, aggregate_data, generate_report):
    ctx = step(ctx)
print(ctx["report"])
"""
    # -S: no site-packages, so everything but the stdlib and cloaca comes from the archive
    proc = subprocess.run(
        [sys.executable, "-S", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "Records processed: 1" in proc.stdout
    assert "Record 2:" in proc.stdout


def _wheel_tags(files: dict[str, bytes | None], dist: str) -> list[str]:
    (wheel,) = [n for n in files if n.startswith(f"vendor/{dist}-") and n.endswith("/WHEEL")]
    text = files[wheel].decode()  # type: ignore[union-attr]
    return [line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("Tag: ")]


def test_two_targets_vendor_each_platforms_wheels(two_target_archives: dict[str, Path]) -> None:
    linux = _members(two_target_archives["linux-x86_64"])
    mac = _members(two_target_archives["macos-arm64"])
    assert all(
        "manylinux" in t and t.endswith("x86_64") for t in _wheel_tags(linux, "pydantic_core")
    )
    assert all("macosx" in t and t.endswith("arm64") for t in _wheel_tags(mac, "pydantic_core"))
    assert any(n.endswith("x86_64-linux-gnu.so") for n in linux if "pydantic_core" in n)
    assert any(n.endswith("-darwin.so") for n in mac if "pydantic_core" in n)
    for target, files in (("linux-x86_64", linux), ("macos-arm64", mac)):
        manifest = parse_manifest(files["manifest.json"])  # type: ignore[arg-type]
        assert manifest.package.targets == [target]
        assert {t.id for t in manifest.tasks} == set(TASKS)
    assert linux["src/data_pipeline/tasks.py"] == mac["src/data_pipeline/tasks.py"]


def test_rebuilds_with_the_same_source_date_epoch_are_byte_identical(
    cli: Cli, host_archive: Path, tmp_path: Path
) -> None:
    digests = set()
    for name in ("a", "b"):
        proc = cli("build", str(EXAMPLE), "-o", str(tmp_path / name), "--no-cache")
        assert proc.returncode == 0, proc.stderr
        (archive,) = (tmp_path / name).glob("*.cloaca")
        digests.add(hashlib.sha256(archive.read_bytes()).hexdigest())
    digests.add(hashlib.sha256(host_archive.read_bytes()).hexdigest())
    assert len(digests) == 1


def test_unchanged_rebuild_is_served_from_the_cache(
    cli: Cli, host_archive: Path, tmp_path: Path
) -> None:
    start = time.perf_counter()
    proc = cli("build", str(EXAMPLE), "-o", str(tmp_path))
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    assert "(cached)" in proc.stdout
    (archive,) = tmp_path.glob("*.cloaca")
    assert archive.read_bytes() == host_archive.read_bytes()
    print(f"cached rebuild through the CLI: {elapsed:.3f}s")


def test_dry_run_builds_nothing(cli: Cli, tmp_path: Path) -> None:
    proc = cli("build", str(EXAMPLE), "-o", str(tmp_path / "o"), "--target", "linux-arm64",
               "--dry-run")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "data-pipeline-example-1.0.0-linux-arm64.cloaca" in proc.stdout
    assert "generate-report" in proc.stdout
    assert not (tmp_path / "o").exists()


def test_build_in_the_current_directory_defaults_to_dist(cli: Cli, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / "src" / "mini").mkdir(parents=True)
    (project / "src" / "mini" / "__init__.py").write_text(
        "from cloaca import task\n\n@task\ndef hello(context):\n    return context\n"
    )
    (project / "pyproject.toml").write_text(
        '[project]\nname = "mini"\nversion = "0.0.1"\n[tool.cloaca]\nentry_module = "mini"\n'
    )
    proc = cli("build", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert (project / "dist" / f"mini-0.0.1-{host_target()}.cloaca").is_file()


def test_the_examples_own_local_tests_pass() -> None:
    # `make test` collects tests/ only; the example's suite runs here with its own pytest config
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        capture_output=True,
        text=True,
        cwd=EXAMPLE,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "9 passed" in proc.stdout
