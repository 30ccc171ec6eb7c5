"""Parity, four ways: the reference notebook run in-kernel, isolated, packaged and on a server.

``tests/fixtures/parity.ipynb`` declares retries with a delay and exponential backoff, a trigger
rule that skips, a sub-second timeout and a plain failure (each skipping its downstream),
on_success/on_failure callbacks (sync and async) with a visible effect, a retry condition that
refuses, an async task that retries, a task taking its handle, a tuple and an infinity stored in
the context, and the seed pipeline. Its cells run in one real kernel, driven as JupyterLab drives it (``cellId`` metadata); then the
workflow runs

(a) in-kernel: ``%cloaca_run``;
(b) in a fresh kernel: ``%cloaca_run --isolated`` (real papermill);
(c) from a package: ``%cloaca_build``, loaded with ``PackageLoaderFactory`` and run by the engine
    in package workers;
(d) on a real ``cloacina-server`` on 127.0.0.1: ``%cloaca_run --server URL``.

Each run gets its own ``state_dir``, where tasks note their attempts' times and callbacks write
their effects. The four must agree on the final context, per-task status, attempts, skip
reasons, error types and messages, callback effects, and retry spacing (within a tolerance that
holds on a loaded 2-core machine; nothing is asserted about speed).
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any
from unittest import mock

import nbformat
import pytest

from cloaca import TaskRegistry, WorkflowBuilder
from cloaca.registry.loader import PackageLoaderFactory, register_package_tasks
from cloaca.registry.workers import WorkerPools
from cloaca_nb.result import result_to_dict
from tests.notebook.kernel import Kernel, kernel
from tests.server.support import ServerProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.kernel,
    pytest.mark.timeout(600),
    pytest.mark.xdist_group("notebook-parity"),
]

NOTEBOOK = Path(__file__).resolve().parents[2] / "fixtures" / "parity.ipynb"
NAME = "parity-notebook"
FRONT_ENDS = ("in-kernel", "isolated", "packaged", "server")
RAW = [
    {"id": 1, "name": "alpha", "value": 10.0},
    {"id": "two", "name": "beta", "value": 20.0},
    {"id": 3, "name": "gamma", "value": 30.0},
]
# nominal delays before retries 1 and 2 of "flaky": 200 ms, then x2 (exponential)
FLAKY_GAPS = (0.2, 0.4)
SUMMARY = """
import json
from cloaca_nb.result import result_to_dict
def _summary(res):
    print(json.dumps(result_to_dict(res.result)))
"""


def _params(state: Path) -> str:
    return f"-p go=false -p state_dir={state} -p 'raw_data={json.dumps(RAW)}'"


def _context(state: Path) -> dict[str, Any]:
    return {"go": False, "state_dir": str(state), "raw_data": RAW}


def _run_packaged(archive: Path, staging: Path, state: Path) -> dict[str, Any]:
    registry = TaskRegistry()
    pools = WorkerPools()
    try:
        loaded = PackageLoaderFactory(staging).load_path(archive)
        register_package_tasks(registry, loaded, pools=pools)
        workflow = WorkflowBuilder(NAME).with_registry(registry).build()
        return result_to_dict(workflow.run(_context(state)))
    finally:
        pools.close()


def _run_notebook(k: Kernel, base: Path, server: ServerProcess) -> dict[str, dict[str, Any]]:
    """Run the notebook's cells, then the workflow three ways in this kernel and once from the
    package it builds; each run's result as ``result_to_dict`` JSON."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            k.check(cell.source, cell.id)
    k.check(SUMMARY)
    state = {name: base / name for name in FRONT_ENDS}
    for path in state.values():
        path.mkdir()
    out: dict[str, dict[str, Any]] = {}
    run = k.check(f"res = %cloaca_run {_params(state['in-kernel'])} --no-widget\n_summary(res)")
    out["in-kernel"] = run.json()
    # an isolated run with a failed task raises IsolatedRunError; --out keeps the result
    iso = k.run(
        f"%cloaca_run --isolated {_params(state['isolated'])} --out iso "
        f"--workdir {base / 'isolated-work'} --timeout 120"
    )
    assert iso.status == "error" and iso.error is not None, iso
    assert iso.error["ename"] == "IsolatedRunError", iso.error
    out["isolated"] = k.check("_summary(iso)").json()
    k.check(f"built = %cloaca_build -o {base / 'dist'} --name {NAME}")
    (archive,) = (base / "dist").glob("*.cloaca")
    out["packaged"] = _run_packaged(archive, base / "staging", state["packaged"])
    remote = f"--server {server.url} --api-key {server.key} --name {NAME}"
    run = k.check(
        f"res = %cloaca_run {remote} {_params(state['server'])} --no-widget\n_summary(res)"
    )
    out["server"] = run.json()
    return out


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory, server: ServerProcess
) -> tuple[Path, dict[str, dict[str, Any]]]:
    """The four runs of the reference notebook (one kernel), and the base of their state dirs."""
    base = tmp_path_factory.mktemp("parity-notebook")
    with mock.patch.dict(os.environ, {"CLOACA_CACHE_DIR": str(base / "cache")}):
        with kernel(base) as k:
            return base, _run_notebook(k, base, server)


def _task_id(key: str) -> str:
    return key.split("::", 1)[-1]


def _outcome(result: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """Task id -> (status, attempts, skip reason, error type, error message)."""
    out = {}
    for key, rec in result["tasks"].items():
        err = rec["error"] or {}
        reason = rec["skip_reason"]
        if reason:
            reason = reason.replace(f"{NAME}::", "")
        out[_task_id(key)] = (
            rec["status"], rec["attempts"], reason, err.get("error_type"), err.get("message"),
        )  # fmt: skip
    return out


OVERFLOW = (
    "Context value for key 'ratio' holds inf, which JSON cannot represent. Store a finite "
    "number, None or a string instead."
)
EXPECTED = {
    "fetch-data": ("Completed", 1, None, None, None),
    "validate-data": ("Completed", 1, None, None, None),
    "aggregate-data": ("Completed", 1, None, None, None),
    "generate-report": ("Completed", 1, None, None, None),
    "flaky": ("Completed", 3, None, None, None),
    "gated": ("Skipped", 0, "trigger rule false", None, None),
    "slow": ("Failed", 1, None, "TaskTimeoutError", "timed out"),
    "after-slow": ("Skipped", 0, "upstream failed: slow", None, None),
    "broken": ("Failed", 1, None, "ValueError", "cannot publish 6 lines"),
    "publish": ("Skipped", 0, "upstream failed: broken", None, None),
    "enrich": ("Completed", 1, None, None, None),
    "picky": ("Failed", 1, None, "KeyError", "'permanent problem'"),
    "async-retry": ("Completed", 2, None, None, None),
    "shapes": ("Completed", 1, None, None, None),
    "shapes-seen": ("Completed", 1, None, None, None),
    "overflow": ("Failed", 1, None, "ContextValueError", OVERFLOW),
}


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_every_task_ends_the_same_way(
    runs: tuple[Path, dict[str, dict[str, Any]]], front_end: str
) -> None:
    _, results = runs
    result = results[front_end]
    assert result["status"] == "Failed"
    assert _outcome(result) == EXPECTED


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_final_context_is_the_same(
    runs: tuple[Path, dict[str, dict[str, Any]]], front_end: str
) -> None:
    base, results = runs
    context = results[front_end]["final_context"]
    assert context.pop("state_dir") == str(base / front_end)
    reference = dict(results["in-kernel"]["final_context"])
    reference.pop("state_dir", None)
    assert context == reference
    assert context["report"].splitlines() == [
        "Records processed: 2", "Sum: 40.00", "Average: 20.00", "Range: 10.00 - 30.00",
        "Validation errors: 1", "Record 2: invalid id 'two'",
    ]  # fmt: skip
    assert context["flaky_attempts"] == 3 and context["enriched"] is True
    assert context["async_retry"] == "ok"
    assert not {"gated_ran", "slow_done", "after_slow_ran", "published", "ratio"} & set(context)
    # the task's handle names it as declared; the deleted key stays deleted; the next task sees
    # the tuple as JSON carries it (a list) everywhere
    assert context["handle_task"] == "shapes" and "validated_records" not in context
    assert context["pair"] == [1, [2, [3]]] and context["pair_seen"] == ["list", "list"]


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_callbacks_and_retry_spacing_are_the_same(
    runs: tuple[Path, dict[str, dict[str, Any]]], front_end: str
) -> None:
    base, _ = runs
    state = base / front_end
    effects = {
        p.name: json.loads(p.read_text())
        for p in sorted(state.iterdir())
        if p.suffix in (".success", ".failure")
    }
    assert effects == {
        "async-retry.success": {"async": True},
        "flaky.success": {"attempts": 3},
        "slow.failure": {
            "is_str": True, "error_type": "TaskTimeoutError", "task_id": "slow",
        },
    }  # fmt: skip
    times = [float(t) for t in (state / "flaky.attempts").read_text().split()]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) == 2, gaps
    # the policy's delays (never shorter; later by at most 40% + 150 ms of scheduling noise)
    for gap, nominal in zip(gaps, FLAKY_GAPS, strict=True):
        assert nominal - 0.02 <= gap <= nominal * 1.4 + 0.15, (front_end, gaps)
    # "picky" fails with a message its retry condition does not accept: one attempt only
    assert len((state / "picky.attempts").read_text().split()) == 1
