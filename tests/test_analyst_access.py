"""Issue 14, finding 6: enms_analyst, logged in for real, cannot hurt the platform. Each finding is
reproduced on a warehouse migrated up to 0016 and shown closed by 0017: no temporary tables or
other writes even with read-only switched off, no advisory locks, a temp-file limit, a
connection limit, only databases that grant it CONNECT. And the migration runner waits a bounded
time for its lock and names whoever holds it.

Roles are cluster-wide: what a test changes on enms_analyst for the whole cluster it restores;
where it can, it changes the role in its own database only (ALTER ROLE ... IN DATABASE)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors, sql

from enms_dagster.db import MIGRATIONS_DIR, MigrationError, connect, libpq_url, migrate
from enms_dagster.db.roles import ANALYST_ROLE, analyst_access_gaps, set_analyst_password
from tests.conftest import LOCAL_PG_DSN, scratch_database

pytestmark = pytest.mark.integration

_LOCK_FUNCTIONS = (
    "SELECT p.oid::regprocedure::text, p.pronargs FROM pg_proc p "
    "WHERE p.pronamespace = 'pg_catalog'::regnamespace "
    "AND p.proname ~ '^pg_(try_)?advisory_(xact_)?lock(_shared)?$' ORDER BY 1"
)


def conninfo(database_url: str, **params) -> str:
    return psycopg.conninfo.make_conninfo(libpq_url(database_url), **params)


@contextlib.contextmanager
def analyst_login(url: str) -> Iterator[None]:
    """enms_analyst may log in (the local server trusts it; the password is for the others)."""
    with connect(url, autocommit=True) as admin:
        set_analyst_password(admin, "analyst-access-test")
    try:
        yield
    finally:
        with connect(url, autocommit=True) as admin:
            set_analyst_password(admin, None)


def as_analyst(url: str, **params) -> psycopg.Connection:
    params.setdefault("password", "analyst-access-test")
    return psycopg.connect(conninfo(url, user=ANALYST_ROLE, **params), autocommit=True)


def call_with_arguments(signature: str, arguments: int) -> sql.Composable:
    name = signature.split("(")[0]
    values = [sql.Literal(5_005_001)] if arguments == 1 else [sql.Literal(5005), sql.Literal(1)]
    return sql.SQL("SELECT {}({})").format(sql.SQL(name), sql.SQL(", ").join(values))


def test_before_0017_the_analyst_could_hurt_and_after_it_cannot(tmp_path):
    with scratch_database() as url:
        reproduce_and_close(url, tmp_path)


def reproduce_and_close(url: str, tmp_path) -> None:
    older = tmp_path / "upto0016"
    older.mkdir()
    for path in MIGRATIONS_DIR.glob("*.sql"):
        if int(path.name[:4]) < 17:
            shutil.copy(path, older)
    migrate(url, older)
    with analyst_login(url):
        with as_analyst(url) as analyst:
            # the findings, reproduced
            analyst.execute("SET default_transaction_read_only = off")
            analyst.execute("CREATE TEMP TABLE filler AS SELECT 1 AS x")
            assert analyst.execute("SELECT pg_try_advisory_lock(5005001)").fetchone() == (True,)
            assert analyst.execute("SELECT lo_create(0)").fetchone()[0] > 0
        applied = [m.name for m in migrate(url)]  # the analyst's session has ended
        assert applied[0] == "analyst_limits"  # then any later migration
        with as_analyst(url) as analyst:
            analyst.execute("SET default_transaction_read_only = off")
            with pytest.raises(errors.InsufficientPrivilege):
                analyst.execute("CREATE TEMP TABLE filler AS SELECT 1 AS x")
            with pytest.raises(errors.InsufficientPrivilege):
                analyst.execute("SELECT pg_try_advisory_lock(5005001)")
            with pytest.raises(errors.InsufficientPrivilege):
                analyst.execute("SELECT lo_create(0)")


def test_the_analyst_cannot_write_anywhere_with_read_only_switched_off(local_services):
    url = local_services.database_url
    with analyst_login(url), as_analyst(url) as analyst:
        analyst.execute("SET default_transaction_read_only = off")
        assert analyst.execute("SHOW transaction_read_only").fetchone() == ("off",)
        for statement in (
            "CREATE TEMP TABLE t (x int)",
            "CREATE TABLE public.t (x int)",
            "CREATE TABLE marts.t (x int)",
            "CREATE SCHEMA analyst_schema",
            "CREATE EXTENSION IF NOT EXISTS dblink",
            "INSERT INTO marts.kpi_daily (machine_id) VALUES ('x')",
            "SELECT lo_creat(-1)",
            "SELECT lo_from_bytea(0, 'x')",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                analyst.execute(statement)


def test_the_analyst_cannot_take_any_advisory_lock_but_the_platform_can(local_services):
    url = local_services.database_url
    with connect(url, autocommit=True) as platform:
        functions = platform.execute(_LOCK_FUNCTIONS).fetchall()
        assert len(functions) == 16  # lock, try_lock x session/xact x exclusive/shared x 2 keys
        for signature, arguments in functions:
            with platform.transaction():
                assert platform.execute(call_with_arguments(signature, arguments)).fetchone()
            platform.execute("SELECT pg_advisory_unlock_all()")
    with analyst_login(url), as_analyst(url) as analyst:
        for signature, arguments in functions:
            with pytest.raises(
                errors.InsufficientPrivilege, match="permission denied for function"
            ):
                with analyst.transaction():
                    analyst.execute(call_with_arguments(signature, arguments))


@pytest.fixture
def platform_owner() -> Iterator[str]:
    """A non-superuser login that owns its database, as a platform without superuser runs."""
    role = f"enms_test_owner_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(LOCAL_PG_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        yield role
    finally:
        with psycopg.connect(LOCAL_PG_DSN, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_non_superuser_owner_keeps_its_locks_and_temp_tables(platform_owner):
    with scratch_database(owner=platform_owner) as url:
        migrate(url)  # by a superuser (a DBA) in a database the platform's role owns
        with psycopg.connect(conninfo(url, user=platform_owner), autocommit=True) as conn:
            (superuser,) = conn.execute(
                "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
            assert not superuser
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(42)")  # as the anomaly store does
                conn.execute("CREATE TEMP TABLE staging (x int) ON COMMIT DROP")  # as landing does
            assert conn.execute("SELECT pg_try_advisory_lock(5005001)").fetchone() == (True,)


def test_temp_files_stop_at_the_limit_the_analyst_cannot_raise(local_services):
    url = local_services.database_url
    with connect(url, autocommit=True) as admin:
        (database,) = admin.execute("SELECT current_database()").fetchone()
        in_this_db = sql.SQL("ALTER ROLE {} IN DATABASE {} ").format(
            sql.Identifier(ANALYST_ROLE), sql.Identifier(database)
        )
        # small, and on this database only: the role's cluster-wide 1GB stays for the others
        admin.execute(in_this_db + sql.SQL("SET temp_file_limit = '256kB'"))
    try:
        with analyst_login(url), as_analyst(url) as analyst:
            assert analyst.execute("SHOW temp_file_limit").fetchone() == ("256kB",)
            with pytest.raises(errors.InsufficientPrivilege):
                analyst.execute("SET temp_file_limit = -1")
            analyst.execute("SET work_mem = '64kB'")  # the sort spills to disk
            with pytest.raises(errors.ConfigurationLimitExceeded, match="temp_file_limit"):
                analyst.execute("SELECT g FROM generate_series(1, 200000) g ORDER BY g DESC")
    finally:
        with connect(url, autocommit=True) as admin:
            admin.execute(in_this_db + sql.SQL("RESET temp_file_limit"))


def test_every_analyst_session_starts_with_the_role_limits(local_services):
    url = local_services.database_url
    with analyst_login(url), as_analyst(url) as analyst:
        for name in ("statement_timeout", "idle_in_transaction_session_timeout"):
            (value,) = analyst.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
            assert value != "0", name
        (limit,) = analyst.execute(
            "SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert limit > 0


def test_the_connection_limit_refuses_one_session_too_many(local_services):
    url = local_services.database_url
    with connect(url, autocommit=True) as admin:
        (before,) = admin.execute(
            "SELECT rolconnlimit FROM pg_roles WHERE rolname = %s", (ANALYST_ROLE,)
        ).fetchone()
        admin.execute(
            sql.SQL("ALTER ROLE {} CONNECTION LIMIT 2").format(sql.Identifier(ANALYST_ROLE))
        )
    try:
        with analyst_login(url), contextlib.ExitStack() as sessions:
            with pytest.raises(psycopg.OperationalError, match="too many connections for role"):
                for _ in range(3):
                    sessions.enter_context(as_analyst(url))
    finally:
        with connect(url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(
                    sql.Identifier(ANALYST_ROLE), sql.Literal(before)
                )
            )


def test_other_databases_are_reported_and_refused_once_closed(local_services):
    url = local_services.database_url
    with scratch_database() as other_url, analyst_login(url):
        other = psycopg.conninfo.conninfo_to_dict(other_url)["dbname"]
        with connect(url, autocommit=True) as admin:
            assert any(repr(other) in gap for gap in analyst_access_gaps(admin))
        as_analyst(other_url).close()  # PUBLIC may connect to a new database
        with psycopg.connect(other_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(sql.Identifier(other))
            )
        with connect(url, autocommit=True) as admin:
            assert not any(repr(other) in gap for gap in analyst_access_gaps(admin))
            (own,) = admin.execute(
                "SELECT has_database_privilege(%s, current_database(), 'CONNECT')",
                (ANALYST_ROLE,),
            ).fetchone()
            assert own
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            as_analyst(other_url)


def test_migrate_names_the_session_holding_the_migration_lock(local_services):
    url = local_services.database_url
    with psycopg.connect(conninfo(url, application_name="stuck-bi-extract"), autocommit=True) as c:
        c.execute("SELECT pg_advisory_lock(5005001)")
        (pid,) = c.execute("SELECT pg_backend_pid()").fetchone()
        with pytest.raises(MigrationError) as refused:
            migrate(url, lock_wait_s=0.5)
        assert "stuck-bi-extract" in str(refused.value)
        assert f"pid {pid}" in str(refused.value)
    assert migrate(url, lock_wait_s=5) == []  # released with the holder's session


def test_a_migration_blocked_by_a_long_mart_query_stops_and_names_it(tmp_path):
    with scratch_database() as url:
        migrate(url)
        directory = tmp_path / "m"
        shutil.copytree(MIGRATIONS_DIR, directory)
        (directory / "9999_alter_mart.sql").write_text(
            "ALTER TABLE marts.kpi_daily ADD COLUMN probe int;\n"
        )
        with analyst_login(url), as_analyst(url, application_name="slow-dashboard") as analyst:
            analyst.execute("BEGIN")
            analyst.execute("SELECT count(*) FROM marts.kpi_daily")  # holds its lock until commit
            with pytest.raises(MigrationError) as refused:
                migrate(url, directory, lock_wait_s=0.5)
            analyst.execute("ROLLBACK")
        message = str(refused.value)
        assert "9999_alter_mart.sql" in message and "slow-dashboard" in message
        assert [m.name for m in migrate(url, directory, lock_wait_s=5)] == ["alter_mart"]


def test_a_migration_that_breaks_its_connection_reports_that_error_alone(tmp_path):
    with scratch_database() as url:
        migrate(url)
        directory = tmp_path / "m"
        shutil.copytree(MIGRATIONS_DIR, directory)
        (directory / "9999_breaks.sql").write_text(
            "SELECT pg_terminate_backend(pg_backend_pid());\n"
        )
        with pytest.raises(psycopg.OperationalError) as failed:
            migrate(url, directory)
        assert "terminat" in str(failed.value)  # not "the connection is closed" from the unlock
        (directory / "9999_breaks.sql").unlink()
        assert migrate(url, directory, lock_wait_s=5) == []  # and the lock went with the session


def test_the_password_command_sets_the_limits_from_the_environment_and_reports_gaps(
    local_services,
):
    url = local_services.database_url
    role = sql.Identifier(ANALYST_ROLE)

    def limits(conn) -> tuple[int, list[str]]:
        return conn.execute(
            "SELECT r.rolconnlimit, s.setconfig FROM pg_roles r JOIN pg_db_role_setting s "
            "ON s.setrole = r.oid AND s.setdatabase = 0 WHERE r.rolname = %s",
            (ANALYST_ROLE,),
        ).fetchone()

    with connect(url, autocommit=True) as admin:
        before_limit, before_config = limits(admin)
    env = {
        **os.environ,
        "ENMS_DATABASE_URL": url,
        "ENMS_ANALYST_PASSWORD": "analyst-access-test",
        "ENMS_ANALYST_STATEMENT_TIMEOUT": "45s",
        "ENMS_ANALYST_TEMP_FILE_LIMIT": "512MB",
        "ENMS_ANALYST_CONNECTION_LIMIT": "7",
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "enms_dagster.cli", "db", "analyst-password"],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, done.stderr
        assert "statement_timeout 45s" in done.stdout and "at most 7 sessions" in done.stdout
        with connect(url, autocommit=True) as admin:
            limit, config = limits(admin)
        assert limit == 7
        assert {"statement_timeout=45s", "temp_file_limit=512MB"} <= set(config)
        # the cluster's maintenance database lets PUBLIC connect: named, with the fix
        assert "database 'postgres'" in done.stderr and "pg_hba.conf" in done.stderr
    finally:
        with connect(url, autocommit=True) as admin:
            set_analyst_password(admin, None)
            admin.execute(sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(role, before_limit))
            for setting in before_config:
                name, _, value = setting.partition("=")
                admin.execute(
                    sql.SQL("ALTER ROLE {} SET {} = {}").format(
                        role, sql.Identifier(name), sql.Literal(value)
                    )
                )
