"""`DefaultRunner`: durable workflow executions on SQLite or PostgreSQL.

The runner looks workflows up by name (the process-wide registry, or workflows registered on
the runner itself), records each execution and its tasks in the database through the
write-behind :class:`~cloaca.runner.writer.Writer`, and runs them with the one scheduler
(:func:`~cloaca.execution.scheduler.execute_workflow`) — one thread per execution. A
background thread (:mod:`cloaca.runner.service`) keeps the heartbeat, claims work written by
other processes (queued or orphaned executions), fires cron schedules and polls triggers.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import insert, select

from cloaca.context import Context
from cloaca.errors import StorageError, StorageUnavailableError
from cloaca.execution.executors import make_executor
from cloaca.execution.result import ExecutionResult
from cloaca.execution.state import initial_dict
from cloaca.runner import attempts, claims, history
from cloaca.runner.claiming import ClaimsMixin
from cloaca.runner.config import DefaultRunnerConfig
from cloaca.runner.cron import CronMixin
from cloaca.runner.driver import ExecutionDriver
from cloaca.runner.event_log import TASK_CREATED, event, insert_events
from cloaca.runner.outputs import upstream_columns
from cloaca.runner.recovery import ResumePlan
from cloaca.runner.trigger_runner import TriggerMixin
from cloaca.runner.workflows import WorkflowsMixin
from cloaca.runner.writer import Writer
from cloaca.storage import Store
from cloaca.storage.models import pipeline_executions as pe
from cloaca.storage.models import task_executions as te
from cloaca.storage.retry import write_within
from cloaca.workflow import Workflow

log = logging.getLogger("cloaca.runner")


class DefaultRunner(WorkflowsMixin, ClaimsMixin, CronMixin, TriggerMixin):
    """Run workflows durably: every execution and task is recorded, crashes are recovered.

    Parameters
    ----------
    database_url:
        ``sqlite:///path/file.db`` (created if missing), ``sqlite://relative.db``,
        ``sqlite:///:memory:`` or ``postgresql://user@host:port/db``.
    config:
        A :class:`DefaultRunnerConfig` (defaults when None).
    schema:
        PostgreSQL schema for a tenant (see :meth:`with_schema`).
    heartbeat_interval, stale_after:
        Seconds between heartbeats, and the age after which another runner's heartbeat
        counts as dead (its executions are then recovered). On PostgreSQL a session of this
        runner idle inside a transaction for ``stale_after`` is ended by the server, so a
        stalled runner never holds the locks a takeover needs.
    claim_attempts:
        Claim every task attempt in the database before it starts, so that a runner which
        stalled while another took its execution over never starts an attempt again
        (:mod:`cloaca.runner.attempts`). None (default): on for PostgreSQL, off for SQLite.

    Examples
    --------
    >>> with DefaultRunner("sqlite:///runs.db") as runner:       # doctest: +SKIP
    ...     result = runner.execute("etl", {"day": "2024-01-01"})
    """

    def __init__(
        self,
        database_url: str,
        config: DefaultRunnerConfig | None = None,
        *,
        schema: str | None = None,
        heartbeat_interval: float = 2.0,
        stale_after: float = 30.0,
        claim_attempts: bool | None = None,
    ) -> None:
        self.config = config if config is not None else DefaultRunnerConfig()
        # first: an unknown executor or an unreachable Dask scheduler fails before any thread starts
        self.executor = make_executor(
            self.config.executor,
            self.config.dask_scheduler,
            default_timeout=self.config.task_timeout_seconds,
        )
        self.runner_id = str(uuid.uuid4())
        self.store = Store(
            database_url,
            schema=schema,
            pool_size=self.config.db_pool_size,
            idle_transaction_timeout=stale_after,  # a stalled runner releases its row locks
            application_name=claims.session_name(self.runner_id),
        )
        self.heartbeat_interval = heartbeat_interval
        self.stale_after = stale_after
        self.claim_attempts = (
            attempts.default_for(self.store) if claim_attempts is None else claim_attempts
        )
        self._workflows: dict[str, Workflow] = {}
        self._recorded: set[tuple[str, str]] = set()
        self._live: dict[str, ExecutionDriver] = {}
        self._lock = threading.Lock()
        self._closed = False
        claims.register_runner(self.store, self.runner_id)
        self.writer = Writer(self.store, self.runner_id, on_lost=self._lost)
        self._init_cron()
        self._init_triggers()
        if self.config.enable_recovery:
            claims.reap_dead_local_runners(self.store, self.runner_id)
            self.claim_work()
        from cloaca.runner.service import Service

        self._service = Service(self)
        self._service.start()
        _live_runners.add(self)

    @classmethod
    def with_config(cls, database_url: str, config: DefaultRunnerConfig) -> DefaultRunner:
        """Upstream's constructor with a configuration: ``DefaultRunner(database_url, config)``."""
        return cls(database_url, config)

    @classmethod
    def with_schema(
        cls, database_url: str, schema: str, config: DefaultRunnerConfig | None = None
    ) -> DefaultRunner:
        """A runner for one tenant: its tables live in PostgreSQL ``schema`` (created on first
        use); tenants never see each other's executions, schedules or triggers."""
        return cls(database_url, config, schema=schema)

    @property
    def schema(self) -> str | None:
        """The tenant schema, or None."""
        return self.store.schema

    # ------------------------------------------------------------------ executions
    def submit(
        self,
        workflow: str | Workflow,
        context: Context | Mapping[str, Any] | None = None,
        *,
        start_from: str | None = None,
        only: Sequence[str] | None = None,
        until: str | None = None,
        origin: str = "api",
    ) -> str:
        """Start an execution in this runner without waiting; return its id.

        Returns once the execution is committed to the database (so it survives a crash of
        this process); raises :class:`~cloaca.errors.StorageUnavailableError` when it could
        not be recorded within ``config.db_write_timeout_seconds`` (nothing was started).
        Use :meth:`wait` for the result.
        """
        return self._create(workflow, context, start_from, only, until, origin, run=True)[0]

    def enqueue(
        self,
        workflow: str | Workflow,
        context: Context | Mapping[str, Any] | None = None,
        *,
        start_from: str | None = None,
        only: Sequence[str] | None = None,
        until: str | None = None,
    ) -> str:
        """Store a ``Pending`` execution that any runner on this database may claim and run
        (this one included, at its next poll); return its id once it is committed."""
        eid, _ = self._create(workflow, context, start_from, only, until, "api", run=False)
        return eid

    def _create(
        self,
        workflow: str | Workflow,
        context: Context | Mapping[str, Any] | None,
        start_from: str | None,
        only: Sequence[str] | None,
        until: str | None,
        origin: str,
        run: bool,
        execution_id: str | None = None,
    ) -> tuple[str, ExecutionDriver | None]:
        self._check_open()
        wf = self._resolve(workflow)
        self._record(wf)
        selection = None
        if start_from or only or until:
            wf = wf.subset(start_from, only, until)
            selection = {"start_from": start_from, "only": list(only or []) or None, "until": until}
        initial = wf.check_inputs(initial_dict(context))  # refused before anything is written
        eid = execution_id or str(uuid.uuid4())
        now = time.time()
        selected = wf.selection if wf.selection is not None else None
        upstream = upstream_columns(wf.dag, selected)
        row = {
            "id": eid,
            "workflow_name": wf.name,
            "workflow_version": wf.version,
            "status": "Running" if run else "Pending",
            "origin": origin,
            "context": json.dumps(initial),
            "selection": json.dumps(selection) if selection else None,
            "owner": self.runner_id if run else None,
            "recovery_count": 0,
            "created_at": now,
            "started_at": now if run else None,
        }
        tasks: list[dict[str, Any]] = [
            {
                "execution_id": eid,
                "task_id": node,
                "position": i,
                "status": "Pending",
                "attempts": 0,
                "upstream": upstream[node],
            }
            for i, node in enumerate(wf.dag.order)
            if node in upstream
        ]
        created = [(eid, event(TASK_CREATED, node, at=now)) for node in upstream]
        self._record_new(row, tasks, created)
        driver = self._launch(eid, ResumePlan(wf), initial) if run else None
        return eid, driver

    def _record_new(
        self, row: dict[str, Any], tasks: list[dict[str, Any]], created: list[Any]
    ) -> None:
        """Commit a new execution, its task rows and ``task_created`` events (one transaction)
        before anything runs; raise :class:`StorageUnavailableError` when that cannot be done
        within ``db_write_timeout_seconds`` (nothing of it is left then)."""
        eid = row["id"]

        def insert_all(conn: Any) -> None:
            if conn.scalar(select(pe.c.id).where(pe.c.id == eid)) is not None:
                return  # a commit whose answer was lost: already recorded
            conn.execute(insert(pe), [row])
            if tasks:
                conn.execute(insert(te), tasks)
                insert_events(conn, created)

        try:
            write_within(self.store, insert_all, self.config.db_write_timeout_seconds)
        except StorageUnavailableError:
            self.writer.forget_execution(eid)  # in case a commit went through unseen
            raise

    def _launch(self, eid: str, plan: ResumePlan, initial: dict[str, Any]) -> ExecutionDriver:
        driver = ExecutionDriver(
            eid,
            plan,
            initial,
            self.writer,
            self.config,
            self._finished,
            caller=self.executor,
            claim_attempts=self.claim_attempts,
        )
        with self._lock:
            self._live[eid] = driver
        driver.start()
        return driver

    def _finished(self, eid: str) -> None:
        with self._lock:
            self._live.pop(eid, None)

    def _lost(self, eid: str) -> None:
        with self._lock:
            driver = self._live.get(eid)
        if driver is not None:
            driver.stop("another runner took this execution over")

    def wait(self, execution_id: str, timeout: float | None = None) -> ExecutionResult:
        """Block until execution ``execution_id`` ends and return its result.

        Works for executions run by this runner and, by polling the database, for ones run
        by other runner processes.
        """
        with self._lock:
            driver = self._live.get(execution_id)
        if driver is not None:
            return driver.future.result(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = max(self.config.scheduler_poll_interval_ms, 10) / 1000
        while True:
            record = history.get_execution(self.store, execution_id)
            if record is None:
                raise KeyError(f"no execution {execution_id!r} in {self.store.url.display}")
            if record.status in history.TERMINAL:
                result = history.load_result(self.store, execution_id)
                assert result is not None
                return result
            with self._lock:
                driver = self._live.get(execution_id)
            if driver is not None:
                return driver.future.result(timeout)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"execution {execution_id} did not finish in {timeout}s")
            time.sleep(interval)

    def execute(
        self,
        workflow: str | Workflow,
        context: Context | Mapping[str, Any] | None = None,
        **selection: Any,
    ) -> ExecutionResult:
        """Run ``workflow`` (a registered name or a :class:`Workflow`) and block until it ends.

        Returns the :class:`ExecutionResult` (``execution_id`` set); a failed task gives
        ``status == "Failed"`` rather than an exception. ``start_from``, ``only`` and
        ``until`` select a sub-DAG.
        """
        _, driver = self._create(workflow, context, *_sel(selection), "api", run=True)
        assert driver is not None
        return driver.future.result()

    async def execute_async(
        self,
        workflow: str | Workflow,
        context: Context | Mapping[str, Any] | None = None,
        **selection: Any,
    ) -> ExecutionResult:
        """Async twin of :meth:`execute`: awaits the execution without blocking the loop
        (recording it, which may wait for the database, runs in a worker thread)."""
        _, driver = await asyncio.to_thread(
            self._create, workflow, context, *_sel(selection), "api", True
        )
        assert driver is not None
        return await asyncio.wrap_future(driver.future)

    def resume(self, execution_id: str) -> str:
        """Run again an execution that failed because its executor (the Dask scheduler) went
        away; return its id (:meth:`wait` gives the result).

        Tasks that completed are not run again; the tasks whose attempts were lost run anew.
        Raises ``KeyError`` for an unknown id and ``ValueError`` for any other execution.
        """
        from cloaca.runner.resume import reopen_lost

        self._check_open()
        self.writer.flush()
        reopen_lost(self.store, execution_id)
        self.claim_work()
        return execution_id

    # ------------------------------------------------------------------ history
    def list_executions(
        self,
        workflow_name: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[history.ExecutionRecord]:
        """Stored executions, newest first (without task records; see :meth:`get_execution`)."""
        return history.list_executions(self.store, workflow_name, status, limit, offset)

    def get_execution(self, execution_id: str) -> history.ExecutionRecord | None:
        """One stored execution with its initial/final context and per-task records
        (status, attempts, timings, error, output context), or None when unknown."""
        return history.get_execution(self.store, execution_id)

    # ------------------------------------------------------------------ lifecycle
    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("this runner was shut down", url=self.store.url.display)

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop the runner.

        With ``wait`` (the default) running executions finish first — for at most ``timeout``
        seconds in all, after which the rest are stopped as without ``wait``; otherwise they
        are stopped and stay ``Running`` in the database, to be resumed by the next runner.
        """
        if self._closed:
            return
        self._closed = True
        self._service.stop()
        with self._lock:
            drivers = list(self._live.values())
        deadline = None if timeout is None else time.monotonic() + timeout
        for driver in drivers:
            if not wait:
                driver.stop("the runner was shut down")
            driver.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        late = [d for d in drivers if d.running()]
        for driver in late:  # past the grace: stop them, they resume on the next start
            driver.stop("the runner was shut down")
        for driver in late:
            driver.join(5.0)
        self.writer.close()
        if self.executor is not None:
            self.executor.close()
        try:
            claims.unregister_runner(self.store, self.runner_id)
        except Exception:  # the database may be gone; nothing left to protect
            log.debug("could not unregister runner %s", self.runner_id, exc_info=True)
        self.store.dispose()

    def __enter__(self) -> DefaultRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"DefaultRunner({self.store!r}, runner_id={self.runner_id[:8]!r})"


_live_runners: weakref.WeakSet[DefaultRunner] = weakref.WeakSet()


def _shutdown_all_runners() -> None:
    """Shut down every runner of this process that is still open (registered with ``atexit``,
    as upstream does, so runner threads end before the interpreter does)."""
    for runner in list(_live_runners):
        try:
            runner.shutdown()
        except Exception:  # at exit: one broken runner must not keep the others running
            log.debug("could not shut down %r", runner, exc_info=True)


atexit.register(_shutdown_all_runners)


def _sel(selection: dict[str, Any]) -> tuple[Any, Any, Any]:
    unknown = set(selection) - {"start_from", "only", "until"}
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    return selection.get("start_from"), selection.get("only"), selection.get("until")
