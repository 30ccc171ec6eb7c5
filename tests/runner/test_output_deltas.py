"""Stored task outputs are deltas: history, final context and resume rebuild the same values
the scheduler produced, storage does not grow with tasks x context size, older rows (whole
outputs) stay readable."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import func, select, update

from cloaca import DefaultRunner, DefaultRunnerConfig, Workflow
from cloaca.conditions import context_value
from cloaca.execution import events as ev
from cloaca.execution.scheduler import execute_workflow
from cloaca.runner.recovery import plan_resume
from cloaca.storage.models import task_executions as te
from cloaca.task import make_spec

CONFIG = DefaultRunnerConfig(enable_cron_scheduling=False)


def _writer(key: str, drop: str | None = None) -> Any:
    def fn(ctx):  # type: ignore[no-untyped-def]
        ctx[key] = {"seen": sorted(k for k in ctx if not k.startswith("pad"))}
        ctx["n"] = ctx.get("n", 0) + 1
        if drop is not None and drop in ctx:
            del ctx[drop]
        return ctx

    fn.__name__ = f"write_{key}"
    return fn


def shapes() -> Workflow:
    """A chain, a diamond, a key deleted, and a join of three branches."""
    specs = {
        "a": make_spec(_writer("a"), id="a"),
        "b": make_spec(_writer("b"), id="b", dependencies=["a"]),
        "c": make_spec(_writer("c", drop="a"), id="c", dependencies=["a"]),
        "d": make_spec(_writer("d"), id="d", dependencies=["b", "c"]),
        "e": make_spec(_writer("e"), id="e", dependencies=["d"]),
        "f": make_spec(_writer("f"), id="f", dependencies=["a"]),
        "g": make_spec(_writer("g"), id="g", dependencies=["e", "f", "b"]),
    }
    return Workflow("deltas_shapes", specs)


def _boom(ctx):  # type: ignore[no-untyped-def]
    raise ValueError("boom")


def with_skips() -> Workflow:
    """A failed branch (its dependent skipped), a task skipped by its trigger rule, and tasks
    downstream of both that still run."""
    specs = {
        "a": make_spec(_writer("a"), id="a"),
        "bad": make_spec(_boom, id="bad", dependencies=["a"]),
        "after_bad": make_spec(_writer("after_bad"), id="after_bad", dependencies=["bad"]),
        "never": make_spec(
            _writer("never"),
            id="never",
            dependencies=["a"],
            trigger_rules=context_value("start", "Equals", 99),
        ),
        "b": make_spec(_writer("b"), id="b", dependencies=["never"]),
        "c": make_spec(_writer("c"), id="c", dependencies=["a", "never"]),
        "d": make_spec(_writer("d"), id="d", dependencies=["b", "c"]),
    }
    return Workflow("deltas_skips", specs)


def in_memory(wf: Workflow, initial: dict[str, Any], **sel: Any) -> dict[str, dict[str, Any]]:
    """Each task's output as the scheduler hands it out (``task_completed`` events)."""
    seen: dict[str, dict[str, Any]] = {}

    def on_event(e: Any) -> None:
        if e.kind == ev.TASK_COMPLETED:
            seen[e.task_id] = json.loads(json.dumps(e.context))

    asyncio.run(execute_workflow(wf, dict(initial), on_event=on_event, **sel))
    return seen


def stored_bytes(runner: DefaultRunner, eid: str) -> int:
    """Bytes of task output stored for one execution (both columns)."""
    size = func.coalesce(func.length(te.c.output), 0) + func.coalesce(
        func.length(te.c.output_delta), 0
    )
    with runner.store.read() as conn:
        return int(conn.scalar(select(func.sum(size)).where(te.c.execution_id == eid)) or 0)


@pytest.mark.parametrize(
    "selection", [{}, {"only": ["a", "c", "g"]}, {"start_from": "b"}], ids=["all", "only", "from"]
)
def test_history_rebuilds_the_outputs_the_scheduler_produced(
    sqlite_url: str, selection: dict[str, Any]
) -> None:
    wf = shapes()
    initial = {"pad": "x" * 5000, "start": 1}
    expected = in_memory(wf, initial, **selection)
    with DefaultRunner(sqlite_url, CONFIG) as runner:
        result = runner.execute(wf, initial, **selection)
        assert result.status == "Completed"
        record = runner.get_execution(result.execution_id)
        assert record is not None
        outputs = {t.task_id: t.output for t in record.tasks if t.status == "Completed"}
        assert outputs == expected
        assert record.final_context == result.final_context.to_dict()
        with runner.store.read() as conn:
            whole = conn.scalar(
                select(func.count()).where(
                    te.c.execution_id == result.execution_id, te.c.output.is_not(None)
                )
            )
        assert whole == 0  # nothing stores the whole context again


def test_outputs_rebuilt_around_failed_and_skipped_tasks(sqlite_url: str) -> None:
    wf = with_skips()
    initial = {"pad": "z" * 300, "start": 1}
    expected = in_memory(wf, initial)
    assert set(expected) == {"a", "b", "c", "d"}
    with DefaultRunner(sqlite_url, CONFIG) as runner:
        result = runner.execute(wf, initial)
        assert result.status == "Failed"
        record = runner.get_execution(result.execution_id)
        assert record is not None
        outputs = {t.task_id: t.output for t in record.tasks if t.output is not None}
        assert outputs == expected
        assert record.final_context == result.final_context.to_dict()


def test_storage_per_execution_does_not_grow_with_context_size(sqlite_url: str) -> None:
    n = 40
    specs = {"t0": make_spec(_writer("t0"), id="t0")}
    for i in range(1, n):
        specs[f"t{i}"] = make_spec(_writer(f"t{i}"), id=f"t{i}", dependencies=[f"t{i - 1}"])
    wf = Workflow("deltas_chain", specs)
    sizes = {}
    with DefaultRunner(sqlite_url, CONFIG) as runner:
        for pad in (1_000, 100_000):
            result = runner.execute(wf, {"pad": "p" * pad})
            assert result.status == "Completed"
            sizes[pad] = stored_bytes(runner, result.execution_id)
            rec = runner.get_execution(result.execution_id)
            assert rec is not None and rec.tasks[-1].output is not None
            assert rec.tasks[-1].output["pad"] == "p" * pad
    # 100x the context, same task outputs stored (whole outputs would be > n * 100 kB)
    assert sizes[100_000] == sizes[1_000]
    assert sizes[100_000] < 100_000


def test_rows_with_whole_outputs_stay_readable_and_resumable(sqlite_url: str) -> None:
    wf = shapes()
    initial = {"pad": "y" * 100, "start": 2}
    expected = in_memory(wf, initial)
    with DefaultRunner(sqlite_url, CONFIG) as runner:
        result = runner.execute(wf, initial)
        eid = result.execution_id
        assert eid is not None
        # rewrite the rows the way revisions before 0004 stored them
        with runner.store.write() as conn:
            for node, out in expected.items():
                conn.execute(
                    update(te)
                    .where(te.c.execution_id == eid, te.c.task_id == node)
                    .values(output=json.dumps(out), output_delta=None, upstream=None)
                )
        record = runner.get_execution(eid)
        assert record is not None
        assert {t.task_id: t.output for t in record.tasks} == expected
        with runner.store.read() as conn:
            rows = [
                dict(r._mapping) for r in conn.execute(select(te).where(te.c.execution_id == eid))
            ]
        plan = plan_resume(wf, initial, rows)
        assert set(plan.completed) == set(expected)
        assert plan.completed["c"].removed == ("a",)
        assert plan.completed["g"].delta["g"] == expected["g"]["g"]
