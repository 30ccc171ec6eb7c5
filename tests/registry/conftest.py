"""Fixtures for the loader tests: spec-conformant archives written here, the Rust fixture library
compiled with rustc, worker pools torn down after each test, and a local HTTP server.

Archives are built by :func:`build_archive` straight from the package format (deterministic
gzip tar, fingerprint computed independently of the code under test), so malicious variants are
easy to write and none is committed.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import shutil
import subprocess
import tarfile
import textwrap
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cloaca.packaging.targets import host_target
from cloaca.registry.loader import PackageLoaderFactory
from cloaca.registry.workers import WorkerPools

RUST_SOURCE = Path(__file__).parents[1] / "fixtures" / "rust" / "cloaca_fixture.rs"
MTIME = 315532800


@dataclass
class Entry:
    """One archive member; ``size`` overrides the header size (for lying headers)."""

    name: str
    data: bytes | None = None
    type: bytes = tarfile.REGTYPE
    linkname: str = ""
    mode: int = 0o644
    size: int | None = None


def spec_fingerprint(files: dict[str, bytes]) -> str:
    """The package-format fingerprint, written from the spec text."""
    lines = sorted(
        f"{path}\0{hashlib.sha256(data).hexdigest()}\n"
        for path, data in files.items()
        if path != "manifest.json"
    )
    return "sha256:" + hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def build_archive(entries: Sequence[Entry]) -> bytes:
    """A deterministic gzip tar of ``entries`` (in the given order)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type, info.linkname, info.mode, info.mtime = e.type, e.linkname, e.mode, MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if e.type == tarfile.DIRTYPE:
                info.mode = 0o755
            if e.data is not None:
                info.size = len(e.data) if e.size is None else e.size
                tar.addfile(info, io.BytesIO(e.data))
            else:
                info.size = e.size or 0
                tar.addfile(info)
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def manifest_for(
    name: str,
    files: dict[str, bytes],
    tasks: list[dict[str, Any]],
    *,
    language: str = "python",
    entry: str = "pkg.tasks",
    library: str = "lib/libcloaca_fixture.so",
    targets: list[str] | None = None,
    python: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A valid manifest v2 for ``files`` (fingerprint included); ``python`` adds to or
    replaces fields of the ``python`` section."""
    full_tasks = [
        {"dependencies": [], "description": None, "retries": 0, "timeout_seconds": None, **t}
        for t in tasks
    ]
    return {
        "format_version": "2",
        "package": {
            "name": name,
            "version": "1.0.0",
            "description": f"test package {name}",
            "fingerprint": spec_fingerprint(files),
            "targets": targets or [host_target()],
        },
        "language": language,
        "python": {"requires_python": ">=3.11", "entry_module": entry, **(python or {})}
        if language == "python"
        else None,
        "rust": {"library_path": library} if language == "rust" else None,
        "tasks": full_tasks,
        "created_at": "2024-01-01T00:00:00Z",
        "signature": None,
    }


def package_entries(
    files: dict[str, bytes], manifest: dict[str, Any], dirs: Sequence[str] = ()
) -> list[Entry]:
    """Members in the builder's order: sorted, directories listed explicitly."""
    all_dirs = set(dirs)
    for path in files:
        parts = path.split("/")[:-1]
        all_dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    entries = [Entry(d, type=tarfile.DIRTYPE) for d in all_dirs]
    entries += [Entry(p, data=d) for p, d in files.items()]
    entries.append(Entry("manifest.json", data=json.dumps(manifest, indent=2).encode()))
    return sorted(entries, key=lambda e: e.name)


def python_files(sources: dict[str, str], vendor: dict[str, str] | None = None) -> dict[str, bytes]:
    """``src/`` and ``vendor/`` files of a Python package plus an empty requirements.lock."""
    files = {"requirements.lock": b""}
    files.update({f"src/{p}": textwrap.dedent(s).encode() for p, s in sources.items()})
    files.update({f"vendor/{p}": textwrap.dedent(s).encode() for p, s in (vendor or {}).items()})
    return files


def python_archive(
    name: str,
    sources: dict[str, str],
    tasks: list[dict[str, Any]],
    *,
    entry: str = "pkg.tasks",
    vendor: dict[str, str] | None = None,
    **manifest_options: Any,
) -> bytes:
    """A complete, valid Python package archive."""
    files = python_files(sources, vendor)
    manifest = manifest_for(name, files, tasks, entry=entry, **manifest_options)
    return build_archive(package_entries(files, manifest, dirs=("src", "vendor")))


# ---------------------------------------------------------------------------- task sources
TOOLBOX = {
    "pkg/__init__.py": "",
    "pkg/tasks.py": '''
        """Tiny tasks exercising the worker: pids, async, errors, crashes, timeouts, prints."""
        import asyncio
        import os
        import sys
        import time

        from cloaca import task


        @task(id="record-pid")
        def record_pid(context):
            context["pids"] = [*context.get("pids", []), os.getpid()]
            return context


        def add_one(context):
            context["n"] = context.get("n", 0) + 1
            return context


        async def async_double(context):
            await asyncio.sleep(0)
            context["n"] = context["n"] * 2
            return context


        def needs_key(context):
            context["seen"] = context["missing_key"]


        def exit_hard(context):
            os._exit(3)


        def segfault(context):
            import ctypes

            ctypes.string_at(0)


        def sleepy(context):
            time.sleep(120)


        def chatty(context):
            print("hello from a task on stdout")
            sys.stdout.flush()
            context["chatty"] = True
            return context


        def bad_output(context):
            return {"when": object()}


        def calls_exit(context):
            sys.exit(4)


        def environment(context):
            import httpx

            context["httpx"] = getattr(httpx, "__version__", None)
            context["sys_path_head"] = sys.path[:2]
            context["has_pytest"] = "pytest" in sys.modules or "_pytest" in sys.modules
            return context


        def with_handle(context, handle):
            context["handle_task"] = handle.task_id
            return context


        async def async_noted(task_id, *args):  # (task_id, context) or (task_id, error, context)
            import asyncio
            import json
            import pathlib

            await asyncio.sleep(0)
            *error, context = args
            kind = "failure" if error else "success"
            path = pathlib.Path(context["notes"]) / f"{task_id}.{kind}"
            path.write_text(json.dumps([type(e).__name__ for e in error]))


        def returns_dict(context):
            return {"only": "this"}
    ''',
}
TOOLBOX_VENDOR = {"httpx.py": '__version__ = "vendored-fake"\n'}


def toolbox_task(tid: str, fn: str, **extra: Any) -> dict[str, Any]:
    return {"id": tid, "function": f"pkg.tasks:{fn}", **extra}


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture
def staging(tmp_path: Path) -> Path:
    """An empty staging dir inside a tmp dir that holds nothing else."""
    path = tmp_path / "staging"
    path.mkdir()
    return path


@pytest.fixture
def factory(staging: Path) -> PackageLoaderFactory:
    return PackageLoaderFactory(staging)


@pytest.fixture
def pools() -> Iterator[WorkerPools]:
    """Worker pools owned by one test; every worker is stopped at teardown."""
    with WorkerPools() as p:
        yield p


@pytest.fixture(scope="session")
def rust_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Rust fixture library, compiled once per test session."""
    rustc = shutil.which("rustc")
    if rustc is None:
        pytest.fail("rustc is needed for the Rust package tests (make system-deps installs it)")
    out = tmp_path_factory.mktemp("rust") / "libcloaca_fixture.so"
    subprocess.run(
        [rustc, "--edition", "2021", "--crate-type", "cdylib", "-O", "-C", "strip=debuginfo",
         "-o", str(out), str(RUST_SOURCE)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return out


@pytest.fixture
def rust_archive(rust_library: Path) -> Callable[..., bytes]:
    """``make(name="rusty", tasks=[...])``: a Rust package archive with the fixture library."""

    def make(name: str = "rusty", tasks: list[dict[str, Any]] | None = None) -> bytes:
        files = {"lib/libcloaca_fixture.so": rust_library.read_bytes()}
        tasks = tasks or [
            {"id": "produce-numbers", "function": "produce-numbers"},
            {"id": "big-output", "function": "big-output"},
            {"id": "call-count", "function": "call-count"},
            {"id": "fail", "function": "fail"},
            {"id": "segfault", "function": "segfault"},
        ]
        manifest = manifest_for(name, files, tasks, language="rust")
        return build_archive(package_entries(files, manifest))

    return make


class _JsonHandler(http.server.BaseHTTPRequestHandler):
    payload: bytes = b"[]"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def data_server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 (free port) serving three records at ``/records``."""
    records = [
        {"id": 1, "name": "alpha", "value": 10.0},
        {"id": 2, "name": "beta", "value": 20.0},
        {"id": 3, "name": "gamma", "value": 30.0},
    ]
    handler = type("Handler", (_JsonHandler,), {"payload": json.dumps(records).encode()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/records"
    finally:
        server.shutdown()
        server.server_close()
