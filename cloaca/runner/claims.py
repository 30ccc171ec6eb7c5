"""Who runs what: the runners table (liveness) and atomic claims of executions.

A runner process registers a row in ``runners`` and refreshes ``heartbeat_at``. An execution
is owned by one runner (``pipeline_executions.owner``); only the owner runs its tasks, and
the writer drops updates from a runner that lost ownership. An execution is *claimable* when
it is ``Pending`` with no owner (queued with ``enqueue``) or ``Pending``/``Running`` while its
owner is dead: no runner row, a heartbeat older than the stale limit, or — on this host — a
process id that no longer exists (so a crashed runner's work is picked up at once, without
waiting for its heartbeat to go stale).

Claims are one transaction: ``SELECT ... FOR UPDATE SKIP LOCKED`` then ``UPDATE owner`` on
PostgreSQL, the same statements under ``BEGIN IMMEDIATE`` on SQLite; two runners therefore
never both own an execution. Claimed task attempts (:mod:`cloaca.runner.attempts`) are folded
into the task rows a claim returns.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Collection
from typing import Any

from sqlalchemy import and_, delete, exists, insert, or_, select, text, update

from cloaca._process import pid_alive
from cloaca.runner.attempts import count_claimed
from cloaca.storage import Store
from cloaca.storage.models import pipeline_executions as pe
from cloaca.storage.models import runners
from cloaca.storage.models import task_executions as te

HOSTNAME = socket.gethostname()
ACTIVE = ("Pending", "Running")


def register_runner(store: Store, runner_id: str) -> None:
    """Insert this process's row in ``runners``."""
    now = time.time()
    row = {"id": runner_id, "hostname": HOSTNAME, "pid": os.getpid()}
    with store.write() as conn:
        conn.execute(insert(runners), [{**row, "started_at": now, "heartbeat_at": now}])


def heartbeat(store: Store, runner_id: str) -> None:
    """Refresh this runner's heartbeat (re-registering it if its row was removed)."""
    with store.write() as conn:
        res = conn.execute(
            update(runners).where(runners.c.id == runner_id).values(heartbeat_at=time.time())
        )
        if res.rowcount == 0:
            now = time.time()
            conn.execute(
                insert(runners),
                [
                    {
                        "id": runner_id,
                        "hostname": HOSTNAME,
                        "pid": os.getpid(),
                        "started_at": now,
                        "heartbeat_at": now,
                    }
                ],
            )


def unregister_runner(store: Store, runner_id: str) -> None:
    """Remove this runner's row: what it still owns becomes claimable at once."""
    with store.write() as conn:
        conn.execute(delete(runners).where(runners.c.id == runner_id))


def reap_dead_local_runners(store: Store, runner_id: str) -> int:
    """Delete rows of runners on this host whose process is gone; return how many."""
    with store.read() as conn:
        rows = conn.execute(
            select(runners.c.id, runners.c.pid).where(
                runners.c.hostname == HOSTNAME, runners.c.id != runner_id
            )
        ).all()
    dead = [rid for rid, pid in rows if not pid_alive(pid)]
    if dead:
        with store.write() as conn:
            conn.execute(delete(runners).where(runners.c.id.in_(dead)))
    return len(dead)


def session_name(runner_id: str) -> str:
    """The PostgreSQL ``application_name`` of a runner's sessions."""
    return f"cloaca-runner-{runner_id}"


def end_dead_sessions(store: Store, known: Collection[str], stale_before: float) -> int:
    """PostgreSQL: end the sessions of dead runners that still own active executions.

    A runner stopped in the middle of sending a statement (SIGSTOP, a paused VM) keeps its
    transaction and its row locks — the server's idle-in-transaction timeout does not apply
    while a message is half received — and claims skip locked rows. Its heartbeat is stale,
    so it counts as dead: its sessions are ended, which rolls its transaction back and frees
    the rows. Returns how many sessions were ended (0 where the role may not signal them).
    """
    if store.dialect != "postgresql" or not known:
        return 0
    live_owner = exists().where(runners.c.id == pe.c.owner, runners.c.heartbeat_at >= stale_before)
    q = (
        select(pe.c.owner)
        .where(pe.c.status.in_(ACTIVE), pe.c.workflow_name.in_(list(known)))
        .where(pe.c.owner.is_not(None), ~live_owner)
        .distinct()
    )
    with store.read() as conn:
        dead = [session_name(owner) for owner in conn.scalars(q)]
    if not dead:
        return 0
    try:
        with store.write() as conn:
            ended = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = ANY(:names) AND pid <> pg_backend_pid()"
                ),
                {"names": dead},
            ).scalar()
    except Exception:  # no privilege to signal them: the idle timeout is the fallback
        return 0
    return int(ended or 0)


def _claimable(known: Collection[str], stale_before: float) -> Any:
    live_owner = exists().where(runners.c.id == pe.c.owner, runners.c.heartbeat_at >= stale_before)
    return and_(
        pe.c.status.in_(ACTIVE),
        pe.c.workflow_name.in_(list(known)),
        or_(pe.c.owner.is_(None), ~live_owner),
    )


def has_claimable(store: Store, known: Collection[str], stale_before: float) -> bool:
    """Cheap read-only check run on every poll before trying a claim."""
    if not known:
        return False
    with store.read() as conn:
        q = select(pe.c.id).where(_claimable(known, stale_before)).limit(1)
        return conn.execute(q).first() is not None


def claim_executions(
    store: Store, runner_id: str, known: Collection[str], stale_before: float, limit: int = 8
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Atomically take ownership of up to ``limit`` claimable executions.

    Returns each claimed execution row (as it was before the claim) with its task rows.
    """
    if not known:
        return []
    now = time.time()
    with store.write() as conn:
        q = select(pe).where(_claimable(known, stale_before)).order_by(pe.c.created_at).limit(limit)
        if store.supports_skip_locked:
            q = q.with_for_update(skip_locked=True, of=pe)
        rows = [dict(r._mapping) for r in conn.execute(q)]
        claimed = []
        for row in rows:
            resumed = row["status"] == "Running"
            values: dict[str, Any] = {"owner": runner_id, "status": "Running"}
            if row["started_at"] is None:
                values["started_at"] = now
            if resumed:
                values["recovery_count"] = row["recovery_count"] + 1
            conn.execute(update(pe).where(pe.c.id == row["id"]).values(**values))
            tasks = count_claimed(
                [
                    dict(r._mapping)
                    for r in conn.execute(
                        select(te).where(te.c.execution_id == row["id"]).order_by(te.c.position)
                    )
                ]
            )
            claimed.append((row, tasks))
    return claimed
