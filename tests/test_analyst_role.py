"""The read-only role enms_analyst, logged in for real: it reads every marts table and view and
nothing else, and it cannot write or create anything anywhere."""

import os
import subprocess
import sys
import uuid

import psycopg
import pytest
from psycopg import errors, sql

from enms_dagster.db import connect, libpq_url, migrate
from enms_dagster.db.roles import ANALYST_ROLE, set_analyst_password

pytestmark = pytest.mark.integration

PASSWORD = "analyst-test-password"


def analyst_conninfo(database_url: str, password: str = PASSWORD) -> str:
    return psycopg.conninfo.make_conninfo(
        libpq_url(database_url), user=ANALYST_ROLE, password=password
    )


@pytest.fixture
def admin(services):
    with connect(services.database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def analyst(services, admin):
    """A session of enms_analyst; its login is taken away again afterwards."""
    set_analyst_password(admin, PASSWORD)
    try:
        with psycopg.connect(analyst_conninfo(services.database_url), autocommit=True) as conn:
            yield conn
    finally:
        set_analyst_password(admin, None)


def marts_relations(conn) -> list[str]:
    return [
        name
        for (name,) in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'marts' AND c.relkind IN ('r', 'p', 'v', 'm') ORDER BY 1"
        )
    ]


def test_the_analyst_reads_every_table_and_view_in_marts(admin, analyst):
    relations = marts_relations(admin)
    assert {"dim_machine", "dim_date", "fct_energy_hourly", "fct_kpi_daily", "kpi_daily"} <= set(
        relations
    )
    for name in relations:
        analyst.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("marts", name)))
    # the dimensions are views over core, readable without any right on core itself
    assert analyst.execute("SELECT count(*) FROM marts.dim_machine").fetchone()[0] >= 0


@pytest.mark.parametrize(
    "table", ["raw.readings", "raw.quarantine", "core.machines", "core.hourly_energy"]
)
def test_the_analyst_cannot_read_raw_or_core(analyst, table):
    schema, name = table.split(".")
    with pytest.raises(errors.InsufficientPrivilege):
        analyst.execute(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(sql.Identifier(schema, name)))


def test_analyst_sessions_are_read_only_by_default(analyst):
    assert analyst.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
    with pytest.raises(errors.ReadOnlySqlTransaction):
        analyst.execute("DELETE FROM marts.fct_kpi_daily")


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO marts.fct_kpi_daily (level, level_id, site_id, local_date, machines, hours, "
        "energy_kwh) VALUES ('site', 'x', 'x', '2026-01-01', 0, 0, 0)",
        "UPDATE marts.kpi_daily SET energy_kwh = 0",
        "DELETE FROM marts.fct_energy_hourly",
        "TRUNCATE marts.fct_kpi_daily",
        "INSERT INTO raw.readings VALUES ('CMP-01', 'power_kw', now(), 1, 0)",
        "UPDATE core.machines SET name = 'x'",
        "CREATE TABLE marts.analyst_table (x int)",
        "CREATE TABLE public.analyst_table (x int)",
        "CREATE TABLE core.analyst_table (x int)",
        "CREATE VIEW marts.analyst_view AS SELECT 1 AS x",
        "CREATE SCHEMA analyst_schema",
    ],
)
def test_the_analyst_cannot_write_or_create_even_in_a_read_write_session(analyst, statement):
    analyst.execute("SET default_transaction_read_only = off")  # any session may do this
    with pytest.raises(errors.InsufficientPrivilege):
        analyst.execute(statement)


def test_a_table_added_to_marts_later_is_readable_without_a_new_grant(admin, analyst):
    admin.execute("CREATE TABLE marts.added_later (x int)")
    try:
        admin.execute("COMMENT ON TABLE marts.added_later IS 'probe'")
        admin.execute("INSERT INTO marts.added_later VALUES (7)")
        assert analyst.execute("SELECT x FROM marts.added_later").fetchall() == [(7,)]
    finally:
        admin.execute("DROP TABLE marts.added_later")


def test_migrating_another_database_of_the_same_server_reuses_the_role(services, admin):
    name = f"enms_test_role_{uuid.uuid4().hex[:8]}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(libpq_url(services.database_url), dbname=name)
    try:
        assert "marts" in [m.name for m in migrate(url)]  # the role exists already: no error
        with psycopg.connect(url) as conn:
            (grants,) = conn.execute(
                "SELECT has_table_privilege(%s, 'marts.fct_kpi_daily', 'SELECT')", (ANALYST_ROLE,)
            ).fetchone()
        assert grants
    finally:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def enms_db(database_url: str, *args: str, password: str | None = None):
    env = {k: v for k, v in os.environ.items() if k != "ENMS_ANALYST_PASSWORD"}
    env["ENMS_DATABASE_URL"] = database_url
    if password is not None:
        env["ENMS_ANALYST_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "enms_dagster.cli", "db", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=env,
    )


def test_the_password_command_enables_and_disables_the_login(services, admin):
    def login() -> tuple[bool, str | None]:
        return admin.execute(
            "SELECT rolcanlogin, rolpassword FROM pg_authid WHERE rolname = %s", (ANALYST_ROLE,)
        ).fetchone()

    refused = enms_db(services.database_url, "analyst-password")
    assert refused.returncode == 2 and "ENMS_ANALYST_PASSWORD" in refused.stderr

    done = enms_db(services.database_url, "analyst-password", password="s3cret 'quoted'")
    assert done.returncode == 0, done.stderr
    try:
        can_login, stored = login()
        assert can_login and stored.startswith("SCRAM-SHA-256$")  # hashed, never clear text
        conninfo = analyst_conninfo(services.database_url, "s3cret 'quoted'")
        with psycopg.connect(conninfo) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (ANALYST_ROLE,)
    finally:
        done = enms_db(services.database_url, "analyst-password", "--disable")
    assert done.returncode == 0, done.stderr
    assert login() == (False, None)
