"""Connections to the warehouse and the one idempotent migration runner.

Migrations are the files ``sql/migrations/NNNN_name.sql``, applied in order, each in its own
transaction, recorded in ``public.enms_schema_migrations`` with a checksum. Running the runner
twice changes nothing; an applied file that was edited afterwards is an error, not a silent skip.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from enms_dagster.settings import REPO_DIR

MIGRATIONS_DIR = REPO_DIR / "sql" / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any constant works; it only has to be the same for every runner of this project.
_MIGRATION_LOCK_KEY = 5_005_001


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


class MigrationError(RuntimeError):
    pass


def libpq_url(url: str) -> str:
    """Accept SQLAlchemy-style URLs (``postgresql+psycopg://``) where psycopg wants libpq ones."""
    return re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", url)


@contextmanager
def connect(database_url: str, **kwargs) -> Iterator[psycopg.Connection]:
    with psycopg.connect(libpq_url(database_url), **kwargs) as conn:
        yield conn


def discover_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_snake_name.sql")
        migrations.append(Migration(int(match[1]), match[2], path))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {directory}: {versions}")
    return migrations


def migrate(database_url: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply the migrations not yet applied; return those applied by this call."""
    migrations = discover_migrations(directory)
    applied_now = []
    with connect(database_url, autocommit=True) as conn:
        conn.execute(
            """
            CREATE TABLE IF NOT EXISTS public.enms_schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        # Serialize concurrent runners (several services may start at once).
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK_KEY,))
        try:
            done = {
                version: checksum
                for version, checksum in conn.execute(
                    "SELECT version, checksum FROM public.enms_schema_migrations"
                )
            }
            for migration in migrations:
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.path.name} was changed after it was applied; "
                            "add a new migration instead of editing an applied one"
                        )
                    continue
                with conn.transaction():
                    conn.execute(migration.path.read_text())
                    conn.execute(
                        "INSERT INTO public.enms_schema_migrations (version, name, checksum) "
                        "VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                applied_now.append(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK_KEY,))
    return applied_now


def applied_versions(database_url: str) -> list[int]:
    with connect(database_url) as conn:
        return [
            v
            for (v,) in conn.execute(
                "SELECT version FROM public.enms_schema_migrations ORDER BY version"
            )
        ]
