"""Parity: the reference project behaves the same in-process and built + loaded from a package.

The project (``tests/fixtures/parity_project``) declares retries with a delay and exponential
backoff, a retry condition, a trigger rule that skips, a sub-second timeout whose failure skips
its downstream, on_success/on_failure callbacks with a visible effect, async tasks and the seed
pipeline. It is run in-process (imported, one ``WorkflowBuilder``) and built with the real
``cloaca build`` CLI, loaded with ``PackageLoaderFactory`` and run in package workers. Final
context, per-task status, attempts, skip reasons, error types, callback effects and retry
spacing must agree.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloaca import TaskRegistry, WorkflowBuilder
from cloaca.execution.result import ExecutionResult
from cloaca.registry.loader import PackageLoaderFactory, register_package_tasks
from cloaca.registry.workers import WorkerPools

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[2] / "fixtures" / "parity_project"
PACKAGE = "parity-reference"
RAW = [
    {"id": 1, "name": "alpha", "value": 10.0},
    {"id": "two", "name": "beta", "value": 20.0},
    {"id": 3, "name": "gamma", "value": 30.0},
]
# nominal delays before retries 1 and 2 of "flaky": 200 ms, then x2 (exponential)
FLAKY_GAPS = (0.2, 0.4)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("parity-dist")
    script = Path(sys.executable).parent / "cloaca"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "cloaca.cli.build"]
    proc = subprocess.run(
        [*command, "build", str(PROJECT), "-o", str(out), "--no-cache"],
        capture_output=True,
        text=True,
        env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"},
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    (path,) = out.glob("*.cloaca")
    return path


@pytest.fixture
def pools() -> Iterator[WorkerPools]:
    pools = WorkerPools()
    yield pools
    pools.close()


def _context(state: Path) -> dict[str, Any]:
    state.mkdir()
    return {"raw_data": RAW, "go": False, "state_dir": str(state)}


def _in_process(state: Path) -> ExecutionResult:
    sys.path.insert(0, str(PROJECT / "src"))
    try:
        tasks = importlib.import_module("parity_ref.tasks")
    finally:
        sys.path.remove(str(PROJECT / "src"))
    builder = WorkflowBuilder("parity-in-process")
    for name in dir(tasks):
        if hasattr(getattr(tasks, name), "__cloaca_task__"):
            builder.add_task(getattr(tasks, name))
    return builder.build().run(_context(state))


def _packaged(archive: Path, staging: Path, pools: WorkerPools, state: Path) -> ExecutionResult:
    registry = TaskRegistry()
    loaded = PackageLoaderFactory(staging).load_path(archive)
    register_package_tasks(registry, loaded, pools=pools)
    workflow = WorkflowBuilder(PACKAGE).with_registry(registry).build()
    return workflow.run(_context(state))


def _outcome(result: ExecutionResult) -> dict[str, tuple[Any, ...]]:
    out = {}
    for key, rec in result.tasks.items():
        task_id = key.split("::", 1)[-1]
        reason = (rec.skip_reason or "").replace(f"{PACKAGE}::", "")
        error_type = rec.error.error_type if rec.error else None
        out[task_id] = (rec.status, rec.attempts, reason, error_type)
    return out


def _gaps(state: Path, name: str) -> list[float]:
    times = [float(t) for t in (state / f"{name}.attempts").read_text().split()]
    return [b - a for a, b in itertools.pairwise(times)]


def _effects(state: Path) -> dict[str, Any]:
    return {
        p.name: json.loads(p.read_text())
        for p in sorted(state.iterdir())
        if p.suffix in (".success", ".failure")
    }


def test_in_process_and_packaged_runs_agree(
    archive: Path, tmp_path: Path, pools: WorkerPools
) -> None:
    local = _in_process(tmp_path / "local")
    packaged = _packaged(archive, tmp_path / "staging", pools, tmp_path / "packaged")

    # what each task did, and that the reference really exercises every behaviour
    expected = {
        "fetch-data": ("Completed", 1, "", None),
        "validate-data": ("Completed", 1, "", None),
        "aggregate-data": ("Completed", 1, "", None),
        "generate-report": ("Completed", 1, "", None),
        "flaky": ("Completed", 3, "", None),
        "picky": ("Failed", 1, "", "ValueError"),
        "gated": ("Skipped", 0, "trigger rule false", None),
        "slow": ("Failed", 1, "", "TaskTimeoutError"),
        "after-slow": ("Skipped", 0, "upstream failed: slow", None),
        "enrich": ("Completed", 1, "", None),
    }
    assert _outcome(local) == expected
    assert _outcome(packaged) == expected

    assert packaged.final_context.to_dict() == {
        **local.final_context.to_dict(),
        "state_dir": str(tmp_path / "packaged"),
    }
    report = local.final_context["report"].splitlines()
    assert report[:5] == ["Records processed: 2", "Sum: 40.00", "Average: 20.00",
                          "Range: 10.00 - 30.00", "Validation errors: 1"]  # fmt: skip
    assert local.final_context["enriched"] is True and local.final_context["flaky_attempts"] == 3

    # callbacks ran with the same arguments: task id, error (type, task), context
    effects = {
        "flaky.success": {"attempts": 3},
        "slow.failure": {
            "is_str": True,
            "text": "TaskTimeoutError: timed out",
            "class": "TaskTimeoutError",
            "error_type": "TaskTimeoutError",
            "task_id": "slow",
        },
    }
    assert _effects(tmp_path / "local") == effects
    assert _effects(tmp_path / "packaged") == effects

    # retry spacing: the policy's delays, not the old manifest's fixed 1 s
    for state in (tmp_path / "local", tmp_path / "packaged"):
        gaps = _gaps(state, "flaky")
        assert len(gaps) == 2
        for gap, nominal in zip(gaps, FLAKY_GAPS, strict=True):
            assert nominal - 0.02 <= gap <= nominal + 0.5, (state.name, gaps)
        assert len(_gaps(state, "picky")) == 0  # "permanent problem" matches no pattern
