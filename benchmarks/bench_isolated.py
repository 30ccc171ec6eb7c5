"""Cost of ``%cloaca_run --isolated`` next to a bare kernel start and a bare papermill run.

Four figures from the same machine and run (median of several repetitions):

- kernel start + stop: ``jupyter_client`` starts the venv's ``python3`` kernel, waits until it
  is ready, shuts it down;
- bare papermill: a 3-cell notebook (imports, a parameters cell, one statement);
- isolated run (cold): a one-task session through :func:`cloaca_nb.isolated.run_isolated`;
- isolated run (warm spare): the same with ``spare=True`` once the spare kernel is ready.

The issue's targets: cold <= 1.2x the kernel start (plus the tasks' own time, ~0 here), warm
overhead under 100 ms.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nbformat

from cloaca.task import add_task_listener, remove_task_listener
from cloaca_nb.session import NotebookSession

COLD_REPEAT = 5
WARM_REPEAT = 10
CELL = (
    "from cloaca import task\n\n@task(id='one')\ndef one(ctx):\n    ctx['v'] = 1\n    return ctx\n"
)


def _median(
    fn: Callable[[], object], repeat: int, before: Callable[[], object] | None = None
) -> float:
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def kernel_start_stop() -> None:
    """Start the ``python3`` kernel, wait until ready, stop it."""
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def bare_papermill(workdir: Path) -> Callable[[], None]:
    """A runner for a 3-cell notebook through papermill."""
    import papermill

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell("import json"),
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("y = json.dumps(x)"),
    ]
    src = workdir / "bare.ipynb"
    nbformat.write(nb, src)

    def run() -> None:
        papermill.execute_notebook(
            str(src), str(workdir / "bare.out.ipynb"), parameters={"x": 2},
            kernel_name="python3", progress_bar=False,
        )  # fmt: skip

    return run


def session() -> NotebookSession:
    """A session with one task cell, fed as IPython's hooks would."""
    sess = NotebookSession()
    add_task_listener(sess.declare)
    try:
        sess.begin_cell(CELL, 1, "bench")
        exec(compile(CELL, "<bench-cell>", "exec"), {"__name__": "__main__"})
        sess.end_cell()
    finally:
        remove_task_listener(sess.declare)
    return sess


def measure() -> dict[str, float]:
    """Seconds per operation for each contender."""
    import os

    from cloaca_nb.isolated import run_isolated
    from cloaca_nb.spare import shutdown_spares, spare_kernel

    sess = session()
    with tempfile.TemporaryDirectory(prefix="bench-isolated-") as tmp:
        work = Path(tmp)
        papermill_run = bare_papermill(work)
        papermill_run()  # warm imports and disk caches once
        out = {
            "kernel start + stop": _median(kernel_start_stop, COLD_REPEAT),
            "bare papermill (3 cells)": _median(papermill_run, COLD_REPEAT),
            "isolated run (cold kernel)": _median(
                lambda: run_isolated(sess, {}, workdir=work), COLD_REPEAT
            ),
        }
        spare = spare_kernel("python3", os.getcwd())

        try:
            out["isolated run (warm spare)"] = _median(
                lambda: run_isolated(sess, {}, workdir=work, spare=True),
                WARM_REPEAT,
                spare.wait_ready,
            )
        finally:
            shutdown_spares()
    return out


def main() -> dict[str, float]:
    """Measure and print the figures side by side with ratios; return them (seconds)."""
    figures = measure()
    kernel = figures["kernel start + stop"]
    bare = figures["bare papermill (3 cells)"]
    print(f"{'':30} {'ms':>9} {'x kernel':>9} {'x papermill':>12}")
    for name, secs in figures.items():
        print(f"{name:30} {secs * 1000:9.1f} {secs / kernel:9.2f} {secs / bare:12.2f}")
    warm = figures["isolated run (warm spare)"]
    print(f"\nwarm isolated run overhead: {warm * 1000:.1f} ms (target < 100 ms)")
    cold = figures["isolated run (cold kernel)"] / kernel
    print(f"cold isolated run: {cold:.2f}x a kernel start (target <= 1.2x)")
    return figures


if __name__ == "__main__":
    main()
