"""Task outputs stored as deltas: ``output_delta`` (what the task changed) and ``upstream``
(its dependencies, to rebuild inputs). Rows written before keep their whole ``output``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("task_executions", sa.Column("output_delta", sa.Text, nullable=True))
    op.add_column("task_executions", sa.Column("upstream", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task_executions") as batch:
        batch.drop_column("upstream")
        batch.drop_column("output_delta")
