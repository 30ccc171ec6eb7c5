"""Paused workflows: one row per (tenant, workflow name) while the workflow is paused.

Revision ID: s0002
Revises: s0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0002"
down_revision = "s0001"
branch_labels = None
depends_on = None

TABLE = "cloacina_workflow_pauses"


def upgrade() -> None:
    # Tables made by ``create_all`` (adopted at s0001) may already include this one.
    if sa.inspect(op.get_bind()).has_table(TABLE):
        return
    op.create_table(
        TABLE,
        sa.Column("tenant_id", sa.String(63), nullable=False),
        sa.Column("workflow_name", sa.String(255), nullable=False),
        sa.Column("paused_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "workflow_name", name="pk_cloacina_workflow_pauses"),
    )


def downgrade() -> None:
    op.drop_table(TABLE)
