"""Database functions live in one re-appliable file each, put in place by the migration runner
whenever the file changes, while the migrations that first created them stay untouched."""

import shutil

import pytest

from enms_dagster.db import (
    FUNCTIONS_DIR,
    MigrationError,
    applied_functions,
    connect,
    discover_functions,
    migrate,
)
from tests.conftest import scratch_database


def definitions(url: str) -> dict[str, str]:
    """What the server holds for each function that has a file (and exists): its definition."""
    with connect(url) as conn:
        found = {
            f.name: conn.execute("SELECT pg_get_functiondef(to_regproc(%s))", (f.name,)).fetchone()[
                0
            ]
            for f in discover_functions()
        }
    return {name: text for name, text in found.items() if text is not None}


def counter_step_of_a_first_reading(url: str) -> float:
    with connect(url) as conn:
        return conn.execute(
            "SELECT core.counter_step('m', 'energy_kwh_total', false, 1.0, NULL, now(), 5.0, "
            "NULL, NULL, 900.0)"
        ).fetchone()[0]


@pytest.mark.integration
def test_each_function_file_holds_exactly_what_the_latest_migration_defined(tmp_path):
    (tmp_path / "none").mkdir()
    with scratch_database() as url:
        applied = []
        migrate(url, functions_directory=tmp_path / "none", on_function=applied.append)
        assert applied == [] and applied_functions(url) == {}
        from_migrations = definitions(url)

        migrate(url, on_function=applied.append)

        assert sorted(f.name for f in applied) == sorted(f.name for f in discover_functions())
        assert {
            "core.counter_step",
            "core.group_hourly_energy_readings",
            "raw.ensure_reading_partitions",
        } <= set(from_migrations)
        after = definitions(url)
        assert {name: after[name] for name in from_migrations} == from_migrations
        # functions born as files (no migration ever defined them) exist once migrated
        assert {"core.is_working_day", "core.is_working_hour"} <= set(after) - set(from_migrations)


@pytest.mark.integration
def test_a_second_migrate_applies_no_function_and_an_edited_file_is_applied_once(tmp_path):
    edited = tmp_path / "functions"
    shutil.copytree(FUNCTIONS_DIR, edited)
    step = edited / "core.counter_step.sql"
    text = step.read_text()
    assert "WHEN prev_value IS NULL THEN 0" in text
    step.write_text(
        text.replace("WHEN prev_value IS NULL THEN 0", "WHEN prev_value IS NULL THEN -1")
    )
    with scratch_database() as url:
        migrate(url)
        recorded = applied_functions(url)
        applied = []
        assert migrate(url, on_function=applied.append) == [] and applied == []
        assert applied_functions(url) == recorded
        assert counter_step_of_a_first_reading(url) == 0

        migrate(url, functions_directory=edited, on_function=applied.append)
        assert [f.name for f in applied] == ["core.counter_step"]
        assert counter_step_of_a_first_reading(url) == -1
        migrate(url, functions_directory=edited, on_function=applied.append)
        assert len(applied) == 1

        migrate(url, on_function=applied.append)  # the shipped file again
        assert [f.name for f in applied] == ["core.counter_step"] * 2
        assert counter_step_of_a_first_reading(url) == 0
        assert applied_functions(url) == recorded


def test_function_files_are_named_after_the_function_they_define(tmp_path):
    for f in discover_functions():
        assert f"FUNCTION {f.name}(" in f.path.read_text()
    (tmp_path / "counter_step.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="schema.function.sql"):
        discover_functions(tmp_path)
