"""The durable runner: `DefaultRunner` on SQLite or PostgreSQL, with recovery, claims, cron
schedules and triggers.

Importing this package imports SQLAlchemy; ``import cloaca`` reaches it lazily.
"""

from __future__ import annotations

from cloaca.runner.config import DefaultRunnerConfig
from cloaca.runner.history import ExecutionRecord, TaskRecord
from cloaca.runner.runner import DefaultRunner
from cloaca.runner.triggers import TriggerResult, trigger

__all__ = [
    "DefaultRunner",
    "DefaultRunnerConfig",
    "ExecutionRecord",
    "TaskRecord",
    "TriggerResult",
    "trigger",
]
