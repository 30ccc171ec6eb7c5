"""The Dask executor: a CPU-bound fan-out on one Dask worker vs two, and its per-task cost.

A workflow of ``PARTS`` independent pure-Python partitions (each ~0.25 s of CPU on this kind of
machine) runs through the one scheduler three ways: in-process (threads, so the GIL serialises
the partitions), and with ``DaskExecutor`` on a ``LocalCluster`` of 1 and of 2 single-thread
worker processes on 127.0.0.1. The speed-up of 2 workers over 1 is printed; on a 2-core
machine it cannot exceed 2. A chain of tiny tasks gives the per-task round trip (submit, claim,
result). Nothing asserts a time.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

from cloaca import Context, Workflow
from cloaca.execution.scheduler import execute_workflow
from cloaca.task import make_spec

PARTS = 8
SIZE = 6_000_000  # loop iterations per partition
CHAIN = 30


def partition(i: int) -> Callable[[Context], Context]:
    """Partition ``i``: a pure-Python loop (holds the GIL the whole time)."""

    def cpu(ctx: Context) -> Context:
        total = 0
        for k in range(ctx["size"]):
            total += (k * (i + 1)) % 7
        ctx[f"p{i}"] = total
        return ctx

    cpu.__name__ = f"cpu_{i}"
    return cpu


def tiny(ctx: Context) -> Context:
    ctx["n"] = ctx.get("n", 0) + 1
    return ctx


def fan_out() -> Workflow:
    return Workflow(
        "bench_dask_fan_out", {f"p{i}": make_spec(partition(i), id=f"p{i}") for i in range(PARTS)}
    )


def chain() -> Workflow:
    specs = {
        f"t{i}": make_spec(tiny, id=f"t{i}", dependencies=[f"t{i - 1}"] if i else [])
        for i in range(CHAIN)
    }
    return Workflow("bench_dask_chain", specs)


def _timed(workflow: Workflow, context: dict[str, Any], caller: Any) -> float:
    t0 = time.perf_counter()
    result = asyncio.run(execute_workflow(workflow, context, caller=caller, max_concurrency=PARTS))
    assert result.status == "Completed", result.error_message
    return time.perf_counter() - t0


def measure() -> dict[str, float]:
    """Seconds for the fan-out each way, and ms per task of the chain on Dask."""
    import cloudpickle
    from distributed import LocalCluster

    from cloaca.execution.executors.dask import DaskExecutor

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need not import us
    out = {"in-process (threads)": _timed(fan_out(), {"size": SIZE}, None)}
    for workers in (1, 2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                host="127.0.0.1",
            )
        with cluster, DaskExecutor(cluster.scheduler_address) as executor:
            executor.client.wait_for_workers(workers)
            _timed(fan_out(), {"size": 1000}, executor)  # warm-up: pickling, imports
            runs = [_timed(fan_out(), {"size": SIZE}, executor) for _ in range(2)]
            out[f"Dask, {workers} worker{'s' if workers > 1 else ''}"] = min(runs)
            if workers == 1:
                laps = [_timed(chain(), {}, executor) for _ in range(3)]
                out["chain ms per task"] = statistics.median(laps) / CHAIN * 1000
    return out


def main() -> None:
    """Print the fan-out times side by side and the speed-up of 2 Dask workers over 1."""
    res = measure()
    print(f"## Dask executor: CPU-bound fan-out of {PARTS} partitions (seconds, best of 2)\n")
    print("| way | seconds | vs 1 Dask worker |")
    print("|---|---:|---:|")
    one = res["Dask, 1 worker"]
    for way in ("in-process (threads)", "Dask, 1 worker", "Dask, 2 workers"):
        print(f"| {way} | {res[way]:.2f} | {one / res[way]:.2f}x |")
    print(f"\nspeed-up of 2 Dask workers over 1: {one / res['Dask, 2 workers']:.2f}x")
    print(
        f"Dask round trip per task (chain of {CHAIN} tiny tasks, 1 worker): "
        f"{res['chain ms per task']:.1f} ms"
    )


if __name__ == "__main__":
    main()
