"""Fixtures of the fault tests: the PostgreSQL fixtures of the runner tests and the server
fixtures (real ``cloacina-server`` processes) of the server tests."""

from tests.runner.conftest import pg_schema, pg_url  # noqa: F401 — fixtures
from tests.server.support import (  # noqa: F401 — fixtures
    example_archive,
    gate,
    pg_database,
)
