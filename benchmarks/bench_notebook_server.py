"""``%cloaca_run --server`` of an unchanged notebook next to the in-kernel ``%cloaca_run``.

A real IPython shell (``globalipapp``) with the kit loaded defines a 4-task notebook session
(``load`` → ``left`` | ``right`` → ``join``, each sleeping :data:`SLEEP` s, so the tasks' own
time is the critical path, 3 x :data:`SLEEP`). A real ``cloacina-server`` (SQLite, temporary
home) is warmed by a first ``--server`` run (build, upload, workers started). Then, median of
:data:`REPEAT` runs each, alternating: the in-kernel run, and the ``--server`` run of the same
unchanged session (no rebuild, no upload: resolve, one status call, execute, WebSocket follow,
read back the result). Printed: wall times and the overhead over the tasks' own time. The issue's
goal: ``--server`` under 150 ms over the tasks' own time. Run ``python -m
benchmarks.bench_notebook_server``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_server import server

SLEEP = 0.02
REPEAT = 15
CELL = textwrap.dedent(
    f"""
    import time
    from cloaca import task

    @task(id="load")
    def load(ctx):
        time.sleep({SLEEP})
        ctx["rows"] = list(range(ctx.get("n", 4)))
        return ctx

    @task(id="left", dependencies=["load"])
    def left(ctx):
        time.sleep({SLEEP})
        ctx["total"] = sum(ctx["rows"])
        return ctx

    @task(id="right", dependencies=["load"])
    def right(ctx):
        time.sleep({SLEEP})
        ctx["count"] = len(ctx["rows"])
        return ctx

    @task(id="join", dependencies=["left", "right"])
    def join(ctx):
        time.sleep({SLEEP})
        ctx["mean"] = ctx["total"] / ctx["count"]
        return ctx
    """
)


def _timed(shell: Any, line: str) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = shell.run_line_magic("cloaca_run", line)
    return time.perf_counter() - t0, result


def main() -> int:
    """Measure and print the side-by-side."""
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CLOACA_CACHE_DIR"] = str(Path(tmp) / "cache")
        with server(Path(tmp) / "home") as (url, key):
            from IPython.testing.globalipapp import get_ipython

            shell = get_ipython()
            shell.run_line_magic("load_ext", "cloaca_nb")
            shell.run_cell(CELL, store_history=True, cell_id="bench-tasks")
            remote = f"--server {url} --api-key {key} -p n=8 --no-widget"
            local = "-p n=8 --no-widget"
            first, res = _timed(shell, remote)
            assert res.status == "Completed", res
            for _ in range(3):  # warm both paths (worker processes, imports, connections)
                _timed(shell, remote)
                _timed(shell, local)
            server_times, kernel_times = [], []
            for _ in range(REPEAT):
                took, res = _timed(shell, remote)
                assert not res.server.built and not res.server.uploaded, res.server
                server_times.append(took)
                kernel_times.append(_timed(shell, local)[0])
    own = 3 * SLEEP
    srv, ker = statistics.median(server_times), statistics.median(kernel_times)
    rows = [
        ("in-kernel %cloaca_run", ker, ker - own),
        ("%cloaca_run --server (unchanged)", srv, srv - own),
    ]
    print(
        f"4-task notebook, tasks' own time {own * 1000:.0f} ms (critical path of {SLEEP * 1000:.0f}"
        f" ms sleeps); median of {REPEAT} runs; first --server run (build + upload + worker "
        f"start) {first:.2f} s\n"
    )
    print(f"{'run':<34} {'wall ms':>8} {'overhead ms':>12}")
    for name, wall, over in rows:
        print(f"{name:<34} {wall * 1000:>8.1f} {over * 1000:>12.1f}")
    print(
        f"\n--server costs {(srv - ker) * 1000:.1f} ms more than in-kernel (goal: overhead < 150)"
    )
    if path := os.environ.get("CLOACA_BENCH_JSON"):
        Path(path).write_text(json.dumps({"notebook_server": [list(r) for r in rows]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
