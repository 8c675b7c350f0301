"""The Dagster definitions load, and say what runs by default."""

import subprocess
import sys

import dagster as dg

from enms_dagster.definitions import defs


def test_definitions_are_loadable():
    dg.Definitions.validate_loadable(defs)


def test_dagster_cli_validates_the_code_location():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "definitions",
            "validate",
            "-m",
            "enms_dagster.definitions",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "ENMS_DATABASE_URL": "postgresql://unused@localhost/x"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All code locations passed validation" in done.stdout + done.stderr


def test_the_asset_graph_runs_from_plant_and_raw_readings_to_the_mart():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {
        "plant_registry",
        "raw_readings",
        "hourly_energy",
        "hourly_drivers",
        "kpi_daily",
        "fct_energy_hourly",
        "fct_kpi_daily",
        "energy_baselines",
        "energy_performance",
        "anomalies",
        "raw_retention_log",
    }
    assert graph.get(dg.AssetKey("kpi_daily")).parent_keys == {dg.AssetKey("hourly_energy")}
    assert graph.get(dg.AssetKey("hourly_energy")).parent_keys == {dg.AssetKey("raw_readings")}
    assert not graph.get(dg.AssetKey("raw_readings")).is_materializable  # landed by the ingestor


def test_the_mqtt_sensor_runs_by_default_and_the_schedule_does_not():
    assert defs.resolve_sensor_def("raw_readings_sensor").default_status == (
        dg.DefaultSensorStatus.RUNNING
    )
    schedule = defs.resolve_schedule_def("energy_job_schedule")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.execution_timezone == "Europe/Berlin"
