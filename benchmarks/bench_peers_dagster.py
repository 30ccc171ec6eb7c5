"""Dagster's per-task overhead on the shapes of :mod:`benchmarks.bench_engine`.

Run by ``bench_engine`` in its own interpreter (Dagster's import, logging and thread setup stay
out of the other contenders' process; the interpreter may belong to a separate peers venv, so
this module imports nothing from cloaca). Two ways, both through Dagster's public API with an
ephemeral instance and the in-process executor:

- ops: a job of no-op ops wired with ``Nothing`` dependencies, ``job.execute_in_process()``;
- assets: no-op ``@asset`` definitions with ``deps=``, ``materialize()``.

Writes ``{"version": ..., "samples": {shape: {label: [seconds per run, ...]}}}`` to ``--json``
and prints µs per task. Samples stop at ``--budget`` seconds per way and shape (at least 2).
Dagster logs every step event at DEBUG to stderr by default; that is part of its default cost
and left on.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHAIN_N, FANOUT_N = 100, 1000
MAX_SAMPLES, MIN_SAMPLES = 10, 2


def shape(kind: str) -> dict[str, list[str]]:
    """Same shapes as bench_engine: ``chain`` (100) or ``fanout`` (1 -> 1,000 -> 1)."""
    if kind == "chain":
        return {f"n{i}": ([f"n{i - 1}"] if i else []) for i in range(CHAIN_N)}
    deps: dict[str, list[str]] = {"src": []}
    deps.update({f"n{i}": ["src"] for i in range(FANOUT_N)})
    deps["sink"] = [f"n{i}" for i in range(FANOUT_N)]
    return deps


def ops_job(deps: dict[str, list[str]]) -> Callable[[Any], Any]:
    """A job of no-op ops; returns ``run(instance)``."""
    from dagster import (
        DependencyDefinition,
        GraphDefinition,
        In,
        Nothing,
        OpDefinition,
        Out,
        in_process_executor,
    )

    nodes = [
        OpDefinition(
            name=name,
            ins={d: In(Nothing) for d in ups},
            outs={"result": Out(Nothing)},
            compute_fn=lambda context, inputs: None,
        )
        for name, ups in deps.items()
    ]
    wiring = {n: {d: DependencyDefinition(d, "result") for d in ups} for n, ups in deps.items()}
    graph = GraphDefinition(name="bench", node_defs=nodes, dependencies=wiring)
    job = graph.to_job(executor_def=in_process_executor)

    def run(instance: Any) -> Any:
        result = job.execute_in_process(instance=instance)
        assert result.success
        return result

    return run


def assets_run(deps: dict[str, list[str]]) -> Callable[[Any], Any]:
    """No-op assets with ``deps=``; returns ``run(instance)`` through ``materialize``."""
    from dagster import AssetKey, asset, materialize

    def noop() -> None:
        return None

    assets = [asset(name=name, deps=[AssetKey(d) for d in ups])(noop) for name, ups in deps.items()]

    def run(instance: Any) -> Any:
        result = materialize(assets, instance=instance)
        assert result.success
        return result

    return run


def measure(kinds: list[str], budget: float) -> dict[str, dict[str, list[float]]]:
    """Seconds per run for each shape and way."""
    from dagster import DagsterInstance

    instance = DagsterInstance.ephemeral()
    out: dict[str, dict[str, list[float]]] = {}
    for kind in kinds:
        deps = shape(kind)
        ways = {
            "dagster ops (execute_in_process)": ops_job(deps),
            "dagster assets (materialize)": assets_run(deps),
        }
        out[kind] = {}
        for label, run in ways.items():
            if kind == "chain":
                run(instance)  # warm up; a fan-out run is long enough to need none
            times: list[float] = []
            start = time.perf_counter()
            while len(times) < MAX_SAMPLES and (
                len(times) < MIN_SAMPLES or time.perf_counter() - start < budget
            ):
                t0 = time.perf_counter()
                run(instance)
                times.append(time.perf_counter() - t0)
            out[kind][label] = times
    return out


def main(argv: list[str] | None = None) -> int:
    """Measure, print µs per task, write the JSON file when ``--json`` is given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kinds", nargs="*", default=["chain", "fanout"])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--budget", type=float, default=20.0)
    args = parser.parse_args(argv)
    import dagster

    samples = measure(args.kinds, args.budget)
    for kind, ways in samples.items():
        n = len(shape(kind))
        for label, times in ways.items():
            med = statistics.median(times) / n * 1e6
            print(f"{kind:7} {label:34} {med:12,.1f} µs/task ({len(times)} samples)")
    if args.json:
        args.json.write_text(json.dumps({"version": dagster.__version__, "samples": samples}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
