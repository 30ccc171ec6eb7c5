"""Per-attempt claims: who claimed the latest attempt of a task, and its number.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("task_executions", sa.Column("attempt_owner", sa.String(36), nullable=True))
    op.add_column("task_executions", sa.Column("claimed_attempt", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task_executions") as batch:
        batch.drop_column("claimed_attempt")
        batch.drop_column("attempt_owner")
