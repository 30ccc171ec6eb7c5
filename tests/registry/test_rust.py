"""Rust packages: a real cdylib compiled from tests/fixtures/rust, called through the C ABI in a
worker process; cross-package dependencies between a Python and a Rust package."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cloaca import Context, TaskRegistry, WorkflowBuilder
from cloaca.errors import TaskExecutionError, UnknownDependencyError
from cloaca.registry import rust
from cloaca.registry.loader import PackageLoaderFactory, register_package_tasks
from cloaca.registry.workers import WorkerPools

from .conftest import python_archive

RustArchive = Callable[..., bytes]


def rust_registry(
    factory: PackageLoaderFactory, pools: WorkerPools, rust_archive: RustArchive
) -> TaskRegistry:
    registry = TaskRegistry()
    register_package_tasks(registry, factory.load(rust_archive()), pools=pools)
    return registry


async def run_only(registry: TaskRegistry, task: str, context: dict[str, object]) -> Context:
    return (
        await WorkflowBuilder()
        .with_registry(registry)
        .only_tasks([task])
        .build()
        .execute(Context(context))
    )


async def test_rust_task_runs_through_the_c_abi(
    factory: PackageLoaderFactory, pools: WorkerPools, rust_archive: RustArchive
) -> None:
    registry = rust_registry(factory, pools, rust_archive)
    out = await run_only(registry, "produce-numbers", {"given": "kept", "n": 1.5})
    assert out.to_dict() == {"given": "kept", "n": 1.5, "rust_numbers": [10, 20, 30]}


async def test_output_bigger_than_the_buffer_is_fetched_with_a_resize(
    factory: PackageLoaderFactory, pools: WorkerPools, rust_archive: RustArchive
) -> None:
    registry = rust_registry(factory, pools, rust_archive)
    out = await run_only(registry, "big-output", {})
    assert out["blob"] == "x" * 200_000
    assert len(out["blob"]) > rust.INITIAL_CAPACITY
    # the library counts its calls: big-output ran twice (too small, then resized), and this
    # call-count is the third call of the same warm worker
    counted = await run_only(registry, "call-count", {})
    assert counted["rust_calls"] == 3
    # the buffer stays grown: another big output needs one call only
    await run_only(registry, "big-output", {})
    assert (await run_only(registry, "call-count", {}))["rust_calls"] == 5


async def test_rust_error_object_becomes_the_task_error(
    factory: PackageLoaderFactory, pools: WorkerPools, rust_archive: RustArchive
) -> None:
    registry = rust_registry(factory, pools, rust_archive)
    with pytest.raises(TaskExecutionError) as info:
        await run_only(registry, "fail", {})
    assert info.value.error_type == "RustTaskError"
    assert info.value.message == "deliberate failure in a rust task"
    assert info.value.task_id == "rusty::fail"


async def test_rust_segfault_fails_the_task_not_the_host(
    factory: PackageLoaderFactory, pools: WorkerPools, rust_archive: RustArchive
) -> None:
    registry = rust_registry(factory, pools, rust_archive)
    with pytest.raises(TaskExecutionError) as info:
        await run_only(registry, "segfault", {})
    assert info.value.error_type == "WorkerError"
    assert "rusty" in str(info.value) and "SIGSEGV" in str(info.value)
    # a fresh worker: the call counter starts again
    assert (await run_only(registry, "call-count", {}))["rust_calls"] == 1


SUMMER = {
    "summer/__init__.py": "",
    "summer/tasks.py": """
        def total(context):
            context["rust_total"] = sum(context["rust_numbers"])
            return context
    """,
}


def summer_archive(dependency: str) -> bytes:
    task = {"id": "total", "function": "summer.tasks:total", "dependencies": [dependency]}
    return python_archive("summer", SUMMER, [task], entry="summer.tasks")


async def test_python_task_depends_on_a_rust_task_of_another_package(
    factory: PackageLoaderFactory, pools: WorkerPools, rust_archive: RustArchive
) -> None:
    registry = TaskRegistry()
    # the dependent package first: the dependency resolves once both are loaded
    register_package_tasks(
        registry, factory.load(summer_archive("rusty::produce-numbers")), pools=pools
    )
    register_package_tasks(registry, factory.load(rust_archive()), pools=pools)
    workflow = WorkflowBuilder().with_registry(registry).start_from_task("produce-numbers").build()
    assert workflow.dag.deps["summer::total"] == ("rusty::produce-numbers",)
    assert workflow.selection == {"rusty::produce-numbers", "summer::total"}
    out = await workflow.execute(Context({"seed": 1}))
    assert out["rust_total"] == 60
    assert out["rust_numbers"] == [10, 20, 30]


@pytest.mark.parametrize(
    ("dependency", "fragment"),
    [
        ("ghost-pkg::produce-numbers", "'ghost-pkg::produce-numbers'"),
        ("rusty::nope", "'rusty::nope'"),
    ],
)
def test_unknown_package_or_task_is_a_clear_error(
    factory: PackageLoaderFactory,
    pools: WorkerPools,
    rust_archive: RustArchive,
    dependency: str,
    fragment: str,
) -> None:
    registry = TaskRegistry()
    register_package_tasks(registry, factory.load(summer_archive(dependency)), pools=pools)
    register_package_tasks(registry, factory.load(rust_archive()), pools=pools)
    with pytest.raises(UnknownDependencyError) as info:
        WorkflowBuilder().with_registry(registry).build()
    assert info.value.task_id == "summer::total"
    assert info.value.dependency == dependency
    assert "'summer::total'" in str(info.value) and fragment in str(info.value)
