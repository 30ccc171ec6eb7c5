"""Per-attempt claims: a task attempt runs only after this runner claimed it in the database.

Ownership of an execution (:mod:`cloaca.runner.claims`) is not enough on its own: a runner that
stalls past ``stale_after`` while still alive (SIGSTOP, a paused VM) has its executions taken
over by another runner, and when it wakes its scheduler could start the next attempts before the
writer notices the loss. With attempt claims on, every attempt is first claimed in one
transaction that locks the execution row (``FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on
SQLite), checks that this runner still owns it, and moves the task's ``claimed_attempt`` forward::

    UPDATE task_executions SET attempt_owner = :me, claimed_attempt = :n
     WHERE execution_id = :e AND task_id = :t
       AND (claimed_attempt IS NULL OR claimed_attempt < :n)

The attempt runs only if that updated one row; otherwise it does not run and the execution's
local run stops as when ownership is lost. A takeover locks the same execution row, so it
happens either before a claim (the claim is refused) or after it (the new owner sees the claimed
attempt and counts it as interrupted: :func:`count_claimed`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select, update

from cloaca.storage.models import pipeline_executions as pe
from cloaca.storage.models import task_executions as te
from cloaca.storage.retry import Backoff, is_transient, recover_connections

if TYPE_CHECKING:
    from cloaca.storage import Store

_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="cloaca-claim")


def default_for(store: Store) -> bool:
    """Claims are on by default where several runners share a database (PostgreSQL)."""
    return store.dialect == "postgresql"


def claim_attempt(
    store: Store,
    runner_id: str,
    execution_id: str,
    task_id: str,
    attempt: int,
    again: bool = False,
) -> bool:
    """Claim attempt ``attempt`` of ``task_id``; True only if this runner may run it.

    Refused when the execution is not owned by ``runner_id`` or when this (or a later)
    attempt of the task was already claimed. ``again``: a retry after a failed try whose
    commit may have gone through, so this runner's own claim of ``attempt`` counts.
    """
    owned = select(pe.c.id).where(pe.c.id == execution_id, pe.c.owner == runner_id)
    if store.dialect == "postgresql":
        # FOR KEY SHARE: waits for a takeover (FOR UPDATE), not for this runner's writer
        owned = owned.with_for_update(read=True, key_share=True)
    free = [te.c.claimed_attempt.is_(None), te.c.claimed_attempt < attempt]
    if again:
        free.append(and_(te.c.claimed_attempt == attempt, te.c.attempt_owner == runner_id))
    with store.write() as conn:
        res = conn.execute(
            update(te)
            .where(
                te.c.execution_id == execution_id,
                te.c.task_id == task_id,
                or_(*free),
                owned.exists(),
            )
            .values(attempt_owner=runner_id, claimed_attempt=attempt)
        )
        return res.rowcount == 1


def count_claimed(task_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold claimed attempts into stored task rows before a resume: an attempt claimed
    after the last recorded state change counts as started (and interrupted)."""
    for row in task_rows:
        claimed = row.get("claimed_attempt") or 0
        if claimed > int(row["attempts"] or 0):
            row["attempts"] = claimed
            if row["status"] == "Pending":
                row["status"] = "Running"
    return task_rows


def make_gate(
    store: Store,
    runner_id: str,
    execution_id: str,
    offsets: Mapping[str, int],
    exhausted: Collection[str],
    on_refused: Callable[[str], None],
) -> Callable[[str, int], Awaitable[bool]]:
    """The scheduler's ``before_attempt`` gate for one execution.

    Scheduler attempt numbers are offset by the attempts used before a resume (as the driver
    persists them); tasks in ``exhausted`` only fail again and run no user code, so they are
    not claimed. ``on_refused(reason)`` is called before a veto.
    """

    async def before_attempt(node: str, attempt: int) -> bool:
        if node in exhausted:
            return True
        number = offsets.get(node, 0) + attempt
        loop = asyncio.get_running_loop()
        backoff = Backoff()
        while True:  # a lost connection is retried (reconnecting), never taken for a refusal
            try:
                ok = await loop.run_in_executor(
                    _POOL, claim_attempt, store, runner_id, execution_id, node, number,
                    backoff.failures > 0,
                )  # fmt: skip
                break
            except Exception as exc:
                if not is_transient(exc):
                    raise
                recover_connections(store)
                await asyncio.sleep(backoff.next())
        if not ok:
            on_refused(
                f"attempt {number} of task {node!r} could not be claimed "
                "(another runner owns the execution or claimed the attempt)"
            )
        return ok

    return before_attempt


__all__ = ["claim_attempt", "count_claimed", "default_for", "make_gate"]
