"""Task functions for the Dask executor tests (shipped to Dask workers by value)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloaca import Context


def where(i: int) -> Callable[[Context], Context]:
    """Task ``i`` of a fan-out: writes its Dask worker's address under ``w<i>``; slow enough
    that both workers get work."""

    def where_task(ctx: Context) -> Context:
        from distributed import get_worker

        time.sleep(0.3)
        ctx[f"w{i}"] = get_worker().address
        return ctx

    where_task.__name__ = f"where_{i}"
    return where_task


def seed(ctx: Context) -> Context:
    ctx["n"], ctx["shared"] = 1, "seed"
    return ctx


def left(ctx: Context) -> Context:
    ctx["shared"] = "left"  # overridden at the join by a later dependency passing it through
    ctx["left"] = ctx["n"] + 1
    return ctx


def right(ctx: Context) -> dict[str, Any]:
    out = ctx.to_dict()
    out["right"] = out["n"] * 10
    return out  # passes "shared" through unchanged


def join(ctx: Context) -> Context:
    ctx["total"] = ctx["left"] + ctx["right"]
    return ctx


async def async_task(ctx: Context) -> Context:
    import asyncio

    await asyncio.sleep(0)
    ctx["async"] = True
    return ctx


def flaky(ctx: Context) -> Context:
    """Fails until a marker file exists (it creates it on the first call)."""
    marker = Path(ctx["marker"])
    if not marker.exists():
        marker.write_text("1")
        raise ConnectionError("transient: first call fails")
    ctx["flaky"] = "ok"
    return ctx


def boom(ctx: Context) -> Context:
    raise ValueError(f"boom with n={ctx['n']}")


def not_json(ctx: Context) -> dict[str, Any]:
    return {"when": object()}


def slow_on_worker(ctx: Context) -> Context:
    """Record this worker's pid and address in ``ctx['pid_dir']``, then sleep ``ctx['sleep']``."""
    from distributed import get_worker

    pid_dir = Path(ctx["pid_dir"])
    (pid_dir / f"{os.getpid()}.pid").write_text(get_worker().address)
    time.sleep(ctx["sleep"])
    ctx["done_on"] = get_worker().address
    return ctx


def count(ctx: Context) -> Context:
    """Append a line to ``ctx['log']`` (runs are counted across processes)."""
    with open(ctx["log"], "a") as fh:
        fh.write(f"{ctx.get('step', 'x')}\n")
    ctx["counted"] = ctx.get("counted", 0) + 1
    return ctx


def wait_for_file(ctx: Context) -> Context:
    """Block until ``ctx['release']`` exists (or 60 s)."""
    release = Path(ctx["release"])
    Path(ctx["started"]).write_text("started")
    deadline = time.monotonic() + 60
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    ctx["waited"] = True
    return ctx


def cpu(i: int) -> Callable[[Context], Context]:
    """Partition ``i`` of a CPU-bound fan-out over ``ctx['size']`` numbers."""

    def cpu_task(ctx: Context) -> Context:
        total = 0
        for k in range(ctx["size"]):
            total += (k * (i + 1)) % 7
        ctx[f"p{i}"] = total
        return ctx

    cpu_task.__name__ = f"cpu_{i}"
    return cpu_task
