"""Alembic environment for the server tables.

Migrations run programmatically (:func:`cloaca.server.migrate.upgrade`) on a connection handed
over in ``config.attributes["connection"]``; the revision is recorded in
``cloacina_server_version``, never in the runner's ``alembic_version``.
"""

from __future__ import annotations

from alembic import context

from cloaca.server.db import metadata
from cloaca.server.migrate import VERSION_TABLE, include_name

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    include_name=include_name,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
