"""The migration runner: versioned, idempotent, and strict about edited history."""

import shutil

import pytest

from enms_dagster.db import (
    MIGRATIONS_DIR,
    MigrationError,
    applied_versions,
    discover_migrations,
    migrate,
)

pytestmark = pytest.mark.integration


def test_every_migration_is_applied_once_and_a_second_run_changes_nothing(services):
    versions = [m.version for m in discover_migrations()]
    assert applied_versions(services.database_url) == versions
    assert migrate(services.database_url) == []
    assert applied_versions(services.database_url) == versions


def test_the_warehouse_has_its_schemas_and_readings_are_partitioned_by_time(warehouse):
    schemas = {s for (s,) in warehouse.execute("SELECT nspname FROM pg_namespace")}
    assert {"raw", "core", "marts"} <= schemas
    (partitioned,) = warehouse.execute(
        "SELECT count(*) FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "WHERE c.relname = 'readings'"
    ).fetchone()
    hypertable = warehouse.execute(
        "SELECT to_regclass('timescaledb_information.hypertables')"
    ).fetchone()[0]
    assert partitioned == 1 or hypertable is not None


def test_a_new_migration_file_is_applied_and_recorded(services, tmp_path):
    shutil.copytree(MIGRATIONS_DIR, tmp_path / "m")
    (tmp_path / "m" / "9999_test_probe.sql").write_text(
        "CREATE TABLE IF NOT EXISTS core.migration_probe (x int);"
    )
    try:
        applied = migrate(services.database_url, tmp_path / "m")
        assert [m.version for m in applied] == [9999]
        assert 9999 in applied_versions(services.database_url)
        assert migrate(services.database_url, tmp_path / "m") == []
    finally:
        from enms_dagster.db import connect

        with connect(services.database_url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS core.migration_probe")
            conn.execute("DELETE FROM public.enms_schema_migrations WHERE version = 9999")


def test_editing_an_applied_migration_is_an_error(services, tmp_path):
    shutil.copytree(MIGRATIONS_DIR, tmp_path / "m")
    first = sorted((tmp_path / "m").glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited later\n")
    with pytest.raises(MigrationError, match="was changed after it was applied"):
        migrate(services.database_url, tmp_path / "m")


def test_badly_named_migration_files_are_refused(tmp_path):
    (tmp_path / "1_init.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_snake_name.sql"):
        discover_migrations(tmp_path)
