"""Initial schema: runners, workflow registrations, executions, tasks, cron and triggers.

Revision ID: 0001
Revises:
Create Date: 2024-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runners",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
    )
    op.create_table(
        "workflow_registrations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("task_ids", sa.Text, nullable=False),
        sa.Column("registered_at", sa.Float, nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_workflow_registrations_name_version"),
    )
    op.create_table(
        "pipeline_executions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("workflow_name", sa.String(255), nullable=False),
        sa.Column("workflow_version", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("context", sa.Text, nullable=False),
        sa.Column("selection", sa.Text, nullable=True),
        sa.Column("final_context", sa.Text, nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("owner", sa.String(36), nullable=True),
        sa.Column("recovery_count", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("finished_at", sa.Float, nullable=True),
    )
    op.create_index("ix_pipeline_executions_status", "pipeline_executions", ["status"])
    op.create_index(
        "ix_pipeline_executions_workflow", "pipeline_executions", ["workflow_name", "created_at"]
    )
    op.create_table(
        "task_executions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "execution_id",
            sa.String(36),
            sa.ForeignKey("pipeline_executions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("task_id", sa.String(400), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("error_type", sa.String(255), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("traceback", sa.Text, nullable=True),
        sa.Column("skip_reason", sa.Text, nullable=True),
        sa.Column("output", sa.Text, nullable=True),
        sa.UniqueConstraint("execution_id", "task_id", name="uq_task_executions_execution_task"),
    )
    op.create_table(
        "cron_schedules",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("workflow_name", sa.String(255), nullable=False),
        sa.Column("cron_expression", sa.String(255), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("next_run_at", sa.Float, nullable=False),
        sa.Column("last_run_at", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_cron_schedules_due", "cron_schedules", ["enabled", "next_run_at"])
    op.create_table(
        "cron_executions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "schedule_id",
            sa.String(36),
            sa.ForeignKey("cron_schedules.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("scheduled_time", sa.Float, nullable=False),
        sa.Column("execution_id", sa.String(36), nullable=True),
        sa.Column("claimed_at", sa.Float, nullable=False),
        sa.Column("claimed_by", sa.String(36), nullable=True),
        sa.Column("recovery_attempts", sa.Integer, nullable=False),
        sa.UniqueConstraint("schedule_id", "scheduled_time", name="uq_cron_executions_slot"),
    )
    op.create_table(
        "trigger_schedules",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("workflow_name", sa.String(255), nullable=False),
        sa.Column("poll_interval", sa.Float, nullable=False),
        sa.Column("allow_concurrent", sa.Boolean, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("last_poll_at", sa.Float, nullable=True),
        sa.Column("last_fired_at", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "trigger_executions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("trigger_name", sa.String(255), nullable=False),
        sa.Column("execution_id", sa.String(36), nullable=True),
        sa.Column("fired_at", sa.Float, nullable=False),
        sa.Column("context", sa.Text, nullable=True),
    )
    op.create_index(
        "ix_trigger_executions_name", "trigger_executions", ["trigger_name", "fired_at"]
    )


def downgrade() -> None:
    for table in (
        "trigger_executions",
        "trigger_schedules",
        "cron_executions",
        "cron_schedules",
        "task_executions",
        "pipeline_executions",
        "workflow_registrations",
        "runners",
    ):
        op.drop_table(table)
