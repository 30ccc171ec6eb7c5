"""The scheduler's ``before_attempt`` gate: asked before every attempt on every path (inline,
fan-out lanes, retries, async tasks, timeouts), and a veto stops the run before the attempt."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cloaca import Workflow
from cloaca.execution import events as ev
from cloaca.execution.events import TaskEvent
from cloaca.execution.scheduler import AttemptVetoed, execute_workflow
from cloaca.task import make_spec


def _workflow(calls: list[str], flaky_failures: int = 1) -> Workflow:
    def step(name: str) -> Any:
        def fn(ctx: Any) -> Any:
            calls.append(name)
            if name == "flaky" and calls.count("flaky") <= flaky_failures:
                raise RuntimeError("transient")
            ctx[name] = True
            return ctx

        return fn

    async def async_step(ctx: Any) -> Any:
        calls.append("async")
        ctx["async"] = True
        return ctx

    specs = {
        "src": make_spec(step("src"), id="src"),
        "w1": make_spec(step("w1"), id="w1", dependencies=["src"]),
        "w2": make_spec(step("w2"), id="w2", dependencies=["src"]),
        "async": make_spec(async_step, id="async", dependencies=["src"]),
        "flaky": make_spec(
            step("flaky"),
            id="flaky",
            dependencies=["w1", "w2"],
            retry_attempts=3,
            retry_delay_ms=1,
        ),
        "last": make_spec(step("last"), id="last", dependencies=["flaky", "async"]),
    }
    return Workflow("gate_wf", specs)


@pytest.mark.parametrize("timeout", [None, 30.0])
@pytest.mark.parametrize("is_async", [False, True])
def test_gate_is_asked_before_every_attempt(timeout: float | None, is_async: bool) -> None:
    calls: list[str] = []
    asked: list[tuple[str, int]] = []

    def sync_gate(node: str, attempt: int) -> bool:
        asked.append((node, attempt))
        return True

    async def async_gate(node: str, attempt: int) -> bool:
        await asyncio.sleep(0)
        return sync_gate(node, attempt)

    result = asyncio.run(
        execute_workflow(
            _workflow(calls),
            default_timeout=timeout,
            before_attempt=async_gate if is_async else sync_gate,
        )
    )
    assert result.status == "Completed"
    assert sorted(asked) == sorted(
        [("src", 1), ("w1", 1), ("w2", 1), ("async", 1), ("flaky", 1), ("flaky", 2), ("last", 1)]
    )
    assert sorted(calls) == sorted(["src", "w1", "w2", "async", "flaky", "flaky", "last"])


def test_veto_stops_the_run_before_the_attempt_starts() -> None:
    calls: list[str] = []
    events: list[TaskEvent] = []

    def gate(node: str, attempt: int) -> bool:
        return not (node == "flaky" and attempt == 2)

    with pytest.raises(AttemptVetoed) as info:
        asyncio.run(execute_workflow(_workflow(calls), on_event=events.append, before_attempt=gate))
    assert (info.value.task_id, info.value.attempt) == ("flaky", 2)
    assert calls.count("flaky") == 1 and "last" not in calls
    started = [(e.task_id, e.attempt) for e in events if e.kind == ev.TASK_STARTED]
    assert ("flaky", 1) in started and ("flaky", 2) not in started


def test_no_gate_keeps_the_fast_paths() -> None:
    calls: list[str] = []
    result = asyncio.run(execute_workflow(_workflow(calls)))
    assert result.status == "Completed" and result.tasks["flaky"].attempts == 2


def test_vetoed_error_is_part_of_the_tree_and_pickles() -> None:
    import pickle

    from cloaca.errors import CloacaError

    err = AttemptVetoed(task_id="t", attempt=3)
    again = pickle.loads(pickle.dumps(err))
    assert isinstance(again, CloacaError) and (again.task_id, again.attempt) == ("t", 3)
    assert str(again) == "attempt 3 of task 't' was refused"
