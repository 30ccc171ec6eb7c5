"""Per-task overhead of packaged tasks: a warm worker vs in-process vs a fresh interpreter per task.

A chain of ``N`` small tasks is written as a real project, built with ``build_package``, loaded
with ``PackageLoaderFactory`` and run through the one scheduler three ways:

- in-process: the same task functions declared in this process (the floor);
- warm worker: the package's tasks in its warm worker (JSON over a pipe per task);
- fresh interpreter: ``max_tasks_per_worker=1``, a new worker process for every task.

Each way runs with a small context and with a ~100 KB one (the JSON cost). Figures are µs per
task (median of the best half of the repetitions) and the ratio to in-process; nothing asserts.
"""

from __future__ import annotations

import statistics
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloaca import TaskRegistry, Workflow, WorkflowBuilder, task

N = 20
REPEAT = {"in-process": 40, "warm worker": 20, "fresh interpreter": 3}
BIG = [{"id": i, "name": f"record-{i}", "value": i * 1.5, "tags": ["a", "b"]} for i in range(1200)]

TASK_BODY = """
def step(context):
    context["n"] = context.get("n", 0) + 1
    return context
"""


def _best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    best = sorted(times)[: max(1, repeat // 2)]
    return statistics.median(best)


def write_project(root: Path) -> Path:
    """A src-layout project with a chain of N tasks t0 -> t1 -> ... (each adds 1 to ``n``)."""
    pkg = root / "src" / "benchpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    lines = ["from cloaca import task", ""]
    for i in range(N):
        deps = f', dependencies=["t{i - 1}"]' if i else ""
        lines.append(f'@task(id="t{i}"{deps})')
        lines.append(textwrap.dedent(TASK_BODY).strip().replace("def step", f"def t{i}"))
        lines.append("")
    (pkg / "tasks.py").write_text("\n".join(lines))
    (root / "pyproject.toml").write_text(
        '[project]\nname = "bench-workers"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        'dependencies = []\n\n[tool.cloaca]\nentry_module = "benchpkg.tasks"\n'
    )
    return root


def in_process_workflow() -> Workflow:
    """The same chain declared here (what a notebook or a script runs)."""

    def step(context: Any) -> Any:
        context["n"] = context.get("n", 0) + 1
        return context

    builder = WorkflowBuilder("in-process")
    for i in range(N):
        builder.add_task(task(id=f"t{i}", dependencies=[f"t{i - 1}"] if i else [])(step))
    return builder.build()


def measure(workdir: Path) -> dict[str, dict[str, float]]:
    """µs per task for each way, for the small and the ~100 KB context."""
    from cloaca.packaging import build_package
    from cloaca.registry.loader import PackageLoaderFactory, register_package_tasks
    from cloaca.registry.workers import WorkerPools

    (built,) = build_package(write_project(workdir / "project"), workdir / "dist", use_cache=False)
    loaded = PackageLoaderFactory(workdir / "staging").load_path(built.path)
    contexts = {"small context": {"n": 0}, "~100 KB context": {"n": 0, "records": BIG}}
    ways: dict[str, Workflow] = {"in-process": in_process_workflow()}
    pools = {"warm worker": WorkerPools(), "fresh interpreter": WorkerPools(max_tasks_per_worker=1)}
    for name, pool in pools.items():
        registry = TaskRegistry()
        register_package_tasks(registry, loaded, pools=pool)
        ways[name] = WorkflowBuilder(name).with_registry(registry).build()
    results: dict[str, dict[str, float]] = {}
    try:
        for label, ctx in contexts.items():
            row: dict[str, float] = {}
            for name, workflow in ways.items():
                check = workflow.run(ctx)  # also warms the warm worker up
                assert check.final_context["n"] == N, check.error_message

                def run(wf: Workflow = workflow, c: dict[str, Any] = ctx) -> None:
                    wf.run(c)

                row[name] = _best(run, REPEAT[name]) / N * 1e6
            results[label] = row
        results["first task (cold start)"] = {"fresh interpreter": _cold_start(loaded) * 1e6}
    finally:
        for pool in pools.values():
            pool.close()
    return results


def _cold_start(loaded: Any) -> float:
    """Seconds from nothing to the first task's result: spawn, import, run."""
    import asyncio

    from cloaca.registry.workers import WorkerPool

    samples = []
    for _ in range(5):
        pool = WorkerPool(loaded)
        t0 = time.perf_counter()
        asyncio.run(pool.run("t0", "benchpkg.tasks:t0", {"n": 0}))
        samples.append(time.perf_counter() - t0)
        pool.close()
    return statistics.median(samples)


def main() -> None:
    """Print the per-task overhead of each way side by side, with ratios to in-process."""
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        results = measure(Path(tmp))
    print(f"## Packaged task overhead (chain of {N} tasks, µs per task, median of best half)")
    ways = ["in-process", "warm worker", "fresh interpreter"]
    print(
        f"\n| {'context':24} | " + " | ".join(f"{w:>18}" for w in ways) + " | warm / in-process |"
    )
    print(f"|{'-' * 26}|" + "|".join("-" * 20 for _ in ways) + "|-------------------|")
    for label in ("small context", "~100 KB context"):
        row = results[label]
        cells = " | ".join(f"{row[w]:18.1f}" for w in ways)
        ratio = row["warm worker"] / row["in-process"]
        print(f"| {label:24} | {cells} | {ratio:17.0f}x |")
    for label in ("small context", "~100 KB context"):
        row = results[label]
        print(
            f"\n{label}: fresh interpreter / warm worker = "
            f"{row['fresh interpreter'] / row['warm worker']:.0f}x; "
            f"warm worker adds {row['warm worker'] - row['in-process']:.0f} µs per task"
        )
    cold = results["first task (cold start)"]["fresh interpreter"]
    print(f"\nfirst task of a package (spawn + import + run): {cold / 1000:.1f} ms")


if __name__ == "__main__":
    main()
