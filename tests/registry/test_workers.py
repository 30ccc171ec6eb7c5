"""Python tasks in worker processes: reuse, isolation, errors, crashes and timeouts."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from cloaca import Context, TaskRegistry, WorkflowBuilder
from cloaca.errors import TaskExecutionError, TaskTimeoutError, WorkerError
from cloaca.registry.loader import PackageLoaderFactory, register_package_tasks
from cloaca.registry.workers import WorkerPool, WorkerPools

from .conftest import TOOLBOX, TOOLBOX_VENDOR, python_archive, toolbox_task


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def toolbox(
    factory: PackageLoaderFactory, pools: WorkerPools, tasks: list[dict[str, Any]]
) -> tuple[TaskRegistry, WorkerPool]:
    loaded = factory.load(python_archive("toolbox", TOOLBOX, tasks, vendor=TOOLBOX_VENDOR))
    registry = TaskRegistry()
    register_package_tasks(registry, loaded, pools=pools)
    return registry, pools.pool_for(loaded)


CHAIN = [
    toolbox_task("first", "record_pid"),
    toolbox_task("second", "record_pid", dependencies=["first"]),
    toolbox_task("inc", "add_one", dependencies=["second"]),
    toolbox_task("double", "async_double", dependencies=["inc"]),
]


async def test_one_warm_worker_serves_every_task_and_execution(
    factory: PackageLoaderFactory, pools: WorkerPools
) -> None:
    registry, pool = toolbox(factory, pools, CHAIN)
    workflow = WorkflowBuilder().with_registry(registry).build()
    first = await workflow.execute(Context({"n": 1}))
    assert first["n"] == 4  # (1 + 1) * 2, the async task awaited in the worker
    assert len(set(first["pids"])) == 1
    second = await workflow.execute(Context({"n": 5}))
    assert second["n"] == 12
    assert second["pids"] == first["pids"]
    # a blocking run (its own event loop in another thread) reuses the same worker too
    third = workflow.run({"n": 0})
    assert third.final_context["pids"] == first["pids"]
    assert pool.pids == first["pids"][:1]
    assert pool.spawned == 1
    assert first["pids"][0] != os.getpid()


async def test_task_error_carries_type_message_and_worker_traceback(
    factory: PackageLoaderFactory, pools: WorkerPools
) -> None:
    registry, pool = toolbox(
        factory, pools, [*CHAIN, toolbox_task("needs", "needs_key", dependencies=["double"])]
    )
    workflow = WorkflowBuilder().with_registry(registry).build()
    with pytest.raises(TaskExecutionError) as info:
        await workflow.execute(Context({"n": 1}))
    err = info.value
    assert err.task_id == "toolbox::needs"
    assert err.error_type == "KeyError"
    assert "missing_key" in err.message
    assert err.traceback is not None and "in needs_key" in err.traceback
    assert "src/pkg/tasks.py" in err.traceback
    assert "worker_main" not in err.traceback
    assert "KeyError" in str(err) and "missing_key" in str(err)
    assert len(pool.pids) == 1  # a task error does not cost the worker


async def test_worker_exit_fails_the_task_and_the_next_task_gets_a_fresh_worker(
    factory: PackageLoaderFactory, pools: WorkerPools
) -> None:
    registry, _ = toolbox(
        factory,
        pools,
        [
            toolbox_task("first", "record_pid"),
            toolbox_task("die", "exit_hard", dependencies=["first"]),
        ],
    )
    result = await WorkflowBuilder().with_registry(registry).build().arun()
    assert result.status == "Failed"
    old_pid = result.final_context["pids"][0]
    err = result.tasks["toolbox::die"].error
    assert err is not None
    assert err.error_type == "WorkerError"
    assert "toolbox" in str(err) and "exited with status 3" in str(err)
    assert "next task gets a fresh worker" in str(err)
    assert not alive(old_pid)
    again = await WorkflowBuilder().with_registry(registry).only_tasks(["first"]).build().execute()
    assert again["pids"][0] != old_pid


async def test_segfault_in_package_code(factory: PackageLoaderFactory, pools: WorkerPools) -> None:
    registry, _ = toolbox(factory, pools, [toolbox_task("crash", "segfault")])
    result = await WorkflowBuilder().with_registry(registry).build().arun()
    err = result.tasks["toolbox::crash"].error
    assert err is not None and err.error_type == "WorkerError"
    assert "SIGSEGV" in str(err)
    assert err.traceback is not None and "Segmentation fault" in err.traceback  # faulthandler
    assert "segfault" in err.traceback


async def test_timeout_kills_the_worker(factory: PackageLoaderFactory, pools: WorkerPools) -> None:
    registry, pool = toolbox(
        factory,
        pools,
        [
            toolbox_task("first", "record_pid"),
            toolbox_task("slow", "sleepy", dependencies=["first"], timeout_seconds=1),
        ],
    )
    result = await WorkflowBuilder().with_registry(registry).build().arun()
    err = result.tasks["toolbox::slow"].error
    assert isinstance(err, TaskTimeoutError)
    old_pid = result.final_context["pids"][0]
    assert not alive(old_pid)
    assert pool.pids == []
    again = await WorkflowBuilder().with_registry(registry).only_tasks(["first"]).build().execute()
    assert again["pids"][0] != old_pid


async def test_stdout_prints_do_not_break_the_protocol(
    factory: PackageLoaderFactory, pools: WorkerPools, caplog: pytest.LogCaptureFixture
) -> None:
    registry, _ = toolbox(factory, pools, [toolbox_task("chatty", "chatty")])
    caplog.set_level("INFO", logger="cloaca.registry.workers")
    out = await WorkflowBuilder().with_registry(registry).build().execute()
    assert out["chatty"] is True
    for _ in range(100):  # the stderr pump is a thread: give it a moment
        if "hello from a task on stdout" in caplog.text:
            break
        await asyncio.sleep(0.02)
    assert "hello from a task on stdout" in caplog.text


@pytest.mark.parametrize(
    ("fn", "error_type", "fragment"),
    [
        ("bad_output", "ContextValueError", "'when'"),
        ("calls_exit", "SystemExit", "4"),
    ],
)
async def test_errors_that_keep_the_worker(
    factory: PackageLoaderFactory, pools: WorkerPools, fn: str, error_type: str, fragment: str
) -> None:
    registry, pool = toolbox(
        factory, pools, [toolbox_task("first", "record_pid"), toolbox_task("t", fn)]
    )
    out = await WorkflowBuilder().with_registry(registry).only_tasks(["first"]).build().execute()
    with pytest.raises(TaskExecutionError) as info:
        await WorkflowBuilder().with_registry(registry).only_tasks(["t"]).build().execute()
    assert info.value.error_type == error_type
    assert fragment in info.value.message
    assert pool.pids == out["pids"]


async def test_worker_environment_is_the_package_s(
    factory: PackageLoaderFactory, pools: WorkerPools
) -> None:
    registry, _ = toolbox(factory, pools, [toolbox_task("env", "environment")])
    out = await WorkflowBuilder().with_registry(registry).build().execute()
    assert out["httpx"] == "vendored-fake"  # vendor/ shadows the host's real httpx
    src, vendor = (Path(p) for p in out["sys_path_head"])
    assert (src.name, vendor.name) == ("src", "vendor")
    assert out["has_pytest"] is False  # nothing of the host's environment leaks in


async def test_handle_and_plain_dict_returns(
    factory: PackageLoaderFactory, pools: WorkerPools
) -> None:
    registry, _ = toolbox(
        factory,
        pools,
        [toolbox_task("h", "with_handle"), toolbox_task("d", "returns_dict", dependencies=["h"])],
    )
    result = await WorkflowBuilder().with_registry(registry).build().arun({"keep": 1})
    # the handle names the task as declared (as in-process), not by the registry's key
    assert result.tasks["toolbox::h"].delta == {"handle_task": "h"}
    assert result.tasks["toolbox::d"].removed == ("keep", "handle_task")


async def test_async_callbacks_are_awaited_in_the_worker(
    factory: PackageLoaderFactory, pools: WorkerPools, tmp_path: Path
) -> None:
    noted = {"on_success": "pkg.tasks:async_noted", "on_failure": "pkg.tasks:async_noted"}
    registry, _ = toolbox(
        factory,
        pools,
        [toolbox_task("ok", "add_one", **noted), toolbox_task("bad", "needs_key", **noted)],
    )
    notes_dir = tmp_path / "notes"
    notes_dir.mkdir()
    result = (
        await WorkflowBuilder()
        .with_registry(registry)
        .build()
        .arun({"n": 1, "notes": str(notes_dir)})
    )
    assert result.tasks["toolbox::bad"].status == "Failed"
    notes = {p.name: json.loads(p.read_text()) for p in notes_dir.iterdir()}
    assert notes == {"ok.success": [], "bad.failure": ["ErrorText"]}  # a str, as upstream


async def test_two_packages_with_a_utils_module_do_not_collide(
    factory: PackageLoaderFactory, pools: WorkerPools
) -> None:
    registry = TaskRegistry()
    for side in ("left", "right"):
        sources = {
            "utils.py": f'SIDE = "{side}"\n',
            f"{side}_tasks.py": f"""
                import utils

                def which(context):
                    context["{side}"] = utils.SIDE
                    return context
            """,
        }
        task = {"id": "which", "function": f"{side}_tasks:which"}
        loaded = factory.load(python_archive(side, sources, [task], entry=f"{side}_tasks"))
        register_package_tasks(registry, loaded, pools=pools)
    out = await WorkflowBuilder().with_registry(registry).build().execute()
    assert (out["left"], out["right"]) == ("left", "right")
    assert "utils" not in sys.modules


async def test_parallel_tasks_of_one_package_get_their_own_workers(
    factory: PackageLoaderFactory, pools: WorkerPools
) -> None:
    tasks = [toolbox_task(f"branch{i}", "record_pid") for i in range(3)]
    tasks.append(toolbox_task("join", "add_one", dependencies=[t["id"] for t in tasks]))
    registry, pool = toolbox(factory, pools, tasks)
    result = await WorkflowBuilder().with_registry(registry).build().arun({"n": 0})
    assert result.status == "Completed", result.error_message
    # parallel branches left their writes alone: each branch's output came back through JSON
    assert result.final_context["n"] == 1
    assert pool.spawned >= 1 and len(pool.pids) <= pool.max_workers


async def test_a_closed_pool_refuses_work(
    factory: PackageLoaderFactory, pools: WorkerPools
) -> None:
    registry, pool = toolbox(factory, pools, [toolbox_task("first", "record_pid")])
    await WorkflowBuilder().with_registry(registry).build().execute()
    pids = pool.pids
    pool.close()
    assert not any(alive(p) for p in pids)
    with pytest.raises(WorkerError, match="closed"):
        await pool.run("toolbox::first", "pkg.tasks:record_pid", {})


async def test_waiters_share_a_single_worker(factory: PackageLoaderFactory, staging: Path) -> None:
    loaded = factory.load(python_archive("toolbox", TOOLBOX, CHAIN))
    with WorkerPools(max_workers=1) as one:
        pool = one.pool_for(loaded)
        outs = await asyncio.gather(
            *(pool.run(f"t{i}", "pkg.tasks:record_pid", {}) for i in range(6))
        )
        assert len({o["pids"][0] for o in outs}) == 1
        assert pool.spawned == 1


async def test_max_tasks_per_worker_gives_a_fresh_interpreter_per_task(
    factory: PackageLoaderFactory, staging: Path
) -> None:
    loaded = factory.load(python_archive("toolbox", TOOLBOX, CHAIN))
    registry = TaskRegistry()
    with WorkerPools(max_tasks_per_worker=1) as fresh:
        register_package_tasks(registry, loaded, pools=fresh)
        out = await WorkflowBuilder().with_registry(registry).build().execute(Context({"n": 1}))
        assert out["n"] == 4
        assert len(set(out["pids"])) == 2
        assert not any(alive(p) for p in out["pids"])
        assert fresh.pool_for(loaded).spawned == 4


async def test_prestart_warms_a_worker_before_the_first_task(
    factory: PackageLoaderFactory, pools: WorkerPools
) -> None:
    loaded = factory.load(python_archive("toolbox", TOOLBOX, CHAIN))
    registry = TaskRegistry()
    register_package_tasks(registry, loaded, pools=pools, prestart=True)
    (pid,) = pools.pool_for(loaded).pids
    out = await WorkflowBuilder().with_registry(registry).only_tasks(["first"]).build().execute()
    assert out["pids"] == [pid]
