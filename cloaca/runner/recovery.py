"""Resuming an execution from its stored rows.

The durable runner never re-implements scheduling: a resumed execution is run by the same
:func:`~cloaca.execution.scheduler.execute_workflow`, given the records of the tasks that
already finished (``completed=``) so it does not run them again.

What happens to each stored task row:

- ``Completed`` → handed to the scheduler as done, with its writes (``delta``/``removed``)
  read from the stored delta (:mod:`cloaca.runner.outputs`); rows written before 0004 have
  them recomputed from the stored output and the task's input (rebuilt the way the scheduler
  builds it: the single dependency's output, or the initial context plus the writes of every
  completed ancestor in topological order).
- ``Skipped`` because its trigger rule was false → done as well. Tasks skipped because an
  upstream task failed are decided again by the scheduler.
- ``Running`` (interrupted by the crash) → the interrupted attempt counts: the task gets the
  attempts its retry policy has left. With none left it fails ("interrupted").
- ``Failed`` → fails again at once with its stored error (it is not re-run), so its
  dependents are skipped exactly as before the crash.
- ``Pending`` → runs normally.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from cloaca.errors import TaskExecutionError
from cloaca.execution.result import COMPLETED, FAILED, RUNNING, SKIPPED, TaskResult
from cloaca.execution.state import merged_input
from cloaca.retry import RetryPolicy
from cloaca.runner.outputs import completed_output
from cloaca.workflow import Workflow

TRIGGER_RULE_FALSE = "trigger rule false"


@dataclass
class ResumePlan:
    """How to continue a stored execution.

    ``workflow`` may differ from the registered one only in the retry policy or function of
    interrupted/failed tasks; ``offsets`` maps a task to the attempts it already used (added
    to the scheduler's attempt numbers when persisting); tasks in ``exhausted`` fail at once
    and keep their stored attempt count; ``refailed`` are those of them that had already failed
    (their failure is in the event log already).
    """

    workflow: Workflow
    completed: dict[str, TaskResult] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)
    exhausted: set[str] = field(default_factory=set)
    refailed: set[str] = field(default_factory=set)


def plan_resume(
    workflow: Workflow, initial: dict[str, Any], task_rows: list[dict[str, Any]]
) -> ResumePlan:
    """Build the :class:`ResumePlan` for ``workflow`` from its stored task rows."""
    dag = workflow.dag
    selected = workflow.selection if workflow.selection is not None else set(dag.order)
    rows = {r["task_id"]: r for r in task_rows}
    plan = ResumePlan(workflow)
    outputs: dict[str, dict[str, Any]] = {}
    replaced = {}

    # pending placeholders: selected tasks count as dependencies before their records exist
    records: dict[str, TaskResult] = {n: TaskResult(n) for n in selected}

    def input_for(node: str) -> dict[str, Any]:
        return merged_input(dag, node, initial, outputs, records)

    for node in dag.order:
        row = rows.get(node)
        if node not in selected or row is None:
            continue
        status = row["status"]
        if status == COMPLETED:
            rec = task_result_from_row(row)
            out, rec.delta, rec.removed = completed_output(row, input_for(node))
            plan.completed[node] = records[node] = rec
            outputs[node] = out
        elif status == SKIPPED and row["skip_reason"] == TRIGGER_RULE_FALSE:
            plan.completed[node] = records[node] = task_result_from_row(row)
            outputs[node] = input_for(node)
        elif status in (RUNNING, FAILED):
            spec, prior = workflow.tasks[node], int(row["attempts"] or 0)
            plan.offsets[node] = prior
            left = spec.retry.max_attempts - prior
            if status == RUNNING and left > 0:
                replaced[node] = replace(spec, retry=replace(spec.retry, max_attempts=left))
                continue
            if status == RUNNING:
                err = TaskExecutionError(
                    f"interrupted during attempt {prior} (its runner died) "
                    "and its retry policy allows no more attempts",
                    task_id=node,
                    error_type="Interrupted",
                )
            else:
                err = task_result_from_row(row).error or TaskExecutionError(
                    "failed", task_id=node, error_type="Failed"
                )
            plan.exhausted.add(node)
            if status == FAILED:
                plan.refailed.add(node)
            replaced[node] = replace(
                spec,
                fn=_raiser(err),
                retry=RetryPolicy.none(),
                is_async=False,
                accepts_handle=False,
            )
    if replaced:
        tasks = {k: replaced.get(k, s) for k, s in workflow.tasks.items()}
        plan.workflow = Workflow(
            workflow.name,
            tasks,
            workflow.namespaces,
            workflow.description,
            workflow.tags,
            selection=workflow.selection,
        )
    return plan


def _raiser(err: TaskExecutionError) -> Callable[[Any], Any]:
    def fail_again(context: Any) -> Any:
        raise err

    return fail_again


def task_result_from_row(row: dict[str, Any]) -> TaskResult:
    """A :class:`TaskResult` from a ``task_executions`` row (without ``delta``)."""
    error = None
    if row["status"] == FAILED or row["error_type"]:
        error = TaskExecutionError(
            row["error_message"] or "failed",
            task_id=row["task_id"],
            error_type=row["error_type"],
            traceback=row["traceback"],
        )
    return TaskResult(
        task_id=row["task_id"],
        status=row["status"],
        attempts=int(row["attempts"] or 0),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        error=error if row["status"] == FAILED else None,
        skip_reason=row["skip_reason"],
    )
