"""`DefaultRunnerConfig`: the runner's knobs (names and defaults from Cloacina's API).

Every field of upstream's ``DefaultRunnerConfig`` is here with upstream's default, settable as
an attribute, as a constructor keyword or with upstream's ``set_<field>(value)`` methods;
``pipeline_timeout_seconds`` is upstream's older name of ``workflow_timeout_seconds`` and stays
in step with it. ``executor`` and ``dask_scheduler`` are ours.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass
class DefaultRunnerConfig:
    """Settings of a :class:`~cloaca.runner.DefaultRunner`; every attribute is settable.

    Attributes
    ----------
    max_concurrent_tasks:
        Tasks of one execution that may run at once.
    scheduler_poll_interval_ms:
        How often the runner looks in the database for work written by *other* processes
        (executions queued with ``enqueue``, executions left by a dead runner). Work started
        in this process never waits for a poll.
    task_timeout_seconds:
        Timeout for tasks that set no ``timeout_seconds`` (None: no limit).
    workflow_timeout_seconds:
        Timeout for a whole execution, one hour by default as upstream (None: no limit).
    pipeline_timeout_seconds:
        Upstream's older name of ``workflow_timeout_seconds``; setting either sets both.
    db_pool_size:
        Database connection pool size.
    db_write_timeout_seconds:
        How long ``submit``/``execute``/``enqueue`` keep retrying (with backoff, reconnecting)
        to record a new execution before giving up with
        :class:`~cloaca.errors.StorageUnavailableError` (the server's 503). Task-state changes
        are never given up on; see ``docs/storage.md``.
    enable_recovery:
        Resume executions left ``Running`` by a dead runner (on start and periodically).
    max_recovery_attempts:
        The recovery budget of each task: how many times a task whose attempt was lost with
        its runner (process gone, or heartbeat older than ``stale_after``) or with its package
        worker (killed from outside) is run again. Recoveries are not charged to the task's
        retry policy; once the budget is used up the task fails (``Interrupted``, or
        ``WorkerLost``). See ``docs/storage.md``.
    enable_cron_scheduling:
        Run the cron scheduler in this runner.
    cron_poll_interval_seconds:
        Longest sleep of the cron scheduler; it also wakes for the earliest due schedule.
    cron_max_catchup_executions:
        After downtime, how many of a schedule's missed runs to start (the most recent ones,
        at least one; default 100, as upstream). See ``docs/storage.md``.
    cron_enable_recovery:
        Periodically re-start cron runs whose execution never started (claimed but lost).
    cron_recovery_interval_seconds:
        How often that check runs.
    cron_lost_threshold_minutes:
        A claimed cron run whose execution is still unstarted after this long is lost.
    cron_max_recovery_age_seconds:
        Missed or lost runs older than this are never started.
    cron_max_recovery_attempts:
        How many times one lost cron run is re-started.
    executor:
        Where task attempts run: ``"local"`` (this process, packaged tasks in local worker
        subprocesses) or ``"dask"`` (an existing Dask cluster; see ``docs/scaling.md``).
    dask_scheduler:
        The Dask scheduler address for ``executor="dask"``, e.g. ``"tcp://host:8786"``.
    """

    max_concurrent_tasks: int = 4
    scheduler_poll_interval_ms: int = 100
    task_timeout_seconds: float | None = 300
    workflow_timeout_seconds: float | None = 3600
    db_pool_size: int = 10
    db_write_timeout_seconds: float = 10.0
    enable_recovery: bool = True
    max_recovery_attempts: int = 3
    enable_cron_scheduling: bool = True
    cron_poll_interval_seconds: float = 30
    cron_max_catchup_executions: int = 100
    cron_enable_recovery: bool = True
    cron_recovery_interval_seconds: float = 300
    cron_lost_threshold_minutes: float = 10
    cron_max_recovery_age_seconds: float = 86400
    cron_max_recovery_attempts: int = 3
    executor: str = "local"
    dask_scheduler: str | None = None
    pipeline_timeout_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.pipeline_timeout_seconds is not None:
            object.__setattr__(self, "workflow_timeout_seconds", self.pipeline_timeout_seconds)
        object.__setattr__(self, "pipeline_timeout_seconds", self.workflow_timeout_seconds)
        object.__setattr__(self, "_ready", True)

    @staticmethod
    def default() -> DefaultRunnerConfig:
        """A config with every default."""
        return DefaultRunnerConfig()

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict."""
        return asdict(self)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in _FIELD_NAMES:
            raise AttributeError(
                f"DefaultRunnerConfig has no setting {name!r}; "
                f"known settings: {', '.join(sorted(_FIELD_NAMES))}"
            )
        object.__setattr__(self, name, value)
        if (
            name in _TIMEOUT_ALIASES and "_ready" in self.__dict__
        ):  # the two names of one setting stay equal
            object.__setattr__(self, _TIMEOUT_ALIASES[name], value)

    def __getattr__(self, name: str) -> Any:
        # upstream's setters: config.set_max_concurrent_tasks(8)
        if name.startswith("set_") and name[4:] in _FIELD_NAMES:
            field_name = name[4:]

            def setter(value: Any) -> None:
                setattr(self, field_name, value)

            return setter
        raise AttributeError(f"DefaultRunnerConfig has no attribute {name!r}")


_TIMEOUT_ALIASES = {
    "workflow_timeout_seconds": "pipeline_timeout_seconds",
    "pipeline_timeout_seconds": "workflow_timeout_seconds",
}
_FIELD_NAMES = frozenset(f.name for f in fields(DefaultRunnerConfig))
