"""The Dagster definitions load, and say what runs by default."""

import datetime as dt
import subprocess
import sys

import dagster as dg

from enms_dagster.definitions import defs as load_definitions

defs = load_definitions()


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
        "load_forecasts",
        "forecast_accuracy",
        "forecast_champions",
        "drift_events",
        "energy_report",
        "raw_retention_log",
    }
    assert graph.get(dg.AssetKey("kpi_daily")).parent_keys == {dg.AssetKey("hourly_energy")}
    assert graph.get(dg.AssetKey("hourly_energy")).parent_keys == {dg.AssetKey("raw_readings")}
    assert not graph.get(dg.AssetKey("raw_readings")).is_materializable  # landed by the ingestor


def test_what_runs_by_default_reads_and_recomputes_and_what_acts_on_people_or_data_does_not():
    running, stopped = dg.DefaultScheduleStatus.RUNNING, dg.DefaultScheduleStatus.STOPPED
    statuses = {s.name: s.default_status for s in defs.schedules}
    assert statuses == {
        "hourly_schedule": running,
        "daily_forecast_schedule": running,
        "daily_schedule": running,
        "weekly_baseline_schedule": running,
        "retention_job_schedule": stopped,  # dropping data is the plant's decision
    }
    sensors = {s.name: s.default_status for s in defs.sensors}
    assert sensors == {
        "raw_readings_sensor": dg.DefaultSensorStatus.RUNNING,
        "anomaly_alerts_sensor": dg.DefaultSensorStatus.STOPPED,  # alerts reach people
        "baseline_drift_sensor": dg.DefaultSensorStatus.RUNNING,  # re-fits add versions only
    }
    for name in statuses:
        schedule = defs.resolve_schedule_def(name)
        assert schedule.execution_timezone == "Europe/Berlin", schedule.name
        assert schedule.description, schedule.name
    for sensor in defs.sensors:
        assert sensor.description, sensor.name


# The asset groups in the order data flows through them.
GROUP_ORDER = ("raw", "core", "analytics", "marts", "reports")
# One spelling per kind: Dagster's kind icons know postgres, sql, python and scikitlearn; the
# others show as text.
KINDS = {"postgres", "sql", "python", "scikitlearn", "mqtt", "html", "prophet", "statsmodels"}


def test_every_dependency_goes_from_an_earlier_group_to_the_same_or_a_later_one():
    graph = defs.resolve_asset_graph()
    group = {key: graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert set(group.values()) <= set(GROUP_ORDER), group
    backward = [
        f"{parent.to_user_string()} ({group[parent]}) -> {key.to_user_string()} ({group[key]})"
        for key in group
        for parent in graph.get(key).parent_keys
        if GROUP_ORDER.index(group[parent]) > GROUP_ORDER.index(group[key])
    ]
    assert backward == []


def test_every_kind_is_spelled_one_way():
    graph = defs.resolve_asset_graph()
    kinds = {kind for key in graph.get_all_asset_keys() for kind in graph.get(key).kinds}
    assert kinds <= KINDS, kinds - KINDS


def test_freshness_policies_give_each_scheduled_run_room_to_finish():
    graph = defs.resolve_asset_graph()

    def policy(key):
        return graph.get(dg.AssetKey(key)).freshness_policy

    def minute_of_day(cron):  # "M H * * *", or "M * * * *" (minute of the hour)
        minute, hour = cron.split()[:2]
        return int(minute) + (0 if hour == "*" else 60 * int(hour))

    def window(p):  # minutes into the hour (or day) in which a materialization keeps it fresh
        deadline = minute_of_day(p.deadline_cron)
        return deadline - p.lower_bound_delta.total_seconds() / 60, deadline

    raw = policy("raw_readings")  # the sensor reports batches every minute
    assert (raw.warn_window.to_timedelta(), raw.fail_window.to_timedelta()) == (
        dt.timedelta(minutes=15),
        dt.timedelta(hours=1),
    )
    hourly_run = minute_of_day(defs.resolve_schedule_def("hourly_schedule").cron_schedule)
    for key in ("hourly_energy", "fct_energy_hourly"):
        start, deadline = window(policy(key))
        assert policy(key).timezone == "Europe/Berlin"
        assert start <= hourly_run and deadline - hourly_run >= 30, key
    daily_run = minute_of_day(defs.resolve_schedule_def("daily_schedule").cron_schedule)
    start, deadline = window(policy("fct_kpi_daily"))
    assert start <= daily_run and deadline - daily_run >= 60
    # only the assets the plant watches; nothing else turns red for being idle
    watched = {
        k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).freshness_policy
    }
    assert watched == {"raw_readings", "hourly_energy", "fct_energy_hourly", "fct_kpi_daily"}
