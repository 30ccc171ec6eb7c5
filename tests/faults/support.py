"""Shared parts of the fault tests: tasks that log every body start and finish to a marker file,
a snapshot of what the database had committed when a process died, and the checks every fault
test makes (every execution Completed, nothing lost, completed work not repeated).

A marker line is ``<start|done> <job> <task> <pid>``, appended with one ``write`` to an
``O_APPEND`` file (atomic for short lines), so lines of concurrent processes never interleave.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

from sqlalchemy import select

from cloaca.storage import Store
from cloaca.storage.models import task_executions as te

MARK_SOURCE = """
import os
import time


def mark(context, task, kind):
    line = f"{kind} {context['job']} {task} {os.getpid()}\\n".encode()
    fd = os.open(context["markers"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def body(context, task):
    mark(context, task, "start")
    time.sleep(context.get("sleep", 0.05))
    context[task] = f"{task}-{context['job']}"
    mark(context, task, "done")
    return context
"""


class Markers:
    """The lines of a marker file, read at one moment."""

    def __init__(self, path: Path | None, lines: list[tuple[str, ...]] | None = None) -> None:
        text = path.read_text() if path is not None and path.exists() else ""
        if lines is None:
            lines = [tuple(line.split()) for line in text.splitlines() if line.strip()]
        self.lines = lines
        self.starts = Counter((job, task) for kind, job, task, _ in self.lines if kind == "start")
        self.dones = Counter((job, task) for kind, job, task, _ in self.lines if kind == "done")

    def of(self, pid: int) -> Markers:
        """Only the lines written by process ``pid``."""
        return Markers(None, [line for line in self.lines if int(line[3]) == pid])

    def pids_starting(self, job: str, task: str) -> list[int]:
        """Process ids that started ``task`` of ``job``, in order."""
        return [int(p) for k, j, t, p in self.lines if (k, j, t) == ("start", job, task)]


def committed(url: str, schema: str | None, jobs: Mapping[str, str]) -> dict[str, set[str]]:
    """Task rows by status as committed now, as ``{status: {"job/task"}}`` (task ids without
    their package namespace; ``jobs`` maps execution id to job), plus ``"claimed:<runner>"``:
    the unfinished tasks whose latest attempt that runner claimed (attempt claims)."""
    store = Store(url, schema=schema)
    cols = (te.c.execution_id, te.c.task_id, te.c.status, te.c.attempt_owner)
    try:
        with store.read() as conn:
            rows = conn.execute(select(*cols)).all()
    finally:
        store.dispose()
    out: dict[str, set[str]] = {}
    for eid, task_id, status, claimer in rows:
        if eid in jobs:
            key = f"{jobs[eid]}/{task_id.split('::')[-1]}"
            out.setdefault(status, set()).add(key)
            if claimer and status in ("Pending", "Running"):
                out.setdefault(f"claimed:{claimer}", set()).add(key)
    return out


def check_no_lost_or_repeated_work(
    cut: Markers,
    settled: Markers,
    final: Markers,
    done_at_cut: set[str],
    jobs: Iterable[str],
    deps: Mapping[str, Iterable[str]],
    claimed: set[str] = frozenset(),  # type: ignore[assignment]
) -> int:
    """Assert what a crash may and may not cost; return how many task bodies ran again.

    ``cut`` holds the marker lines the killed or stopped process(es) wrote before the signal,
    ``done_at_cut`` the tasks whose completion the database had committed just after it, and
    ``settled`` the marker file read after that snapshot (when other processes keep running,
    it includes their progress up to the snapshot); ``final`` the markers at the end, ``deps``
    each task's dependencies; ``claimed`` the tasks whose attempt the stopped process had claimed
    (with attempt claims, a claimed attempt counts as started even if its body had not begun).

    - every task of every job finished at least once (nothing lost);
    - no task committed as completed at the cut started again (completed work not repeated);
    - a task started again only if it had started before the cut (it was in flight), and none
      of its dependents had started before the cut (no task built on a result a crash lost).
    """
    dependents: dict[str, list[str]] = {}
    for task, ds in deps.items():
        for d in ds:
            dependents.setdefault(d, []).append(task)
    rerun = 0
    for job in jobs:
        for task in deps:
            key = (job, task)
            assert final.dones[key] >= 1, f"{job}/{task} never finished"
            again = final.starts[key] - settled.starts[key]
            if f"{job}/{task}" in done_at_cut:
                assert again == 0, f"{job}/{task} was committed as completed, then ran again"
            if final.starts[key] > 1:
                rerun += final.starts[key] - 1
                in_flight = cut.starts[key] >= 1 or f"{job}/{task}" in claimed
                assert in_flight, f"{job}/{task} ran twice but was not in flight"
                early = [c for c in dependents.get(task, []) if cut.starts[(job, c)]]
                assert not early, f"{job}/{task} ran again after {early} had built on it"
    return rerun
