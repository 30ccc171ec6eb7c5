"""The reference example built by the real ``cloaca build`` (a subprocess), then loaded and run:
four tasks discovered, the pipeline end to end, the KeyError case, and fetch-data against a real
HTTP server on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cloaca import Context, TaskRegistry, WorkflowBuilder
from cloaca.errors import TaskExecutionError
from cloaca.registry.loader import PackageLoaderFactory, PythonPackage, register_package_tasks
from cloaca.registry.workers import WorkerPools

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "features" / "python-workflow"
RAW = [
    {"id": 1, "name": "alpha", "value": 10.0},
    {"id": 2, "name": "beta", "value": 20.0},
    {"id": 3, "name": "gamma", "value": 30.0},
]


@pytest.fixture(scope="session")
def example_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``cloaca build examples/features/python-workflow`` for this host, once per session."""
    out = tmp_path_factory.mktemp("example-dist")
    script = Path(sys.executable).parent / "cloaca"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "cloaca.cli.build"]
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    proc = subprocess.run(
        [*command, "build", str(EXAMPLE), "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (archive,) = out.glob("*.cloaca")
    return archive


@pytest.fixture
def example(
    example_archive: Path, factory: PackageLoaderFactory, pools: WorkerPools
) -> TaskRegistry:
    registry = TaskRegistry()
    register_package_tasks(registry, factory.load_path(example_archive), pools=pools)
    return registry


def test_the_example_s_four_tasks_and_dependencies_are_discovered(
    example_archive: Path, factory: PackageLoaderFactory
) -> None:
    loaded = factory.load_path(example_archive)
    assert isinstance(loaded, PythonPackage)
    assert loaded.name == "data-pipeline-example"
    assert loaded.entry_module == "data_pipeline.tasks"
    deps = {t.id: t.dependencies for t in loaded.manifest.tasks}
    assert deps == {
        "fetch-data": [],
        "validate-data": ["fetch-data"],
        "aggregate-data": ["validate-data"],
        "generate-report": ["aggregate-data"],
    }
    assert (loaded.vendor_dir / "pydantic").is_dir()


async def test_pipeline_from_validate_data(example: TaskRegistry) -> None:
    workflow = WorkflowBuilder().with_registry(example).start_from_task("validate-data").build()
    assert "data-pipeline-example::fetch-data" not in workflow.selection
    out = await workflow.execute(Context({"raw_data": RAW}))
    agg = out["aggregations"]
    assert (agg["count"], agg["sum"], agg["avg"]) == (3, 60.0, 20.0)
    assert "Records processed: 3" in out["report"]
    assert "data_pipeline" not in sys.modules


async def test_pipeline_without_raw_data_fails_with_key_error(example: TaskRegistry) -> None:
    workflow = WorkflowBuilder().with_registry(example).start_from_task("validate-data").build()
    with pytest.raises(TaskExecutionError) as info:
        await workflow.execute(Context({}))
    text = str(info.value)
    assert "KeyError" in text and "raw_data" in text
    assert info.value.task_id == "data-pipeline-example::validate-data"
    assert info.value.traceback and "validate_data" in info.value.traceback


def test_fetch_task_against_a_local_http_server(example: TaskRegistry, data_server: str) -> None:
    result = WorkflowBuilder().with_registry(example).build().run({"api_url": data_server})
    assert result.status == "Completed", result.error_message
    ctx = result.final_context
    assert ctx["raw_data"] == RAW
    assert ctx["aggregations"]["avg"] == 20.0
    assert "Records processed: 3" in ctx["report"]
    assert "fetch_timestamp" in ctx
