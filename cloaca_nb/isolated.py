"""Isolated runs: the session's tasks in a fresh kernel, through papermill.

:func:`make_notebook` writes a notebook holding only what the tasks need -- the statements found
by :mod:`cloaca_nb.analysis`, one cell per source cell, each statement kept at its original line
so tracebacks name the right line -- between a setup cell, a ``parameters`` cell and a final cell
that runs the workflow and writes the result as JSON. :func:`run_isolated` executes it with
papermill, reads the result back as a :class:`~cloaca_nb.result.NotebookResult` and keeps the
executed notebook. :class:`SpareKernel` keeps one fresh kernel started in the background so a
repeated isolated run skips the kernel start (each kernel is used once, then replaced).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nbformat

from cloaca_nb.analysis import Statement, needed_statements
from cloaca_nb.errors import IsolatedRunError
from cloaca_nb.result import NotebookResult, clean_traceback, result_from_dict
from cloaca_nb.session import DEFAULT_WORKFLOW, NotebookSession
from cloaca_nb.spare import ENGINE, SpareKernel, quiet_arguments, spare_kernel

__all__ = [
    "KEEP_RUNS",
    "SpareKernel",
    "cache_dir",
    "default_workdir",
    "make_notebook",
    "raise_for_failure",
    "run_isolated",
]

_SETUP = "from cloaca_nb import _child\n\n_child.start()"
_PARAMS = "cloaca_context = {}\ncloaca_options = {}\ncloaca_result_path = ''"
_FINISH = """import sys

_result = _child.finish(cloaca_context, cloaca_options, cloaca_result_path, {ids!r}, {name!r})
if _result.status != "Completed":
    print(_result.failure_report(), file=sys.stderr)
_result"""


KEEP_RUNS = 20  # run folders kept under the cache dir (older ones are removed)


def cache_dir() -> Path:
    """Where isolated runs go without ``--workdir``: ``$CLOACA_NB_ISOLATED_DIR``, else
    ``$XDG_CACHE_HOME/cloaca-nb/isolated`` (``~/.cache/cloaca-nb/isolated``)."""
    if os.environ.get("CLOACA_NB_ISOLATED_DIR"):
        return Path(os.environ["CLOACA_NB_ISOLATED_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "cloaca-nb" / "isolated"


def default_workdir() -> Path:
    """A new ``run-*`` folder under :func:`cache_dir`; the oldest ones go, so that with the
    new one at most :data:`KEEP_RUNS` are kept (failed runs' notebooks stay for a while,
    nothing piles up in the system temp dir)."""
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    runs = sorted((p for p in root.glob("run-*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in runs[: max(0, len(runs) - (KEEP_RUNS - 1))]:
        shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix="run-", dir=root))


def _cell_code(statements: list[Statement]) -> str:
    lines: list[str] = []
    for stmt in statements:
        while len(lines) < stmt.lineno - 1:
            lines.append("")
        lines.extend(stmt.source.splitlines())
    return "\n".join(lines)


def make_notebook(
    session: NotebookSession, task_ids: Sequence[str] | None = None, name: str = DEFAULT_WORKFLOW
) -> nbformat.NotebookNode:
    """The notebook an isolated run executes (see the module docstring)."""
    ids = list(task_ids or session.task_ids())
    session.workflow(name)  # validate before generating anything
    groups: dict[str, list[Statement]] = {}
    for stmt in needed_statements(session, ids):
        groups.setdefault(stmt.cell.key, []).append(stmt)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells.append(nbformat.v4.new_code_cell(_SETUP, metadata={"tags": ["cloaca-setup"]}))
    nb.cells.append(nbformat.v4.new_code_cell(_PARAMS, metadata={"tags": ["parameters"]}))
    for stmts in groups.values():
        meta = {"cloaca": {"cell": stmts[0].cell.label}}
        nb.cells.append(nbformat.v4.new_code_cell(_cell_code(stmts), metadata=meta))
    finish = _FINISH.format(ids=ids, name=name)
    nb.cells.append(nbformat.v4.new_code_cell(finish, metadata={"tags": ["cloaca-run"]}))
    return nb


def run_isolated(
    session: NotebookSession,
    context: Mapping[str, Any] | None = None,
    *,
    start_from: str | None = None,
    only: Sequence[str] | None = None,
    until: str | None = None,
    kernel_name: str | None = None,
    timeout: float | None = None,
    workdir: str | Path | None = None,
    report: str | Path | None = None,
    spare: bool = False,
    name: str = DEFAULT_WORKFLOW,
) -> NotebookResult:
    """Run the session's tasks in a fresh kernel with papermill and bring the result back.

    Parameters
    ----------
    session:
        The notebook session.
    context:
        Initial context, injected as the ``cloaca_context`` parameter.
    start_from, only, until:
        Sub-DAG selection, as in-kernel.
    kernel_name:
        Kernel to run (default ``python3``).
    timeout:
        Seconds each cell may run (default: no limit).
    workdir:
        Directory for the generated and executed notebooks (default: a new folder from
        :func:`default_workdir`, of which only the newest :data:`KEEP_RUNS` are kept).
        The executed notebook is always kept there.
    report:
        Also render the executed notebook to this HTML file (nbconvert).
    spare:
        Run on the :class:`SpareKernel` of this kernel name (and start its replacement).

    Returns
    -------
    NotebookResult
        With ``notebook_path`` set; a failed task leaves ``status == "Failed"`` (see
        :func:`raise_for_failure`).

    Raises
    ------
    IsolatedRunError
        A cell of the generated notebook failed before the tasks ran, or the kernel died or
        timed out.
    """
    import papermill

    kernel = kernel_name or "python3"
    base = Path(workdir) if workdir else default_workdir()
    base.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    source_nb, executed = base / f"isolated-{stamp}.ipynb", base / f"isolated-{stamp}.out.ipynb"
    result_path = base / f"isolated-{stamp}.result.json"
    nbformat.write(make_notebook(session, name=name), source_nb)
    options = {"start_from": start_from, "only": list(only) if only else None, "until": until}
    params = {"cloaca_context": dict(context or {}), "cloaca_options": options,
              "cloaca_result_path": str(result_path)}  # fmt: skip
    extra: dict[str, Any] = {"extra_arguments": quiet_arguments(kernel)}
    if spare:
        extra["km"] = spare_kernel(kernel, os.getcwd()).take()
        extra["engine_name"] = ENGINE
    try:
        papermill.execute_notebook(
            str(source_nb), str(executed), parameters=params, kernel_name=kernel,
            execution_timeout=timeout, progress_bar=False, cwd=os.getcwd(),
            request_save_on_cell_execute=False, **extra,
        )  # fmt: skip
    except papermill.PapermillExecutionError as exc:
        raise IsolatedRunError(
            exc.evalue, error_type=exc.ename, notebook_path=str(executed),
            cell_index=exc.exec_count, traceback="\n".join(exc.traceback),
        ) from None  # fmt: skip
    except Exception as exc:  # kernel died, timed out, could not start
        raise IsolatedRunError(
            str(exc), error_type=type(exc).__name__, notebook_path=str(executed)
        ) from exc
    finally:
        if "km" in extra:
            spare_kernel(kernel, os.getcwd()).discard(extra["km"])
        if report:
            render_report(executed, report)
    return _read_result(session, executed, result_path)


def _read_result(session: NotebookSession, executed: Path, result_path: Path) -> NotebookResult:
    payload = json.loads(result_path.read_text(encoding="utf-8"))
    nb = nbformat.read(executed, as_version=4)
    labels = {
        cell.execution_count: cell.metadata["cloaca"]["cell"]
        for cell in nb.cells
        if cell.cell_type == "code" and "cloaca" in cell.metadata
    }
    filenames = {f: labels[n] for f, n in payload["filenames"].items() if n in labels}
    cells = {}
    for task_id in session.task_ids():
        cell = session.cell_of(task_id)
        if cell is not None:
            cells[task_id] = cell.label
    return NotebookResult(result_from_dict(payload["result"]), cells, filenames, str(executed))


def raise_for_failure(result: NotebookResult) -> None:
    """Raise :class:`IsolatedRunError` (task id, error type and message, notebook path) if a
    task of an isolated run failed."""
    err = result.error
    if result.status == "Completed" or err is None:
        return
    raise IsolatedRunError(
        err.message, task_id=err.task_id, error_type=err.error_type,
        notebook_path=result.notebook_path,
        traceback=clean_traceback(err.traceback or "", result.filenames),
    )  # fmt: skip


def render_report(executed: str | Path, report: str | Path) -> Path:
    """Render the executed notebook to HTML with nbconvert (readable without Jupyter)."""
    from nbconvert.exporters import HTMLExporter

    if not Path(executed).exists():
        raise IsolatedRunError("no executed notebook to report on", notebook_path=str(executed))
    body, _ = HTMLExporter().from_filename(str(executed))
    out = Path(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body, encoding="utf-8")
    return out


def run_isolated_session(
    kit: Any, context: Mapping[str, Any], *, out: Any = None, **kw: Any
) -> NotebookResult:
    """``%cloaca_run --isolated``: run, store the result in ``out`` = ``(namespace, name)``,
    then raise :class:`IsolatedRunError` if a task failed."""
    result = run_isolated(kit.session, context, **kw)
    namespace, var = out if out else (None, None)
    if namespace is not None and var:
        namespace[var] = result
    raise_for_failure(result)
    return result
