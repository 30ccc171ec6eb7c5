"""Fixtures of the parity tests (the shared server, defined in :mod:`tests.server.support`)."""

from tests.server.support import server  # noqa: F401 — fixture
