"""Alembic environment for the runner's storage.

Migrations run programmatically on open (:func:`cloaca.storage.migrate.upgrade`), on a
connection handed over in ``config.attributes["connection"]``; on PostgreSQL its
``search_path`` already points at the tenant schema, so ``alembic_version`` lives there too.
"""

from __future__ import annotations

from alembic import context

from cloaca.storage.models import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
