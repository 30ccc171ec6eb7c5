"""PackageLoaderFactory: package types, task discovery, staging keyed by fingerprint, reuse."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from cloaca import TaskRegistry, WorkflowBuilder
from cloaca.registry.loader import (
    PackageLoaderFactory,
    PythonPackage,
    RustPackage,
    register_package_tasks,
)
from cloaca.registry.workers import WorkerPools

from .conftest import TOOLBOX, manifest_for, python_archive, python_files, toolbox_task

PIPELINE = [
    toolbox_task("start", "record_pid", description="first"),
    toolbox_task("inc", "add_one", dependencies=["start"], retries=2, timeout_seconds=30),
    toolbox_task("double", "async_double", dependencies=["inc"]),
    toolbox_task("other", "add_one", dependencies=["start"]),
]


def test_python_package_is_described(factory: PackageLoaderFactory, staging: Path) -> None:
    loaded = factory.load(python_archive("toolbox", TOOLBOX, PIPELINE))
    assert isinstance(loaded, PythonPackage)
    assert (loaded.name, loaded.version) == ("toolbox", "1.0.0")
    assert loaded.entry_module == "pkg.tasks"
    assert loaded.source_dir == loaded.root / "src" and loaded.source_dir.is_dir()
    assert loaded.vendor_dir == loaded.root / "vendor" and loaded.vendor_dir.is_dir()
    assert loaded.root.parent == staging.resolve()
    assert loaded.root.name == loaded.fingerprint.removeprefix("sha256:")
    assert loaded.task_ids == ["start", "inc", "double", "other"]
    assert [t.dependencies for t in loaded.manifest.tasks] == [[], ["start"], ["inc"], ["start"]]


def test_rust_package_is_described(
    factory: PackageLoaderFactory, rust_archive: Callable[..., bytes]
) -> None:
    loaded = factory.load(rust_archive())
    assert isinstance(loaded, RustPackage)
    assert loaded.library_path == loaded.root / "lib" / "libcloaca_fixture.so"
    assert loaded.library_path.is_file()
    assert "produce-numbers" in loaded.task_ids


def test_registered_tasks_keep_the_manifest_facts(
    factory: PackageLoaderFactory, pools: WorkerPools
) -> None:
    loaded = factory.load(python_archive("toolbox", TOOLBOX, PIPELINE))
    registry = TaskRegistry()
    keys = register_package_tasks(registry, loaded, pools=pools)
    assert keys == ["toolbox::start", "toolbox::inc", "toolbox::double", "toolbox::other"]
    inc = registry.get("toolbox::inc")
    assert inc.dependencies == ("start",)
    assert inc.retry.max_attempts == 3
    assert inc.timeout_seconds == 30.0
    assert inc.is_async and not inc.accepts_handle
    assert registry.get("start").description == "first"
    workflow = WorkflowBuilder().with_registry(registry).build()
    assert workflow.dag.deps["toolbox::inc"] == ("toolbox::start",)
    sub = WorkflowBuilder().with_registry(registry).start_from_task("inc").build()
    assert sub.selection == {"toolbox::inc", "toolbox::double"}
    assert pools.pool_for(loaded).pids == []  # nothing started before a task runs


def test_reregistering_replaces_the_previous_version(
    factory: PackageLoaderFactory, pools: WorkerPools
) -> None:
    registry = TaskRegistry()
    register_package_tasks(
        registry, factory.load(python_archive("toolbox", TOOLBOX, PIPELINE)), pools=pools
    )
    smaller = python_archive("toolbox", TOOLBOX, PIPELINE[:1])
    register_package_tasks(registry, factory.load(smaller), pools=pools)
    assert registry.keys() == ["toolbox::start"]


def test_same_archive_twice_reuses_the_staged_copy(
    factory: PackageLoaderFactory, staging: Path
) -> None:
    data = python_archive("toolbox", TOOLBOX, PIPELINE)
    first = factory.load(data)
    marker = first.source_dir / "pkg" / "tasks.py"
    stamp = marker.stat().st_mtime_ns
    assert factory.load(data) is first
    again = PackageLoaderFactory(staging).load(data)  # a new factory (a restarted server)
    assert again.root == first.root and again.manifest == first.manifest
    assert marker.stat().st_mtime_ns == stamp
    assert sorted(os.listdir(staging)) == [".index", first.root.name]


def test_same_package_in_another_archive_reuses_the_staged_copy(
    factory: PackageLoaderFactory, staging: Path
) -> None:
    first = factory.load(python_archive("toolbox", TOOLBOX, PIPELINE))
    # same content, another manifest (a rebuild at another time): same fingerprint, same copy
    files = python_files(TOOLBOX)
    rebuilt = manifest_for("toolbox", files, PIPELINE[:2])
    rebuilt["created_at"] = "2025-06-01T12:00:00Z"
    from .conftest import build_archive, package_entries

    second = factory.load(build_archive(package_entries(files, rebuilt, dirs=("src", "vendor"))))
    assert second.root == first.root
    assert second.task_ids == ["start", "inc"]
    assert [p for p in os.listdir(staging) if not p.startswith(".")] == [first.root.name]
    index = sorted((staging / ".index").iterdir())
    assert len(index) == 2
    assert {json.loads(p.read_text())["key"] for p in index} == {first.root.name}


def test_loading_never_imports_package_code(
    factory: PackageLoaderFactory, pools: WorkerPools
) -> None:
    loaded = factory.load(python_archive("toolbox", TOOLBOX, PIPELINE))
    registry = TaskRegistry()
    register_package_tasks(registry, loaded, pools=pools)
    result = WorkflowBuilder().with_registry(registry).build().run({"n": 1})
    assert result.status == "Completed", result.error_message
    assert "pkg" not in sys.modules and "pkg.tasks" not in sys.modules
    assert not any(str(loaded.root) in str(p) for p in sys.path)
