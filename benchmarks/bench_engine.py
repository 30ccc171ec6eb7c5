"""Per-task overhead of the in-process engine next to a plain loop and Apache Hamilton.

Shapes: a chain of 100 no-op tasks and a fan-out 1 -> 100 -> 1. Every figure comes from the same
run (best of several repetitions), reported in µs per task and as a ratio to the plain loop.
"""

from __future__ import annotations

import statistics
import sys
import time
import types
from collections.abc import Callable

from cloaca import WorkflowBuilder, task

N = 100
REPEAT = 30


def _best(fn: Callable[[], object], repeat: int = REPEAT) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) if repeat < 5 else statistics.median(sorted(times)[: repeat // 2])


def _noop(ctx: object) -> None:
    return None


def _shape(kind: str) -> dict[str, list[str]]:
    if kind == "chain":
        return {f"n{i}": ([f"n{i - 1}"] if i else []) for i in range(N)}
    deps = {"src": []}
    deps.update({f"n{i}": ["src"] for i in range(N)})
    deps["sink"] = [f"n{i}" for i in range(N)]
    return deps


def plain_loop(deps: dict[str, list[str]]) -> None:
    ctx: dict[str, object] = {}
    for _name in deps:
        _noop(ctx)


def ours_build(deps: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    b = WorkflowBuilder("bench")
    for name, d in deps.items():
        b.add_task(task(id=name, dependencies=d)(_noop))
    return b.build()


def hamilton_module(deps: dict[str, list[str]]) -> types.ModuleType:
    mod = types.ModuleType("bench_hamilton_nodes")
    src = []
    for name, d in deps.items():
        args = ", ".join(f"{x}: int" for x in d)
        src.append(f"def {name}({args}) -> int:\n    return 0\n")
    exec("\n".join(src), mod.__dict__)
    sys.modules[mod.__name__] = mod
    return mod


def measure(kind: str) -> dict[str, float]:
    """Return µs per task for each contender on ``kind`` ("chain" or "fanout")."""
    deps = _shape(kind)
    n = len(deps)
    out = {"plain loop": _best(lambda: plain_loop(deps)) / n * 1e6}
    wf = ours_build(deps)
    out["cloaca in-process (execute)"] = _best(lambda: wf.run(max_concurrency=4)) / n * 1e6
    out["cloaca in-process (build + execute)"] = (
        _best(lambda: ours_build(deps).run(max_concurrency=4)) / n * 1e6
    )
    try:
        from hamilton import driver
    except ImportError:  # pragma: no cover - bench group not installed
        return out
    mod = hamilton_module(deps)
    final = [list(deps)[-1]]

    def ham() -> None:
        dr = driver.Builder().with_modules(mod).build()
        dr.execute(final)

    out["hamilton (build + execute)"] = _best(ham, repeat=10) / n * 1e6
    dr = driver.Builder().with_modules(mod).build()
    out["hamilton (execute)"] = _best(lambda: dr.execute(final), repeat=10) / n * 1e6
    return out


def import_time_ms() -> float:
    """Median wall time of `import cloaca` in a fresh interpreter minus an empty interpreter."""
    import subprocess

    def run(code: str) -> float:
        samples = []
        for _ in range(5):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            samples.append(time.perf_counter() - t0)
        return statistics.median(samples)

    return (run("import cloaca") - run("pass")) * 1000


def main() -> None:
    """Print the per-task overhead table (µs/task and ratio to the plain loop)."""
    print(f"## Engine per-task overhead (N={N} no-op tasks, median of best half of {REPEAT})")
    for kind, label in (("chain", "chain of 100"), ("fanout", "fan-out 1 -> 100 -> 1")):
        res = measure(kind)
        floor = res["plain loop"]
        print(f"\n{label}")
        print(f"| {'contender':38} | {'µs/task':>10} | {'x plain loop':>12} |")
        print(f"|{'-' * 40}|{'-' * 12}|{'-' * 14}|")
        for name, us in res.items():
            print(f"| {name:38} | {us:10.2f} | {us / floor:12.0f} |")
        if "hamilton (build + execute)" in res:
            ratio = res["hamilton (build + execute)"] / res["cloaca in-process (build + execute)"]
            print(f"\nHamilton build+execute / cloaca build+execute: {ratio:.1f}x")
    print(f"\n`import cloaca`: {import_time_ms():.1f} ms over an empty interpreter")


if __name__ == "__main__":
    main()
