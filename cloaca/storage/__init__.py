"""Storage for the durable runner: URL handling, engines, tables and Alembic migrations.

Imported only by :mod:`cloaca.runner` (never at ``import cloaca`` time), because it pulls in
SQLAlchemy.
"""

from __future__ import annotations

from cloaca.storage.engine import Store
from cloaca.storage.url import DatabaseURL, check_schema_name, parse_database_url

__all__ = ["DatabaseURL", "Store", "check_schema_name", "parse_database_url"]
