"""Fixtures of the fault tests (the server ones, defined in :mod:`tests.server.support`)."""

from tests.server.support import (  # noqa: F401 — fixtures
    example_archive,
    gate,
    pg_database,
)
