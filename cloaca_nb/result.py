"""The result object of a notebook run (in-kernel, isolated or on a server) and how it is shown.

:class:`NotebookResult` wraps the engine's :class:`cloaca.ExecutionResult` (every attribute of it
is available: ``status``, ``final_context``, ``tasks``, ``error``, ``raise_for_status()`` ...),
knows which cell defined each task, renders a readable summary (text and HTML) and turns task
tracebacks into ones that name notebook cells. :func:`result_to_dict` / :func:`result_from_dict`
carry it as JSON out of an isolated kernel.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

import cloaca
from cloaca import Context, ExecutionResult, TaskExecutionError, TaskResult
from cloaca_nb.render import format_duration

_ENGINE_DIR = str(Path(cloaca.__file__).parent)
_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+)(?P<rest>.*)$')


class NotebookResult:
    """What ``%cloaca_run`` returns.

    Parameters
    ----------
    result:
        The engine's result.
    cells:
        Task id -> label of the cell that defined it (``cell In[3]``).
    filenames:
        Cell pseudo-file name -> label, to rewrite tracebacks.
    notebook_path:
        The executed notebook of an isolated run.
    server:
        Where a ``--server`` run went (:class:`cloaca_nb.server_run.ServerRunInfo`).
    """

    def __init__(
        self,
        result: ExecutionResult,
        cells: Mapping[str, str] | None = None,
        filenames: Mapping[str, str] | None = None,
        notebook_path: str | None = None,
        server: Any = None,
    ) -> None:
        self.result = result
        self.cells = dict(cells or {})
        self.filenames = dict(filenames or {})
        self.notebook_path = notebook_path
        self.server = server

    def __getattr__(self, name: str) -> Any:
        if name == "result":  # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.result, name)

    @property
    def statuses(self) -> dict[str, str]:
        """Task id -> status (Completed, Failed, Skipped ...)."""
        return {tid: rec.status for tid, rec in self.result.tasks.items()}

    def traceback_of(self, task_id: str) -> str | None:
        """The failed task's traceback, engine frames removed, cell files named as cells."""
        rec = self.result.tasks.get(task_id)
        if rec is None or rec.error is None or not rec.error.traceback:
            return None
        return clean_traceback(rec.error.traceback, self.filenames)

    def failure_report(self) -> str:
        """Every failed task: where it was defined, its error and its cleaned traceback."""
        parts = []
        for task_id, rec in self.result.tasks.items():
            if rec.status != "Failed" or rec.error is None:
                continue
            where = f" (defined in {self.cells[task_id]})" if task_id in self.cells else ""
            parts.append(
                f"task {task_id!r}{where} failed: {rec.error.error_type}: {rec.error.message}"
            )
            tb = self.traceback_of(task_id)
            if tb:
                parts.append(tb.rstrip())
        return "\n".join(parts)

    def summary_rows(self) -> list[tuple[str, str, str, str, str, str]]:
        """(task, status, duration, attempts, cell, error-or-skip-reason) per task;
        attempts reads ``3 (2 retries)`` after retries."""
        rows = []
        for task_id, rec in self.result.tasks.items():
            dur = format_duration(rec.duration) if rec.duration is not None else ""
            tries = str(rec.attempts) if rec.attempts else ""
            if rec.attempts > 1:
                retries = rec.attempts - 1
                tries += f" ({retries} retr{'y' if retries == 1 else 'ies'})"
            note = rec.error_message or rec.skip_reason or ""
            rows.append((task_id, rec.status, dur, tries, self.cells.get(task_id, ""), note))
        return rows

    def headline(self) -> str:
        """``Run of workflow 'notebook' completed in 12 ms: 3 completed`` (the counts per
        status; ``failed``/``Failed`` and friends as the engine names them)."""
        res = self.result
        counts: dict[str, int] = {}
        for rec in res.tasks.values():
            counts[rec.status] = counts.get(rec.status, 0) + 1
        tally = ", ".join(f"{n} {status.lower()}" for status, n in counts.items()) or "no tasks"
        where = "isolated run" if self.notebook_path else "server run" if self.server else "run"
        return (
            f"{where[0].upper()}{where[1:]} of workflow {res.workflow_name!r} "
            f"{res.status.lower()} in {format_duration(res.duration or 0.0)}: {tally}"
        )

    def __repr__(self) -> str:
        res = self.result
        lines = [self.headline()]
        if self.notebook_path:
            lines.append(f"  executed notebook: {self.notebook_path}")
        if self.server is not None:
            lines.append(f"  server {self.server.server}; execution {self.server.execution_id}")
        for task_id, status, dur, tries, cell, note in self.summary_rows():
            text = f"  {status:<9} {task_id:<24} {dur:>9} {tries:<14} {cell}"
            lines.append(text.rstrip() + (f"  - {note}" if note else ""))
        keys = list(res.final_context.keys())
        lines.append(f"  final context keys: {keys}")
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))

    def _repr_html_(self) -> str:
        res = self.result
        colour = "#2e7d32" if res.status == "Completed" else "#c62828"
        rows = "".join(
            "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
            for row in self.summary_rows()
        )
        where = (
            f"<div>executed notebook: <code>{escape(self.notebook_path)}</code></div>"
            if self.notebook_path
            else ""
        )
        return (
            f'<div class="cloaca-result"><b style="color:{colour}">{escape(self.headline())}</b>'
            f"{where}<table><thead><tr><th>task</th><th>status</th><th>duration</th>"
            "<th>attempts</th><th>cell</th>"
            f"<th>error / note</th></tr></thead><tbody>{rows}</tbody></table>"
            f"<div>final context keys: {escape(str(list(res.final_context.keys())))}</div></div>"
        )


_CHAIN = re.compile(
    r"\n\n(During handling of the above exception, another exception occurred:|"
    r"The above exception was the direct cause of the following exception:)\n\n"
)


def clean_traceback(text: str, filenames: Mapping[str, str]) -> str:
    """Drop engine frames from ``text`` and name cell pseudo-files as ``Cell In[n]``.

    Chained sections left without any frame (exceptions the engine raised and handled itself)
    are dropped too.
    """
    parts = _CHAIN.split(text.rstrip("\n"))
    sections = [_clean_section(s, filenames) for s in parts[::2]]
    joints = parts[1::2]
    kept: list[str] = []
    for i, (section, has_frames) in enumerate(sections):
        if not has_frames and i < len(sections) - 1:
            continue
        if kept:
            kept.append(f"\n{joints[i - 1]}\n")
        kept.append(section)
    return "\n".join(kept) + "\n"


def _clean_section(text: str, filenames: Mapping[str, str]) -> tuple[str, bool]:
    out: list[str] = []
    frames = 0
    skipping = False
    for line in text.splitlines():
        match = _FRAME.match(line)
        if match:
            path = match["file"]
            skipping = path.startswith(_ENGINE_DIR)
            if not skipping and path in filenames:
                label = filenames[path]
                line = f"  {label[0].upper()}{label[1:]}, line {match['line']}{match['rest']}"
            if not skipping:
                out.append(line)
                frames += 1
            continue
        if skipping and line.startswith("    "):
            continue
        skipping = False
        out.append(line)
    return "\n".join(out), frames > 0


# ---------------------------------------------------------------------------- JSON form
def result_to_dict(result: ExecutionResult) -> dict[str, Any]:
    """A JSON-able dict holding everything :func:`result_from_dict` needs."""
    tasks = {}
    for task_id, rec in result.tasks.items():
        err = rec.error
        tasks[task_id] = {
            "status": rec.status,
            "attempts": rec.attempts,
            "started_at": rec.started_at,
            "finished_at": rec.finished_at,
            "skip_reason": rec.skip_reason,
            "delta": rec.delta,
            "removed": list(rec.removed),
            "error": None
            if err is None
            else {
                "message": err.message,
                "error_type": err.error_type,
                "traceback": err.traceback,
            },
        }
    return {
        "workflow_name": result.workflow_name,
        "status": result.status,
        "final_context": result.final_context.to_dict(),
        "tasks": tasks,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "execution_id": result.execution_id,
        "workflow_version": result.workflow_version,
    }


def result_from_dict(data: Mapping[str, Any]) -> ExecutionResult:
    """Rebuild the engine's :class:`~cloaca.ExecutionResult` from :func:`result_to_dict` output."""
    tasks = {}
    for task_id, rec in data["tasks"].items():
        err = rec.get("error")
        tasks[task_id] = TaskResult(
            task_id,
            status=rec["status"],
            attempts=rec["attempts"],
            started_at=rec["started_at"],
            finished_at=rec["finished_at"],
            skip_reason=rec["skip_reason"],
            delta=rec["delta"],
            removed=tuple(rec["removed"]),
            error=None
            if err is None
            else TaskExecutionError(
                err["message"],
                task_id=task_id,
                error_type=err["error_type"],
                traceback=err["traceback"],
            ),
        )
    return ExecutionResult(
        workflow_name=data["workflow_name"],
        status=data["status"],
        final_context=Context(data["final_context"]),
        tasks=tasks,
        started_at=data["started_at"],
        finished_at=data["finished_at"],
        execution_id=data.get("execution_id"),
        workflow_version=data.get("workflow_version"),
    )
