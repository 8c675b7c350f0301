"""docs/marts.md is the data dictionary of a freshly migrated warehouse, never edited by hand."""

import os
import subprocess
import sys
import uuid

import psycopg
import pytest
from psycopg import sql

from enms_dagster.db import connect, libpq_url, migrate
from enms_dagster.db.dictionary import MARTS_DOC, REGENERATE_COMMAND, render_marts_docs

pytestmark = pytest.mark.integration


@pytest.fixture
def fresh_url(services):
    """A database of its own, migrated and nothing else (the session's has test leftovers)."""
    name = f"enms_test_docs_{uuid.uuid4().hex[:8]}"
    with connect(services.database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = psycopg.conninfo.make_conninfo(libpq_url(services.database_url), dbname=name)
        try:
            migrate(url)
            yield url
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def fresh_warehouse(fresh_url):
    with psycopg.connect(fresh_url) as conn:
        yield conn


def test_the_committed_data_dictionary_matches_a_freshly_migrated_warehouse(fresh_warehouse):
    generated = render_marts_docs(fresh_warehouse)
    committed = MARTS_DOC.read_text() if MARTS_DOC.exists() else ""
    assert committed == generated, (
        f"{MARTS_DOC.name} differs from the marts schema of enms_dagster/db/migrations; "
        f"run `{REGENERATE_COMMAND}` and commit the result"
    )


def test_every_marts_table_view_and_column_has_a_comment(fresh_warehouse):
    missing = fresh_warehouse.execute(
        "SELECT c.relname || COALESCE('.' || a.attname, '') "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "WHERE n.nspname = 'marts' AND c.relkind IN ('r', 'p', 'v', 'm') "
        "AND (obj_description(c.oid, 'pg_class') IS NULL "
        "     OR (a.attnum IS NOT NULL AND col_description(c.oid, a.attnum) IS NULL)) "
        "ORDER BY 1"
    ).fetchall()
    assert missing == []


def test_the_dictionary_lists_each_column_with_its_type_and_comment(fresh_warehouse):
    text = render_marts_docs(fresh_warehouse)
    assert "## marts.fct_kpi_daily" in text
    assert "| `peak_15min_kw` | double precision | Peak demand: the highest 15-minute" in text
    assert "| `level` | text not null | machine, line or site. |" in text
    assert "## marts.dim_date" in text and "*view*" in text


def test_enms_db_docs_check_names_the_command_when_the_file_is_stale(fresh_url, tmp_path):
    stale = tmp_path / "marts.md"
    stale.write_text("# edited by hand\n")

    def docs(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "enms_dagster.cli", "db", "docs", "--output", str(stale), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "ENMS_DATABASE_URL": fresh_url},
        )

    checked = docs("--check")
    assert checked.returncode == 1
    assert REGENERATE_COMMAND in checked.stderr
    assert stale.read_text() == "# edited by hand\n"
    assert docs().returncode == 0
    with psycopg.connect(fresh_url) as conn:
        assert stale.read_text() == render_marts_docs(conn)
    assert docs("--check").returncode == 0
