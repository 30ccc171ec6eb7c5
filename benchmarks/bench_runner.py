"""Durable runner (SQLite file) next to the in-process runner, in the same run.

Measures per-task overhead for a chain of 100 no-op tasks and a fan-out 1 -> 100 -> 1, and
executions per second for a 3-task workflow; prints both runners side by side with the
ratio. Run ``python -m benchmarks.bench_runner`` (or ``make bench``).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
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


def measure(repeat: int = 7, rate_seconds: float = 2.0) -> list[tuple[str, float, float, str]]:
    """Return rows ``(label, in_process, durable, unit)``."""
    config = DefaultRunnerConfig(enable_cron_scheduling=False)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        with DefaultRunner(url, config) as runner:
            for wf in (chain(), fan_out()):
                n = len(wf.tasks)
                runner.execute(wf)  # warm up (registration, first connection)
                wf.run()
                inproc = _best(lambda wf=wf: wf.run(), repeat) / n * 1000
                durable = _best(lambda wf=wf: runner.execute(wf), repeat) / n * 1000
                rows.append((f"{wf.name}: ms per task", inproc, durable, "ms"))
            wf = small()
            runner.execute(wf)
            rows.append(
                (
                    "bench_small (3 tasks): executions/s",
                    _rate(lambda: wf.run(), rate_seconds),
                    _rate(lambda: runner.execute(wf), rate_seconds),
                    "/s",
                )
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the table (in-process | durable SQLite | durable / in-process)."""
    rows = measure()
    out = sys.stdout
    out.write(f"{'measure':<40} {'in-process':>12} {'durable':>12} {'ratio':>8}\n")
    for label, inproc, durable, _unit in rows:
        ratio = durable / inproc if inproc else float("nan")
        out.write(f"{label:<40} {inproc:>12.3f} {durable:>12.3f} {ratio:>7.2f}x\n")
    out.write("durable = DefaultRunner on a SQLite file (WAL); per-task rows: lower is better\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
