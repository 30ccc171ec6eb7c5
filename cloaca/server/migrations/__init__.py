"""Alembic migrations of the server's own tables (tenants, API keys, packages).

Kept apart from the runner's migrations (:mod:`cloaca.storage.migrations`): their own script
directory and their own version table, ``cloacina_server_version``, so both histories live in
the same database without colliding. Applied on server start by
:func:`cloaca.server.migrate.upgrade`.
"""
