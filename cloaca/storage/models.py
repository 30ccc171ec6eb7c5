"""The runner's tables (SQLAlchemy Core), shared by the runner and the Alembic migrations.

Timestamps are UTC epoch seconds (``Float``) and contexts are JSON text, so the same schema
works unchanged on SQLite and PostgreSQL. ``docs/storage.md`` describes every column.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

runners = Table(
    "runners",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
)

workflow_registrations = Table(
    "workflow_registrations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("version", String(64), nullable=False),
    Column("task_ids", Text, nullable=False),  # JSON list, topological order
    Column("registered_at", Float, nullable=False),
    UniqueConstraint("name", "version", name="uq_workflow_registrations_name_version"),
)

pipeline_executions = Table(
    "pipeline_executions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("workflow_name", String(255), nullable=False),
    Column("workflow_version", String(64), nullable=True),
    Column("status", String(16), nullable=False),  # Pending | Running | Completed | Failed
    Column("origin", String(16), nullable=False, default="api"),  # api | cron | trigger
    Column("context", Text, nullable=False),  # initial context, JSON
    Column("selection", Text, nullable=True),  # {"start_from", "only", "until"} or NULL
    Column("final_context", Text, nullable=True),
    Column("error_message", Text, nullable=True),
    Column("owner", String(36), nullable=True),  # runners.id of the runner executing it
    Column("recovery_count", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Index("ix_pipeline_executions_status", "status"),
    Index("ix_pipeline_executions_workflow", "workflow_name", "created_at"),
)

task_executions = Table(
    "task_executions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "execution_id",
        String(36),
        ForeignKey("pipeline_executions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("task_id", String(400), nullable=False),  # node key: id or package::id
    Column("position", Integer, nullable=False),  # index in the topological order
    Column("status", String(16), nullable=False),  # Pending|Running|Completed|Failed|Skipped
    Column("attempts", Integer, nullable=False, default=0),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("error_type", String(255), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("traceback", Text, nullable=True),
    Column("skip_reason", Text, nullable=True),
    Column("output", Text, nullable=True),  # whole output context, JSON (rows before 0004)
    Column("attempt_owner", String(36), nullable=True),  # runner that claimed claimed_attempt
    Column("claimed_attempt", Integer, nullable=True),  # latest attempt claimed (0003)
    Column("output_delta", Text, nullable=True),  # {"set", "removed"} of a completed task (0004)
    Column("upstream", Text, nullable=True),  # {"deps", "via"}: to rebuild inputs (0004)
    # times the task was re-run because its runner or worker died (0005)
    Column("recovery_attempts", Integer, nullable=False, default=0, server_default="0"),
    UniqueConstraint("execution_id", "task_id", name="uq_task_executions_execution_task"),
)

cron_schedules = Table(
    "cron_schedules",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("workflow_name", String(255), nullable=False),
    Column("cron_expression", String(255), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("next_run_at", Float, nullable=False),
    Column("last_run_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_cron_schedules_due", "enabled", "next_run_at"),
)

cron_executions = Table(
    "cron_executions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "schedule_id",
        String(36),
        ForeignKey("cron_schedules.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("scheduled_time", Float, nullable=False),
    Column("execution_id", String(36), nullable=True),
    Column("claimed_at", Float, nullable=False),
    Column("claimed_by", String(36), nullable=True),
    Column("recovery_attempts", Integer, nullable=False, default=0),
    UniqueConstraint("schedule_id", "scheduled_time", name="uq_cron_executions_slot"),
)

trigger_schedules = Table(
    "trigger_schedules",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("workflow_name", String(255), nullable=False),
    Column("poll_interval", Float, nullable=False),
    Column("allow_concurrent", Boolean, nullable=False, default=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("last_poll_at", Float, nullable=True),
    Column("last_fired_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
)

trigger_executions = Table(
    "trigger_executions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("trigger_name", String(255), nullable=False),
    Column("execution_id", String(36), nullable=True),
    Column("fired_at", Float, nullable=False),
    Column("context", Text, nullable=True),
    Index("ix_trigger_executions_name", "trigger_name", "fired_at"),
)

execution_events = Table(
    "execution_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "execution_id",
        String(36),
        ForeignKey("pipeline_executions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("sequence_num", Integer, nullable=False),  # 1, 2, ... per execution
    Column("event_type", String(32), nullable=False),  # task_started, workflow_completed, ...
    Column("task_id", String(400), nullable=True),  # node key, NULL for workflow events
    Column("data", Text, nullable=True),  # JSON object or NULL
    Column("created_at", Float, nullable=False),
    UniqueConstraint("execution_id", "sequence_num", name="uq_execution_events_seq"),
)
