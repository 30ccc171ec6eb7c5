"""The Dask executor on a real LocalCluster (two worker processes on 127.0.0.1): fan-out over
both workers, parity of results and errors with local execution, the durable runner with
``executor="dask"``, and packaged tasks staged by fingerprint on the Dask workers."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cloaca import DefaultRunner, DefaultRunnerConfig, TaskRegistry, Workflow, WorkflowBuilder
from cloaca.errors import ExecutorError
from cloaca.execution.executors import dask_worker as dw
from cloaca.execution.executors import make_executor
from cloaca.execution.executors.archives import register_archive
from cloaca.execution.executors.dask import DaskExecutor, connect
from cloaca.execution.result import ExecutionResult
from cloaca.execution.scheduler import execute_workflow
from cloaca.registry.loader import PackageLoaderFactory
from cloaca.registry.tasks import register_package_tasks
from cloaca.registry.workers import WorkerPools
from cloaca.task import make_spec
from tests.execution import dask_tasks as t
from tests.registry.conftest import python_archive

pytestmark = pytest.mark.xdist_group("dask")
CONFIG = DefaultRunnerConfig(enable_cron_scheduling=False)


def fan_out(width: int = 4) -> Workflow:
    specs = {f"part{i}": make_spec(t.where(i), id=f"part{i}") for i in range(width)}
    return Workflow("dask_fan_out", specs)


def branches() -> Workflow:
    specs = {
        "seed": make_spec(t.seed, id="seed"),
        "left": make_spec(t.left, id="left", dependencies=["seed"]),
        "right": make_spec(t.right, id="right", dependencies=["seed"]),
        "async": make_spec(t.async_task, id="async", dependencies=["seed"]),
        "join": make_spec(t.join, id="join", dependencies=["left", "right", "async"]),
        "flaky": make_spec(t.flaky, id="flaky", dependencies=["join"], retry_attempts=2),
        "boom": make_spec(t.boom, id="boom", dependencies=["seed"], retry_attempts=2),
        "after_boom": make_spec(t.join, id="after_boom", dependencies=["boom"]),
        "not_json": make_spec(t.not_json, id="not_json", dependencies=["seed"], retry_attempts=1),
    }
    return Workflow("dask_branches", specs)


def outcome(result: ExecutionResult) -> dict[str, Any]:
    """Everything a run records, minus timings and tracebacks."""
    return {
        "status": result.status,
        "context": result.final_context.to_dict(),
        "tasks": {
            node: (
                rec.status,
                rec.attempts,
                rec.error.error_type if rec.error else None,
                rec.error.message if rec.error else None,
                rec.skip_reason,
            )
            for node, rec in result.tasks.items()
        },
    }


def test_fan_out_runs_on_both_workers(address: str) -> None:
    with DaskExecutor(address) as executor:
        result = asyncio.run(execute_workflow(fan_out(), caller=executor, max_concurrency=4))
        # each attempt's at-most-once marker is removed from the scheduler afterwards
        deadline = time.monotonic() + 10
        while executor.client.list_datasets() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not executor.client.list_datasets()
    assert result.status == "Completed"
    seen = {result.final_context[f"w{i}"] for i in range(4)}
    assert len(seen) == 2


def test_results_and_errors_match_local_execution(address: str, tmp_path: Path) -> None:
    local = asyncio.run(execute_workflow(branches(), {"marker": str(tmp_path / "local")}))
    with DaskExecutor(address) as executor:
        remote = asyncio.run(
            execute_workflow(branches(), {"marker": str(tmp_path / "dask")}, caller=executor)
        )
    expected, got = outcome(local), outcome(remote)
    expected["context"].pop("marker")
    got["context"].pop("marker")
    assert got == expected
    # Cloacina's fan-in merge: the later dependency's value wins, even one passed through
    # unchanged ("async" is join's last dependency and carries seed's value)
    assert got["context"]["shared"] == "seed"
    assert got["tasks"]["flaky"][:2] == ("Completed", 2)
    assert got["tasks"]["boom"][:4] == ("Failed", 2, "ValueError", "boom with n=1")
    assert got["tasks"]["after_boom"][0] == "Skipped"
    assert got["tasks"]["not_json"][2] == "ContextValueError"
    boom = remote.tasks["boom"].error
    assert boom is not None and boom.task_id == "boom"
    assert boom.traceback is not None and "in boom" in boom.traceback


def test_durable_runner_with_executor_dask(address: str, sqlite_url: str) -> None:
    config = DefaultRunnerConfig(
        enable_cron_scheduling=False, executor="dask", dask_scheduler=address
    )
    with DefaultRunner(sqlite_url, config) as runner:
        assert isinstance(runner.executor, DaskExecutor)
        ok = runner.execute(fan_out())
        failed = runner.execute(branches(), {"marker": str(Path(sqlite_url[10:]).parent / "m")})
        stored = runner.get_execution(failed.execution_id or "")
    assert ok.status == "Completed" and len({ok.final_context[f"w{i}"] for i in range(4)}) == 2
    assert failed.status == "Failed"
    assert stored is not None
    rows = {r.task_id: r for r in stored.tasks}
    assert (rows["flaky"].status, rows["flaky"].attempts) == ("Completed", 2)
    assert (rows["boom"].status, rows["boom"].attempts, rows["boom"].error_type) == (
        "Failed",
        2,
        "ValueError",
    )
    assert rows["boom"].traceback is not None and "in boom" in rows["boom"].traceback
    assert rows["after_boom"].status == "Skipped"


PACKAGE_SOURCES = {
    "pkg/__init__.py": "",
    "pkg/tasks.py": """
        import os

        def start(context):
            context["values"] = [1, 2, 3]
            return context

        def double(context):
            context["doubled"] = [v * 2 for v in context["values"]]
            context["pid"] = os.getpid()
            return context

        def total(context):
            context["total"] = sum(context["doubled"])
            return context

        def fail(context):
            raise KeyError("no such thing")
    """,
}
PACKAGE_TASKS = [
    {"id": "start", "function": "pkg.tasks:start"},
    {"id": "double", "function": "pkg.tasks:double", "dependencies": ["start"]},
    {"id": "total", "function": "pkg.tasks:total", "dependencies": ["double"]},
    {"id": "fail", "function": "pkg.tasks:fail", "dependencies": ["start"]},
]


def test_packaged_workflow_on_the_cluster_matches_local(address: str, tmp_path: Path) -> None:
    data = python_archive("dask-pkg", PACKAGE_SOURCES, PACKAGE_TASKS)
    loaded = PackageLoaderFactory(tmp_path / "staging").load(data)
    registry = TaskRegistry()
    with WorkerPools() as pools:
        register_package_tasks(registry, loaded, pools=pools)
        workflow = WorkflowBuilder("dask_pkg").with_registry(registry).build()
        local = asyncio.run(execute_workflow(workflow))
        (tmp_path / "pkg.cloaca").write_bytes(data)
        register_archive(loaded, tmp_path / "pkg.cloaca")  # by path: read when first shipped
        with DaskExecutor(address) as executor:
            remote = asyncio.run(execute_workflow(workflow, caller=executor))
            again = asyncio.run(execute_workflow(workflow, caller=executor))
            client = executor.client
            shipped = client.run(lambda: sorted(dw._archives))
            imported = client.run(lambda: "pkg" in sys.modules or "pkg.tasks" in sys.modules)
            staged = client.run(lambda: {fp: str(p.root) for fp, p in dw._staged.items()})
    assert remote.status == local.status == "Failed"
    local_ctx, remote_ctx = local.final_context.to_dict(), remote.final_context.to_dict()
    assert remote_ctx.pop("pid") != local_ctx.pop("pid")
    assert remote_ctx == local_ctx and remote_ctx["total"] == 12
    assert outcome(remote)["tasks"] == outcome(local)["tasks"]
    err = remote.tasks["dask-pkg::fail"].error
    assert err is not None and (err.error_type, err.task_id) == ("KeyError", "dask-pkg::fail")
    assert err.traceback is not None and "fail" in err.traceback
    assert again.final_context["total"] == 12
    # every Dask worker holds the archive once, package code stays out of its process
    assert all(v == [loaded.fingerprint] for v in shipped.values())
    assert not any(imported.values())
    assert all(
        Path(root).parent.name == "cloaca-packages" for s in staged.values() for root in s.values()
    )


def test_packaged_task_without_its_archive_is_a_clear_error(address: str, tmp_path: Path) -> None:
    data = python_archive("dask-unknown", PACKAGE_SOURCES, PACKAGE_TASKS[:1])
    loaded = PackageLoaderFactory(tmp_path / "staging").load(data)
    registry = TaskRegistry()
    with WorkerPools() as pools:
        register_package_tasks(registry, loaded, pools=pools)
        workflow = WorkflowBuilder("dask_unknown").with_registry(registry).build()
        with DaskExecutor(address) as executor:
            result = asyncio.run(execute_workflow(workflow, caller=executor))
    err = result.tasks["dask-unknown::start"].error
    assert err is not None and err.error_type == "ExecutorError"
    assert "register_archive" in err.message


def test_executor_settings_are_checked() -> None:
    assert make_executor("local", None) is None
    with pytest.raises(ValueError, match="Did you mean 'dask'"):
        make_executor("dusk", "tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match="needs dask_scheduler"):
        make_executor("dask", None)
    with pytest.raises(ExecutorError) as info:
        connect("tcp://127.0.0.1:1", timeout=0.5)
    assert info.value.address == "tcp://127.0.0.1:1"
    assert "dask scheduler" in str(info.value)


def test_server_flag_selects_the_dask_executor(tmp_path: Path) -> None:
    import argparse

    from cloaca.cli.cloacina.server import _config, add_start_arguments

    parser = argparse.ArgumentParser()
    add_start_arguments(parser)
    base = ["--home", str(tmp_path)]
    local = _config(parser.parse_args(base))
    remote = _config(parser.parse_args([*base, "--dask-scheduler", "tcp://127.0.0.1:8786"]))
    assert (local.runner.executor, local.runner.dask_scheduler) == ("local", None)
    assert (remote.runner.executor, remote.runner.dask_scheduler) == (
        "dask",
        "tcp://127.0.0.1:8786",
    )


NOTEBOOK_CELL = """
from cloaca import task

@task(id="nb_where")
def nb_where(context):
    from distributed import get_worker
    context["worker"] = get_worker().address
    context["n"] = context.get("n", 0) + 1
    return context
"""


def test_notebook_magic_runs_cells_on_the_cluster(address: str, ip: Any, cell: Any) -> None:
    cell(NOTEBOOK_CELL)
    result = ip.run_line_magic("cloaca_run", f"--dask {address} --no-widget -p n=41")
    assert result.status == "Completed"
    assert result.final_context["n"] == 42
    assert result.final_context["worker"].startswith("tcp://127.0.0.1:")
