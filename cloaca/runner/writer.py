"""The write-behind queue: every state change of every execution goes through one thread.

The scheduler's event callback only appends to a queue (no I/O in the task path). The writer
thread takes everything queued so far, coalesces updates of the same row, and writes the batch
in one transaction — so a burst of task events costs one commit, not one per event. Callers
that need durability (the end of an execution) wait on a barrier. New executions do not go
through here: ``DefaultRunner`` commits them itself before ``submit`` returns.

Nothing queued is dropped when a write fails: a transient failure (lost connection, full disk,
locked file; :func:`cloaca.storage.retry.is_transient`) keeps the batch, waits (backoff from
:data:`~cloaca.storage.retry.FIRST_DELAY` doubling to :data:`~cloaca.storage.retry.MAX_DELAY`),
reconnects and tries again — with whatever was queued meanwhile — until it commits. A batch
that fails for another reason is written one change at a time so that only the change the
database refuses for good (logged with its execution and task) is left out. Only ``close``
gives up, after its timeout: what is still unwritten then is what a crash would have lost,
and the next runner resumes those executions.

Ownership fence: updates of an execution are applied only while this runner still owns it
(``pipeline_executions.owner``; the rows are locked ``FOR UPDATE`` on PostgreSQL). If another
runner took it over, the updates are dropped and ``on_lost(execution_id)`` is called so the
local run stops.

Events (``record_event``) ride in the same batches and transactions: each is numbered after the
execution's stored events when it is written (:mod:`cloaca.runner.event_log`), and fenced like
updates, so an execution's event log has one writer at a time and gap-free sequence numbers.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, delete, select, update

from cloaca.errors import StorageError
from cloaca.runner.event_log import insert_events
from cloaca.storage import Store
from cloaca.storage.models import execution_events as ee
from cloaca.storage.models import pipeline_executions as pe
from cloaca.storage.models import task_executions as te
from cloaca.storage.models import workflow_registrations as wr
from cloaca.storage.retry import Backoff, describe_failure, is_transient, recover_connections

log = logging.getLogger("cloaca.runner")


class Barrier:
    """Set when everything queued before it is written (or refused for good, logged);
    ``error`` is set only when the writer gave up at ``close``."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.error: BaseException | None = None

    def wait(self, timeout: float | None = None) -> None:
        """Block until the writes before this barrier are committed; raise on failure."""
        if not self.event.wait(timeout):
            raise TimeoutError("database writes did not complete in time")
        if self.error is not None:
            raise StorageError(f"could not persist runner state: {self.error}") from self.error


class Writer:
    """Owns the single write-behind thread of a runner (see the module docstring)."""

    def __init__(self, store: Store, runner_id: str, on_lost: Callable[[str], None]) -> None:
        self.store = store
        self.runner_id = runner_id
        self.on_lost = on_lost
        self.queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._give_up_at: float | None = None
        self._failures = 0
        self._thread = threading.Thread(target=self._loop, name="cloaca-writer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ producers
    def forget_execution(self, execution_id: str) -> None:
        """Queue the removal of an execution (and its task rows and events) if it exists: one
        whose recording was given up on, in case a commit went through unseen."""
        self.queue.put(("d", execution_id))

    def register_workflow(self, row: dict[str, Any]) -> None:
        """Queue a workflow registration (ignored when (name, version) exists)."""
        self.queue.put(("w", row))

    def update_task(self, execution_id: str, task_id: str, fields: dict[str, Any]) -> None:
        """Queue column updates of one task row."""
        self.queue.put(("t", execution_id, task_id, fields))

    def update_execution(self, execution_id: str, fields: dict[str, Any]) -> None:
        """Queue column updates of one execution row."""
        self.queue.put(("e", execution_id, fields))

    def record_event(
        self, execution_id: str, event: dict[str, Any], *, fenced: bool = True
    ) -> None:
        """Queue one event of an execution (see :func:`cloaca.runner.event_log.event`).

        ``fenced`` events are dropped unless this runner owns the execution (every event of a
        running execution); unfenced ones are written regardless (``task_created`` of an
        execution being inserted, which may be ``Pending`` with no owner yet).
        """
        self.queue.put(("v", execution_id, event, fenced))

    def barrier(self) -> Barrier:
        """Return a barrier set once everything queued so far is committed."""
        barrier = Barrier()
        self.queue.put(("b", barrier))
        return barrier

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything queued so far is committed."""
        self.barrier().wait(timeout)

    def close(self, timeout: float | None = 30) -> None:
        """Write what is queued and stop the thread; give up retrying after ``timeout``."""
        if self._thread.is_alive():
            self._give_up_at = None if timeout is None else time.monotonic() + timeout
            self.queue.put(("stop",))
            self._wake.set()
            self._thread.join(timeout)

    @property
    def retrying(self) -> bool:
        """True while the last write failed and its changes wait for the next try."""
        return self._failures > 0

    # ------------------------------------------------------------------ the thread
    def _loop(self) -> None:
        pending: list[tuple[Any, ...]] = []
        backoff = Backoff()
        while True:
            if not pending:
                pending.append(self.queue.get())
            while True:
                try:
                    pending.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            stopping = any(op[0] == "stop" for op in pending)
            try:
                self._write(pending)
            except Exception as exc:  # transient: keep everything, wait, reconnect, try again
                recover_connections(self.store)
                self._failures = backoff.failures + 1
                changes = sum(1 for op in pending if op[0] not in ("b", "stop"))
                give_up = self._give_up_at
                if stopping and give_up is not None and time.monotonic() >= give_up:
                    log.error(
                        "runner shutting down with %d changes it could not write (%s); "
                        "their executions stay Running and are resumed by the next runner",
                        changes,
                        describe_failure(exc),
                    )
                    _release(pending, exc)
                    return
                delay = backoff.next()
                if backoff.failures == 1 or backoff.failures % 20 == 0:
                    log.warning(
                        "runner database write failed (%s); %d queued changes kept, "
                        "retrying in %.2fs (try %d)",
                        describe_failure(exc),
                        changes,
                        delay,
                        backoff.failures,
                    )
                self._wake.wait(delay)
                self._wake.clear()
                continue
            if backoff.failures:
                log.warning(
                    "runner database writes resumed after %d failed tries", backoff.failures
                )
            backoff.reset()
            self._failures = 0
            pending = []
            if stopping:
                return

    def _write(self, pending: list[tuple[Any, ...]]) -> None:
        """Commit ``pending`` (emptied as it is written); raise only on a transient failure."""
        try:
            self._apply(pending)
        except Exception as exc:
            if is_transient(exc):
                raise
            log.warning(
                "runner batch refused (%s); writing it change by change", describe_failure(exc)
            )
        else:
            _release(pending, None)
            pending.clear()
            return
        while pending:  # a barrier here means: what came before is written or refused for good
            op = pending[0]
            if op[0] == "b":
                op[1].event.set()
            elif op[0] != "stop":
                try:
                    self._apply([op])
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    log.error(
                        "runner database refused a change for good (%s): %r",
                        describe_failure(exc),
                        op[:3],
                    )
            pending.pop(0)

    def _apply(self, batch: list[tuple[Any, ...]]) -> None:
        registrations: list[dict[str, Any]] = []
        tasks: dict[tuple[str, str], dict[str, Any]] = {}
        execs: dict[str, dict[str, Any]] = {}
        events: list[tuple[str, dict[str, Any], bool]] = []
        forgotten = [op[1] for op in batch if op[0] == "d"]
        for op in batch:
            kind = op[0]
            if kind == "t":
                tasks.setdefault((op[1], op[2]), {}).update(_storable(op[3]))
            elif kind == "e":
                execs.setdefault(op[1], {}).update(_storable(op[2]))
            elif kind == "w":
                registrations.append(op[1])
            elif kind == "v":
                events.append((op[1], op[2], op[3]))
        if not (registrations or tasks or execs or events or forgotten):
            return
        lost: set[str] = set()
        owned: set[str] = set()
        with self.store.write() as conn:
            for row in registrations:
                conn.execute(_insert_ignore(self.store.dialect, wr), [row])
            ids = {eid for eid, _ in tasks} | set(execs) | {e[0] for e in events if e[2]}
            if ids:
                owned_q = select(pe.c.id).where(pe.c.id.in_(ids), pe.c.owner == self.runner_id)
                if self.store.supports_skip_locked:
                    # FOR NO KEY UPDATE: excludes takeovers (FOR UPDATE), not attempt claims
                    owned_q = owned_q.with_for_update(key_share=True)
                owned = set(conn.scalars(owned_q))
                lost = ids - owned
                _update_tasks(conn, {k: v for k, v in tasks.items() if k[0] in owned})
                for eid, fields in execs.items():
                    if eid in owned:
                        conn.execute(update(pe).where(pe.c.id == eid).values(**fields))
            kept = [(eid, ev) for eid, ev, fenced in events if not fenced or eid in owned]
            if kept:
                insert_events(conn, kept)
            if forgotten:  # given up on by submit: remove whatever of it got committed
                conn.execute(delete(ee).where(ee.c.execution_id.in_(forgotten)))
                conn.execute(delete(te).where(te.c.execution_id.in_(forgotten)))
                conn.execute(delete(pe).where(pe.c.id.in_(forgotten)))
        for eid in lost:
            log.warning("execution %s is owned by another runner now; stopping it here", eid)
            self.on_lost(eid)


_MESSAGES = ("error_type", "error_message", "traceback", "skip_reason")


def _storable(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with NUL characters in error texts spelled ``\\x00`` (PostgreSQL text cannot
    hold NUL; an exception message may): a task's failure is recorded, not refused."""
    bad = [k for k in _MESSAGES if isinstance(fields.get(k), str) and "\x00" in fields[k]]
    if not bad:
        return fields
    return {**fields, **{k: fields[k].replace("\x00", "\\x00") for k in bad}}


def _release(pending: list[tuple[Any, ...]], error: BaseException | None) -> None:
    """Set every barrier in ``pending`` (with ``error`` when the writes were not all made)."""
    for op in pending:
        if op[0] == "b":
            op[1].error = error
            op[1].event.set()


def _update_tasks(conn: Any, tasks: dict[tuple[str, str], dict[str, Any]]) -> None:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for (eid, tid), fields in tasks.items():
        keys = tuple(sorted(fields))
        params = {"b_eid": eid, "b_tid": tid}
        params.update({"v_" + k: v for k, v in fields.items()})
        groups.setdefault(keys, []).append(params)
    for keys, rows in groups.items():
        stmt = (
            update(te)
            .where(te.c.execution_id == bindparam("b_eid"), te.c.task_id == bindparam("b_tid"))
            .values({k: bindparam("v_" + k) for k in keys})
        )
        conn.execute(stmt, rows)


def _insert_ignore(dialect: str, table: Any) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()
