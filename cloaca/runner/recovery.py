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
- ``Running`` (its runner died during the attempt, or possibly during it: see
  :func:`~cloaca.runner.attempts.count_claimed`) → the task is *recovered*: it runs again under
  its recovery budget (``max_recovery_attempts`` per task, stored in ``recovery_attempts``),
  not its retry policy — the lost attempt keeps its number but is not charged to the retries.
  Once the budget is used up it fails with ``error_type="Interrupted"``.
- ``Failed`` → fails again at once with its stored error (it is not re-run), so its
  dependents are skipped exactly as before the crash.
- ``Pending`` → runs normally (numbering its attempts after the ones it already used, if it
  was recovered before and its runner died again before the new attempt started).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from cloaca.errors import INTERRUPTED, TaskExecutionError
from cloaca.execution.result import COMPLETED, FAILED, PENDING, RUNNING, SKIPPED, TaskResult
from cloaca.execution.scheduler import DEFAULT_MAX_RECOVERIES
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
    recoveries: dict[str, int] = field(default_factory=dict)
    recovered: dict[str, int] = field(default_factory=dict)


def plan_resume(
    workflow: Workflow,
    initial: dict[str, Any],
    task_rows: list[dict[str, Any]],
    max_recoveries: int = DEFAULT_MAX_RECOVERIES,
) -> ResumePlan:
    """Build the :class:`ResumePlan` for ``workflow`` from its stored task rows.

    ``max_recoveries`` is the recovery budget of each task (``max_recovery_attempts``).
    """
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
        elif status == PENDING and int(row["attempts"] or 0) > 0:
            # recovered earlier, and its runner died again before the new attempt started
            spec, prior = workflow.tasks[node], int(row["attempts"])
            used = int(row.get("recovery_attempts") or 0)
            plan.offsets[node] = prior
            plan.recoveries[node] = used
            left = max(1, spec.retry.max_attempts - (prior - used))
            replaced[node] = replace(spec, retry=replace(spec.retry, max_attempts=left))
        elif status in (RUNNING, FAILED):
            spec, prior = workflow.tasks[node], int(row["attempts"] or 0)
            used = int(row.get("recovery_attempts") or 0)
            plan.offsets[node] = prior
            if used:
                plan.recoveries[node] = used
            if status == RUNNING and used < max_recoveries:
                # the lost attempt and the earlier lost ones are not charged to the retries
                left = max(1, spec.retry.max_attempts - (prior - used - 1))
                plan.recoveries[node] = used + 1
                plan.recovered[node] = prior
                replaced[node] = replace(spec, retry=replace(spec.retry, max_attempts=left))
                continue
            if status == RUNNING:
                err = TaskExecutionError(
                    f"interrupted during attempt {prior} by the death of its runner; it was "
                    f"recovered {used} time(s) already and its recovery budget "
                    f"(max_recovery_attempts={max_recoveries}) is used up",
                    task_id=node,
                    error_type=INTERRUPTED,
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
