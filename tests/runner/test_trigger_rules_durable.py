"""A fallback (``task_failed`` rule) behaves the same in the durable runner as in a direct run:
it runs after its dependency failed, and its history row says so."""

from __future__ import annotations

from typing import Any

from cloaca import DefaultRunner, DefaultRunnerConfig, Workflow, task_failed
from cloaca.task import make_spec


def _fail(ctx: Any) -> Any:
    raise ConnectionError("primary source down")


def _cached(ctx: Any) -> Any:
    ctx["data"] = "cached"
    return ctx


def _plain(ctx: Any) -> Any:
    ctx["plain"] = True
    return ctx


def test_fallback_runs_in_the_durable_runner(sqlite_url: str) -> None:
    specs = {
        "fetch": make_spec(_fail, id="fetch", retry_attempts=1),
        "cached": make_spec(
            _cached, id="cached", dependencies=["fetch"], trigger_rules=task_failed("fetch")
        ),
        "plain": make_spec(_plain, id="plain", dependencies=["fetch"]),
    }
    cfg = DefaultRunnerConfig(enable_cron_scheduling=False)
    with DefaultRunner(sqlite_url, cfg) as runner:
        runner.register_workflow(Workflow("rt_fallback", specs))
        result = runner.execute("rt_fallback")
        eid = result.execution_id
    with DefaultRunner(sqlite_url, cfg) as reader:  # what the database recorded
        stored = reader.wait(eid, timeout=30)
    for r in (result, stored):
        statuses = {t: r.tasks[t].status for t in ("fetch", "cached", "plain")}
        assert statuses == {"fetch": "Failed", "cached": "Completed", "plain": "Skipped"}
        assert r.tasks["plain"].skip_reason == "upstream failed: fetch"
        assert r.final_context["data"] == "cached"
