"""Durable runner (SQLite file) next to the in-process runner, in the same run.

Measures per-task overhead for a chain of 100 no-op tasks and a fan-out 1 -> 100 -> 1, and
executions per second for a 3-task workflow; prints both runners side by side with the
ratio. When a PostgreSQL server answers ($CLOACA_TEST_POSTGRES_URL, default
``postgresql://postgres@127.0.0.1:5432/test``) it also prints the durable runner's per-task cost
there without and with per-attempt claims (``claim_attempts``, on by default on PostgreSQL).
Run ``python -m benchmarks.bench_runner`` (or ``make bench``).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloaca import DefaultRunner, DefaultRunnerConfig, Workflow
from cloaca.task import make_spec


def _noop(context: Any) -> Any:
    return context


def _specs(edges: dict[str, list[str]]) -> dict[str, Any]:
    return {tid: make_spec(_noop, id=tid, dependencies=deps) for tid, deps in edges.items()}


def chain(n: int = 100) -> Workflow:
    """``t0 -> t1 -> ... -> t{n-1}``."""
    edges = {f"t{i}": ([f"t{i - 1}"] if i else []) for i in range(n)}
    return Workflow(f"bench_chain_{n}", _specs(edges))


def fan_out(n: int = 100) -> Workflow:
    """``src -> (w0 .. w{n-1}) -> sink``."""
    edges: dict[str, list[str]] = {"src": []}
    edges.update({f"w{i}": ["src"] for i in range(n)})
    edges["sink"] = [f"w{i}" for i in range(n)]
    return Workflow(f"bench_fan_{n}", _specs(edges))


def small() -> Workflow:
    """Three tasks in a chain: a typical tiny workflow, for executions per second."""
    return Workflow("bench_small", _specs({"a": [], "b": ["a"], "c": ["b"]}))


def _best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) if len(times) < 5 else statistics.median(times)


def _rate(fn: Callable[[], Any], seconds: float) -> float:
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        count += 1
    return count / (time.perf_counter() - t0)


def measure(repeat: int = 7, rate_seconds: float = 2.0) -> list[tuple[str, float, float, float]]:
    """Return rows ``(label, in_process, durable, durable_without_task_timeout)``.

    ``durable`` uses the default config (``task_timeout_seconds=300``: every task runs in a
    worker thread so it can be timed out); the last column sets no task timeout, like the
    in-process runner, so sync tasks of a chain run inline in the scheduler's thread.
    """
    configs = [
        DefaultRunnerConfig(enable_cron_scheduling=False),
        DefaultRunnerConfig(enable_cron_scheduling=False, task_timeout_seconds=None),
    ]
    workflows = [chain(), fan_out(), small()]
    inproc: list[float] = []
    for wf in workflows[:2]:
        wf.run()
        inproc.append(_best(lambda wf=wf: wf.run(), repeat) / len(wf.tasks) * 1000)
    inproc.append(_rate(lambda: workflows[2].run(), rate_seconds))
    durable: list[list[float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, config in enumerate(configs):
            url = f"sqlite:///{Path(tmp) / f'bench{i}.db'}"
            column = []
            with DefaultRunner(url, config) as runner:
                for wf in workflows[:2]:
                    runner.execute(wf)  # warm up (registration, first connection)
                    best = _best(lambda wf=wf: runner.execute(wf), repeat)
                    column.append(best / len(wf.tasks) * 1000)
                runner.execute(workflows[2])
                column.append(_rate(lambda: runner.execute(workflows[2]), rate_seconds))
            durable.append(column)
    labels = [
        "chain of 100: ms per task",
        "fan-out 1->100->1: ms per task",
        "3-task workflow: executions/s",
    ]
    return [(labels[i], inproc[i], durable[0][i], durable[1][i]) for i in range(3)]


PG_URL = os.environ.get("CLOACA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def measure_claims(url: str = PG_URL, repeat: int = 5) -> list[tuple[str, float, float]]:
    """Return rows ``(label, without_claims, with_claims)`` in ms per task on PostgreSQL
    (default config, ``task_timeout_seconds=300``), in a scratch schema dropped afterwards."""
    from sqlalchemy import text

    from cloaca.storage import Store

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    config = DefaultRunnerConfig(enable_cron_scheduling=False)
    workflows = [chain(), fan_out()]
    columns: list[list[float]] = []
    try:
        for claim in (False, True):
            column = []
            with DefaultRunner(url, config, schema=schema, claim_attempts=claim) as runner:
                for wf in workflows:
                    runner.execute(wf)
                    best = _best(lambda wf=wf: runner.execute(wf), repeat)
                    column.append(best / len(wf.tasks) * 1000)
            columns.append(column)
    finally:
        store = Store(url, migrate=False)
        with store.write() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        store.dispose()
    labels = ["chain of 100: ms per task", "fan-out 1->100->1: ms per task"]
    return [(labels[i], columns[0][i], columns[1][i]) for i in range(2)]


def _postgres_reason(url: str) -> str | None:
    try:
        import psycopg

        with psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3
        ):
            return None
    except Exception as exc:
        return f"no PostgreSQL server at {url} ({type(exc).__name__})"


def main(argv: list[str] | None = None) -> int:
    """Print the table: in-process | durable SQLite (ratio) | durable, no task timeout (ratio)."""
    rows = measure()
    out = sys.stdout
    out.write(
        f"{'measure':<32} {'in-process':>11} {'durable':>10} {'ratio':>8} "
        f"{'durable, no timeout':>20} {'ratio':>8}\n"
    )
    for label, inproc, durable, lean in rows:
        out.write(
            f"{label:<32} {inproc:>11.3f} {durable:>10.3f} {durable / inproc:>7.2f}x "
            f"{lean:>20.3f} {lean / inproc:>7.2f}x\n"
        )
    out.write(
        "durable = DefaultRunner on a SQLite file (WAL), every state change persisted;\n"
        "ratio = durable / in-process (per-task rows: lower is better; executions/s: higher)\n"
    )
    reason = _postgres_reason(PG_URL)
    if reason is not None:
        out.write(f"PostgreSQL attempt claims: skipped, {reason}\n")
        return 0
    out.write(f"\n{'PostgreSQL':<32} {'no claims':>11} {'claims':>10} {'extra':>8}\n")
    for label, plain, claimed in measure_claims():
        out.write(f"{label:<32} {plain:>11.3f} {claimed:>10.3f} {claimed - plain:>+8.3f}\n")
    out.write(
        "claims = claim_attempts=True (PostgreSQL's default): one transaction per task attempt\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
