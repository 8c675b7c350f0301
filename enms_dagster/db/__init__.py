"""The warehouse: connections, the migration runner, its migrations and database functions.

``from enms_dagster.db import connect, migrate`` is all most callers need."""

from enms_dagster.db.connection import connect, libpq_url
from enms_dagster.db.runner import (
    FUNCTIONS_DIR,
    MIGRATIONS_DIR,
    DatabaseFunction,
    Migration,
    MigrationError,
    applied_functions,
    applied_versions,
    discover_functions,
    discover_migrations,
    migrate,
)

__all__ = [
    "FUNCTIONS_DIR",
    "MIGRATIONS_DIR",
    "DatabaseFunction",
    "Migration",
    "MigrationError",
    "applied_functions",
    "applied_versions",
    "connect",
    "discover_functions",
    "discover_migrations",
    "libpq_url",
    "migrate",
]
