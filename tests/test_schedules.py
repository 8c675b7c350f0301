"""Each schedule, evaluated at a moment that matters, requests the job and partition it should."""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from enms_dagster.definitions import defs as load_definitions

defs = load_definitions()

BERLIN = ZoneInfo("Europe/Berlin")


def evaluate(name: str, local: dt.datetime) -> list[dg.RunRequest]:
    schedule = defs.resolve_schedule_def(name)
    context = dg.build_schedule_context(
        scheduled_execution_time=local.replace(tzinfo=BERLIN),
        repository_def=defs.get_repository_def(),
    )
    return list(schedule.evaluate_tick(context).run_requests or [])


@pytest.mark.parametrize(
    ("local", "day"),
    [
        (dt.datetime(2026, 3, 10, 10, 5), "2026-03-10"),
        (dt.datetime(2026, 3, 11, 0, 5), "2026-03-10"),  # the 23:00 hour just ended
        (dt.datetime(2026, 3, 29, 3, 5), "2026-03-29"),  # the 23-hour day, after the switch
    ],
)
def test_the_hourly_schedule_runs_energy_and_anomalies_for_the_day_of_the_hour_just_ended(
    local, day
):
    [request] = evaluate("hourly_schedule", local)
    assert request.partition_key == day
    schedule = defs.resolve_schedule_def("hourly_schedule")
    assert schedule.job_name == "hourly_job"
    selected = defs.resolve_job_def("hourly_job").asset_layer.executable_asset_keys
    assert {k.to_user_string() for k in selected} == {
        "hourly_energy", "hourly_drivers", "fct_energy_hourly", "anomalies",
    }  # fmt: skip
    # two ticks in one hour would be the same run
    assert evaluate("hourly_schedule", local)[0].run_key == request.run_key


def test_the_daily_schedule_computes_yesterday_in_plant_time():
    [request] = evaluate("daily_schedule", dt.datetime(2026, 10, 26, 1, 15))
    assert request.partition_key == "2026-10-25"  # the 25-hour day
    selected = defs.resolve_job_def("daily_job").asset_layer.executable_asset_keys
    assert {k.to_user_string() for k in selected} >= {
        "kpi_daily", "fct_kpi_daily", "energy_performance", "energy_report",
    }  # fmt: skip


def test_the_forecast_schedule_forecasts_the_day_that_just_started():
    [request] = evaluate("daily_forecast_schedule", dt.datetime(2026, 3, 30, 0, 30))
    assert request.partition_key == "2026-03-30"  # the first day after the spring switch
    schedule = defs.resolve_schedule_def("daily_forecast_schedule")
    assert schedule.job_name == "forecast_job"
    selected = defs.resolve_job_def("forecast_job").asset_layer.executable_asset_keys
    assert {k.to_user_string() for k in selected} == {
        "load_forecasts", "forecast_accuracy", "forecast_champions",
    }  # fmt: skip


def test_the_weekly_schedule_refits_every_baseline_with_its_reason():
    [request] = evaluate("weekly_baseline_schedule", dt.datetime(2026, 3, 2, 4, 0))
    assert defs.resolve_schedule_def("weekly_baseline_schedule").job_name == "baseline_job"
    assert request.run_config["ops"]["energy_baselines"]["config"]["reason"] == "weekly re-fit"


def test_the_retention_schedule_runs_the_retention_job():
    [request] = evaluate("retention_job_schedule", dt.datetime(2026, 3, 2, 3, 30))
    assert defs.resolve_schedule_def("retention_job_schedule").job_name == "retention_job"
    assert request.partition_key is None


def test_every_job_can_be_launched_by_hand():
    jobs = (
        "energy_job",
        "hourly_job",
        "daily_job",
        "forecast_job",
        "baseline_job",
        "retention_job",
    )
    for job in jobs:
        definition = defs.resolve_job_def(job)
        assert definition.description, job
