"""The scheduler's side of recovery: an attempt lost with its worker (``WorkerLost``) runs again
under the task's recovery budget, not its retry policy (``task_recovered``); ``task_started`` is
sent when the body starts, not while the task waits for a worker; and retries after a failed
first attempt on the lane fast path still respect the retry policy."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from cloaca import Workflow
from cloaca.errors import WORKER_LOST, TaskExecutionError
from cloaca.execution import events as ev
from cloaca.execution.events import TaskEvent, report_started
from cloaca.execution.scheduler import execute_workflow
from cloaca.task import make_spec


def _losing(times: int) -> Any:
    calls: list[int] = []

    async def fn(ctx: Any) -> Any:
        calls.append(1)
        if len(calls) <= times:
            raise TaskExecutionError("worker killed", error_type=WORKER_LOST)
        ctx["done"] = len(calls)
        return ctx

    return fn


def _run(wf: Workflow, **kw: Any) -> tuple[Any, list[TaskEvent]]:
    events: list[TaskEvent] = []
    result = asyncio.run(execute_workflow(wf, on_event=events.append, **kw))
    return result, events


def test_lost_attempts_are_recovered_without_retries() -> None:
    wf = Workflow("lost", {"t": make_spec(_losing(2), id="t")})  # no retries at all
    result, events = _run(wf)
    assert result.status == "Completed" and result.final_context["done"] == 3
    assert result.tasks["t"].attempts == 3
    kinds = [(e.kind, e.attempt) for e in events if e.task_id == "t"]
    assert kinds == [
        (ev.TASK_STARTED, 1),
        (ev.TASK_RECOVERED, 1),
        (ev.TASK_STARTED, 2),
        (ev.TASK_RECOVERED, 2),
        (ev.TASK_STARTED, 3),
        (ev.TASK_COMPLETED, 3),
    ]


def test_used_up_recovery_budget_falls_back_to_the_retry_policy() -> None:
    wf = Workflow("lost", {"t": make_spec(_losing(5), id="t")})
    result, events = _run(wf, max_recoveries=2, recoveries={"t": 1})
    assert result.status == "Failed"
    err = result.tasks["t"].error
    assert err is not None and err.error_type == WORKER_LOST
    assert [e.kind for e in events if e.task_id == "t"].count(ev.TASK_RECOVERED) == 1
    retried = Workflow("lost", {"t": make_spec(_losing(2), id="t", retry_attempts=2)})
    result, _ = _run(retried, max_recoveries=1)
    assert result.status == "Completed" and result.tasks["t"].attempts == 3


def test_task_started_waits_for_the_body() -> None:
    began: list[float] = []

    async def waits_for_a_worker(ctx: Any) -> Any:
        await asyncio.sleep(0.2)  # a free worker appears
        began.append(time.time())
        report_started()
        ctx["ran"] = True
        return ctx

    waits_for_a_worker.reports_start = True  # type: ignore[attr-defined]

    async def never_gets_one(ctx: Any) -> Any:
        raise RuntimeError("the pool is closed")

    never_gets_one.reports_start = True  # type: ignore[attr-defined]
    wf = Workflow(
        "waits",
        {
            "w": make_spec(waits_for_a_worker, id="w"),
            "n": make_spec(never_gets_one, id="n", retry_attempts=1),
        },
    )
    result, events = _run(wf)
    assert result.tasks["w"].status == "Completed" and result.tasks["n"].status == "Failed"
    (started,) = [e for e in events if e.task_id == "w" and e.kind == ev.TASK_STARTED]
    assert started.at >= began[0]
    assert [e.kind for e in events if e.task_id == "n"] == [ev.TASK_FAILED]
    report_started()  # outside a run: nothing happens


def test_lane_retries_respect_the_retry_policy() -> None:
    calls: list[int] = []

    def boom(ctx: Any) -> Any:
        calls.append(1)
        raise ValueError("boom")

    def ok(ctx: Any) -> Any:
        return ctx

    specs = {
        "src": make_spec(ok, id="src"),
        "a": make_spec(ok, id="a", dependencies=["src"]),
        "boom": make_spec(boom, id="boom", dependencies=["src"], retry_attempts=2),
    }
    result, _ = _run(Workflow("lanes", specs))
    assert result.tasks["boom"].attempts == 2 and len(calls) == 2
