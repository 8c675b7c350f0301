"""The one idempotent migration runner.

Migrations are the files ``enms_dagster/db/migrations/NNNN_name.sql`` (package data,
read through ``importlib.resources`` so an installed wheel migrates too), applied in order,
each in its own transaction, recorded in ``public.enms_schema_migrations`` with a checksum.
Running the runner twice changes nothing; an applied file that was edited afterwards is an
error, not a silent skip.

Database functions are not migrations: each has one file, ``enms_dagster/db/functions/
<schema>.<name>.sql``, holding its current ``CREATE OR REPLACE`` definition. After the migrations
the runner applies every such file whose checksum differs from the one recorded in
``public.enms_schema_functions``, so changing the counter maths edits one file and the next
``enms db migrate`` puts it in place. A function whose arguments or result type change needs a
``DROP FUNCTION`` of the old signature at the top of its file (and of what depends on it).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

import psycopg
from psycopg.pq import TransactionStatus

from enms_dagster.db.connection import connect
from enms_dagster.settings import Settings

MIGRATIONS_DIR = files("enms_dagster.db") / "migrations"
FUNCTIONS_DIR = files("enms_dagster.db") / "functions"
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_FUNCTION_NAME = re.compile(r"^([a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*)\.sql$")
# Any constant works; it only has to be the same for every runner of this project.
_MIGRATION_LOCK_KEY = 5_005_001


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Traversable

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class DatabaseFunction:
    """One re-appliable function file; ``name`` is the function's ``schema.name``."""

    name: str
    path: Traversable

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


class MigrationError(RuntimeError):
    pass


def discover_migrations(directory: Traversable = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(
        (p for p in directory.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name
    ):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_snake_name.sql")
        migrations.append(Migration(int(match[1]), match[2], path))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {directory}: {versions}")
    return migrations


def discover_functions(directory: Traversable = FUNCTIONS_DIR) -> list[DatabaseFunction]:
    """The function files in name order (a file is applied after those whose names sort first;
    PL/pgSQL bodies resolve the functions they call only when they run)."""
    functions = []
    for path in sorted(
        (p for p in directory.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name
    ):
        match = _FUNCTION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: function files are named schema.function.sql")
        functions.append(DatabaseFunction(match[1], path))
    return functions


def migrate(
    database_url: str,
    directory: Traversable = MIGRATIONS_DIR,
    *,
    functions_directory: Traversable = FUNCTIONS_DIR,
    lock_wait_s: float | None = None,
    on_function: Callable[[DatabaseFunction], None] | None = None,
) -> list[Migration]:
    """Apply the migrations not yet applied; return those applied by this call. Then put in
    place each database function whose file changed since it was last applied, calling
    ``on_function`` with each.

    Waits up to ``lock_wait_s`` (default ``ENMS_MIGRATION_LOCK_WAIT_S``) for a concurrent runner,
    and each migration as long for the tables it alters; past that it raises MigrationError
    naming the session in the way instead of hanging behind it."""
    if lock_wait_s is None:
        lock_wait_s = Settings.from_env().migration_lock_wait_s
    migrations = discover_migrations(directory)
    functions = discover_functions(functions_directory)
    applied_now = []
    with connect(database_url, autocommit=True) as conn:
        # Serialize concurrent runners (several services may start at once).
        _take_migration_lock(conn, lock_wait_s)
        try:
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
                _apply(conn, migration, lock_wait_s)
                applied_now.append(migration)
            for function in _changed_functions(conn, functions):
                _apply_function(conn, function, lock_wait_s)
                if on_function is not None:
                    on_function(function)
        finally:
            _release_migration_lock(conn)
    return applied_now


def _apply(conn: psycopg.Connection, migration: Migration, lock_wait_s: float) -> None:
    """One migration in one transaction. Its table locks wait at most ``lock_wait_s``: a long
    query on a mart (an analyst's, say) fails the migration with a name instead of stalling it,
    and everything queued behind the migration's lock with it."""
    try:
        with conn.transaction():
            timeout = f"{max(1, int(lock_wait_s * 1000))}ms"  # 0 would mean "wait forever"
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (timeout,))
            conn.execute(migration.path.read_text())
            conn.execute(
                "INSERT INTO public.enms_schema_migrations (version, name, checksum) "
                "VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
    except psycopg.errors.LockNotAvailable:
        raise MigrationError(
            f"migration {migration.path.name} waited {lock_wait_s:g} s for a table lock and "
            f"gave up; sessions holding table locks in this database: "
            f"{_describe_sessions(conn, _TABLE_LOCK_HOLDERS) or 'none any more'}. Let them "
            "finish or end them (SELECT pg_terminate_backend(pid)), then migrate again "
            "(ENMS_MIGRATION_LOCK_WAIT_S sets the wait)"
        ) from None


def _changed_functions(
    conn: psycopg.Connection, functions: list[DatabaseFunction]
) -> list[DatabaseFunction]:
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS public.enms_schema_functions (
            name       text PRIMARY KEY,
            checksum   text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    recorded = dict(conn.execute("SELECT name, checksum FROM public.enms_schema_functions"))
    return [f for f in functions if recorded.get(f.name) != f.checksum]


def _apply_function(conn: psycopg.Connection, function: DatabaseFunction, lock_wait_s: float):
    """One function file in one transaction, recorded with its checksum, its locks bounded like
    a migration's."""
    try:
        with conn.transaction():
            timeout = f"{max(1, int(lock_wait_s * 1000))}ms"
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (timeout,))
            conn.execute(function.path.read_text(encoding="utf-8"))
            conn.execute(
                "INSERT INTO public.enms_schema_functions (name, checksum) VALUES (%s, %s) "
                "ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, applied_at = now()",
                (function.name, function.checksum),
            )
    except psycopg.errors.LockNotAvailable:
        raise MigrationError(
            f"function {function.path.name} waited {lock_wait_s:g} s for a lock and gave up; "
            f"sessions holding table locks in this database: "
            f"{_describe_sessions(conn, _TABLE_LOCK_HOLDERS) or 'none any more'}"
        ) from None


def _take_migration_lock(conn: psycopg.Connection, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while not conn.execute("SELECT pg_try_advisory_lock(%s)", (_MIGRATION_LOCK_KEY,)).fetchone()[0]:
        if time.monotonic() >= deadline:
            holders = _describe_sessions(conn, _MIGRATION_LOCK_HOLDERS, (_MIGRATION_LOCK_KEY,))
            raise MigrationError(
                f"waited {wait_s:g} s for the migration lock (advisory lock "
                f"{_MIGRATION_LOCK_KEY}); it is held by {holders or 'a session that just left'}. "
                "Another `enms db migrate` may still be running; otherwise end the holder "
                "(SELECT pg_terminate_backend(pid)) and try again "
                "(ENMS_MIGRATION_LOCK_WAIT_S sets the wait)"
            )
        time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))


def _release_migration_lock(conn: psycopg.Connection) -> None:
    """A session's advisory lock ends with the session, so where the connection is broken or
    busy (the error being raised came from there) closing it releases the lock without a
    second error on top of the first."""
    if not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE:
        try:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK_KEY,))
            return
        except psycopg.Error:
            pass
    conn.close()


_SESSION_COLUMNS = (
    "a.pid, a.usename, a.application_name, a.client_addr, a.backend_start, a.state, "
    "left(a.query, 200)"
)
# a bigint advisory key sits in pg_locks as classid (high 32 bits), objid (low), objsubid 1
_MIGRATION_LOCK_HOLDERS = (
    f"SELECT DISTINCT {_SESSION_COLUMNS} FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND (l.classid::bigint << 32) + l.objid::bigint = %s"
)
_TABLE_LOCK_HOLDERS = (
    f"SELECT DISTINCT {_SESSION_COLUMNS} FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
    "WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid() "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.relation >= 16384"  # user tables, not the catalog
)


def _describe_sessions(conn: psycopg.Connection, query: str, params: tuple = ()) -> str:
    """Who the sessions are, in words an operator can act on."""
    return "; ".join(
        f"pid {pid} (user {user}, application {app or '-'}, from {addr or 'local socket'}, "
        f"connected {started:%Y-%m-%d %H:%M:%S %Z}, {state}: {query!r})"
        for pid, user, app, addr, started, state, query in conn.execute(query, params)
    )


def applied_versions(database_url: str) -> list[int]:
    with connect(database_url) as conn:
        return [
            v
            for (v,) in conn.execute(
                "SELECT version FROM public.enms_schema_migrations ORDER BY version"
            )
        ]


def applied_functions(database_url: str) -> dict[str, str]:
    """The checksum each database function file had when it was last applied, by name."""
    with connect(database_url) as conn:
        if conn.execute("SELECT to_regclass('public.enms_schema_functions')").fetchone()[0] is None:
            return {}
        return dict(conn.execute("SELECT name, checksum FROM public.enms_schema_functions"))
