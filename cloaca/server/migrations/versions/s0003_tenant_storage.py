"""Tenant generations: each tenant row names the storage it owns (its PostgreSQL schema or
SQLite file stem), chosen fresh when the tenant is created, so a tenant re-created with the
same name never sees the data of the one deleted before it. Rows from before this revision
keep NULL: their storage is named after the tenant, as it was.

Revision ID: s0003
Revises: s0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0003"
down_revision = "s0002"
branch_labels = None
depends_on = None

TABLE = "cloacina_tenants"


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(TABLE)}
    if "storage" in columns:  # made by create_all, adopted
        return
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(sa.Column("storage", sa.String(63), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_column("storage")
