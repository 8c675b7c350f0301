"""The warehouse: connections, the migration runner, its migrations and database functions.

``from enms_dagster.db import connect, migrate`` is all most callers need."""

from enms_dagster.db.connection import connect, libpq_url
from enms_dagster.db.runner import (
    MIGRATIONS_DIR,
    Migration,
    MigrationError,
    applied_versions,
    discover_migrations,
    migrate,
)

__all__ = [
    "MIGRATIONS_DIR",
    "Migration",
    "MigrationError",
    "applied_versions",
    "connect",
    "discover_migrations",
    "libpq_url",
    "migrate",
]
