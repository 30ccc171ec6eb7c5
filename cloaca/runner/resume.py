"""Re-opening a failed execution whose tasks failed because their executor went away.

When the Dask scheduler disappears, running task attempts fail with
``error_type="DaskSchedulerLost"`` and the execution ends ``Failed`` — nothing ran to a
result, so nothing is recorded for them. :func:`reopen_lost` turns such an execution back into
queued work: those task rows become ``Pending`` again (their attempts start over), rows skipped
only because an upstream task failed are decided again, and the execution becomes an unowned
``Pending`` row that any runner claims (:mod:`cloaca.runner.claiming`). Resuming then follows
the ordinary path (:mod:`cloaca.runner.recovery`): completed tasks are not run again, and tasks
that failed for other reasons fail again with their stored error.
"""

from __future__ import annotations

from sqlalchemy import and_, select, update

from cloaca.storage import Store
from cloaca.storage.models import pipeline_executions as pe
from cloaca.storage.models import task_executions as te

RESUMABLE_ERRORS = ("DaskSchedulerLost",)
UPSTREAM_SKIP = "upstream failed: "


def reopen_lost(store: Store, execution_id: str) -> list[str]:
    """Queue execution ``execution_id`` again; return the ids of the tasks that will re-run.

    Raises
    ------
    KeyError
        No such execution.
    ValueError
        The execution did not fail, or none of its tasks failed because an executor was lost.
    """
    with store.write() as conn:
        row = conn.execute(select(pe.c.status).where(pe.c.id == execution_id)).first()
        if row is None:
            raise KeyError(f"no execution {execution_id!r} in {store.url.display}")
        lost = [
            r.task_id
            for r in conn.execute(
                select(te.c.task_id).where(
                    te.c.execution_id == execution_id,
                    te.c.status == "Failed",
                    te.c.error_type.in_(RESUMABLE_ERRORS),
                )
            )
        ]
        if row.status != "Failed" or not lost:
            raise ValueError(
                f"execution {execution_id} is {row.status} with no task failed by a lost "
                f"executor ({', '.join(RESUMABLE_ERRORS)}); only such executions can be resumed"
            )
        cleared = {
            "status": "Pending",
            "attempts": 0,
            "started_at": None,
            "finished_at": None,
            "error_type": None,
            "error_message": None,
            "traceback": None,
            "skip_reason": None,
            "output": None,
            "output_delta": None,
            "attempt_owner": None,
            "claimed_attempt": None,
        }
        mine = te.c.execution_id == execution_id
        conn.execute(update(te).where(mine, te.c.task_id.in_(lost)).values(**cleared))
        conn.execute(
            update(te)
            .where(and_(mine, te.c.status == "Skipped", te.c.skip_reason.startswith(UPSTREAM_SKIP)))
            .values(**cleared)
        )
        conn.execute(
            update(pe)
            .where(pe.c.id == execution_id)
            .values(
                status="Pending",
                owner=None,
                finished_at=None,
                error_message=None,
                final_context=None,
            )
        )
    return lost


__all__ = ["RESUMABLE_ERRORS", "reopen_lost"]
