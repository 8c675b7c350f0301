"""Jobs and schedules over the asset graph.

Every job runs its steps in the run's own process (``in_process_executor``): the steps are
SQL-bound or wait on each other, so a process per step only adds the import of the code location
and of pandas per step (measured in docs/architecture.md, "Run executors"). The forecast models
run in their own process pool inside ``load_forecasts``.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from enms_dagster.assets.check_names import (
    RAW_READINGS_COUNTERS_MONOTONIC,
    RAW_READINGS_IN_PHYSICAL_RANGE,
    RAW_READINGS_NOT_IN_FUTURE,
)

energy_job = dg.define_asset_job(
    "energy_job",
    selection=dg.AssetSelection.assets(
        "hourly_energy",
        "hourly_drivers",
        "kpi_daily",
        "fct_energy_hourly",
        "fct_kpi_daily",
        "anomalies",
    )
    | dg.AssetSelection.checks(
        *(
            dg.AssetCheckKey(dg.AssetKey("raw_readings"), name)
            for name in (
                RAW_READINGS_IN_PHYSICAL_RANGE,
                RAW_READINGS_NOT_IN_FUTURE,
                RAW_READINGS_COUNTERS_MONOTONIC,
            )
        )
    ),
    executor_def=dg.in_process_executor,
    description=(
        "Hourly energy, drivers, the KPI marts (hourly facts with cost and CO2e, daily KPIs "
        "per machine, line and site) and anomaly detection for one day (or a range, in one "
        "run), with the checks on the day's raw readings."
    ),
)

# The schedules run in the plant's time zone: hourly (energy and anomalies), daily (forecasts at
# 00:30; KPIs, performance and the report at 01:15), weekly (baselines).
hourly_job = dg.define_asset_job(
    "hourly_job",
    selection=dg.AssetSelection.assets(
        "hourly_energy", "hourly_drivers", "fct_energy_hourly", "anomalies"
    ),
    executor_def=dg.in_process_executor,
    description="The current local day's hourly energy, drivers, priced hours and anomalies.",
)


daily_job = dg.define_asset_job(
    "daily_job",
    selection=dg.AssetSelection.assets(
        "kpi_daily", "fct_kpi_daily", "energy_performance", "energy_report"
    ),
    executor_def=dg.in_process_executor,
    description=(
        "Yesterday's KPI marts, energy performance against the baselines (EnPI, savings, "
        "CUSUM) and the HTML energy report."
    ),
)


forecast_job = dg.define_asset_job(
    "forecast_job",
    selection=dg.AssetSelection.assets("load_forecasts", "forecast_accuracy", "forecast_champions"),
    executor_def=dg.in_process_executor,
    description=(
        "Day-ahead forecasts of a day for every machine and site (Prophet, ARIMAX, gradient "
        "boosting, seasonal naive), the scores of the forecast days whose actuals have landed, "
        "and the champion per machine and site."
    ),
)

retention_job = dg.define_asset_job(
    "retention_job",
    selection=dg.AssetSelection.assets("raw_retention_log"),
    executor_def=dg.in_process_executor,
    description="Drops raw readings past their age where hourly energy is computed and checked.",
)

baseline_job = dg.define_asset_job(
    "baseline_job",
    selection=dg.AssetSelection.assets("energy_baselines", "energy_performance"),
    executor_def=dg.in_process_executor,
    description=(
        "Fits the energy baselines (a new version per machine, site and resolution; valid ones "
        "become active) and recomputes EnPI, savings and CUSUM against them."
    ),
)


def _local_day_of_last_hour(context: dg.ScheduleEvaluationContext, timezone: str) -> str:
    """The partition (local day) holding the hour that just ended."""
    when = context.scheduled_execution_time.astimezone(ZoneInfo(timezone))
    return (when - dt.timedelta(hours=1)).date().isoformat()


def build_schedules(timezone: str) -> list[dg.ScheduleDefinition]:
    """The schedules, on the plant's clock (``timezone``, an IANA zone)."""

    @dg.schedule(
        job=hourly_job,
        cron_schedule="5 * * * *",
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            "Five minutes past each hour: recomputes the local day holding the hour that just "
            "ended (at 00:05, yesterday) and runs anomaly detection on it, so alerts follow "
            "within the hour. Running by default: the runs are idempotent and alerting depends "
            "on them."
        ),
    )
    def hourly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        day = _local_day_of_last_hour(context, timezone)
        return dg.RunRequest(
            partition_key=day, run_key=f"hourly-{context.scheduled_execution_time:%Y%m%dT%H%M}"
        )

    @dg.schedule(
        job=daily_job,
        cron_schedule="15 1 * * *",
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            "At 01:15 plant time, after late readings had an hour to arrive: yesterday's KPIs, the "
            "performance against the baselines and the energy report. Running by default: it only "
            "recomputes marts from what is landed."
        ),
    )
    def daily_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        when = context.scheduled_execution_time.astimezone(ZoneInfo(timezone))
        day = (when.date() - dt.timedelta(days=1)).isoformat()
        return dg.RunRequest(partition_key=day, run_key=f"daily-{day}")

    daily_forecast_schedule = dg.build_schedule_from_partitioned_job(
        forecast_job,
        name="daily_forecast_schedule",
        hour_of_day=0,
        minute_of_hour=30,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            "At 00:30 plant time forecasts the day that has just started from the hours before its "
            "midnight, scores yesterday's forecasts and re-chooses the champions. Running by "
            "default: it only writes forecasts and scores, idempotently per day."
        ),
    )

    daily_retention_schedule = dg.ScheduleDefinition(
        job=retention_job,
        cron_schedule="30 3 * * *",
        execution_timezone=timezone,
        description=(
            "Drops expired raw days at 03:30 plant time. Stopped by default: dropping data is a "
            "decision for whoever runs the plant; start it once the retention age is set."
        ),
    )

    weekly_baseline_schedule = dg.ScheduleDefinition(
        name="weekly_baseline_schedule",
        job=baseline_job,
        cron_schedule="0 4 * * 1",
        execution_timezone=timezone,
        run_config=dg.RunConfig(ops={"energy_baselines": {"config": {"reason": "weekly re-fit"}}}),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            "Re-fits every baseline on Monday at 04:00 plant time, after the week's hourly energy "
            "is in. Running by default: a re-fit only adds versions; the active model changes only "
            "to a valid one, and the old versions stay in marts.baseline_models."
        ),
    )

    return [
        hourly_schedule,
        daily_forecast_schedule,
        daily_schedule,
        weekly_baseline_schedule,
        daily_retention_schedule,
    ]


def build_freshness_policies(timezone: str) -> dict[str, dg.FreshnessPolicy]:
    """How fresh the assets the plant watches must be, on the plant's clock (``timezone``), with
    room for the runs above to finish. Dagster's freshness daemon evaluates them and records only
    changes of state: no runs, no sensor ticks.

    - raw_readings: the sensor reports landed batches every minute; a quarter of an hour
      without any warns, an hour fails (the ingestor_alive check names the cause).
    - hourly_energy, fct_energy_hourly: the hourly job at :05 must have written them by :55.
    - fct_kpi_daily: the daily job at 01:15 must have written it by 03:15.
    """
    hourly = dg.FreshnessPolicy.cron(
        deadline_cron="55 * * * *", lower_bound_delta=dt.timedelta(minutes=55), timezone=timezone
    )
    return {
        "raw_readings": dg.FreshnessPolicy.time_window(
            fail_window=dt.timedelta(hours=1), warn_window=dt.timedelta(minutes=15)
        ),
        "hourly_energy": hourly,
        "fct_energy_hourly": hourly,
        "fct_kpi_daily": dg.FreshnessPolicy.cron(
            deadline_cron="15 3 * * *", lower_bound_delta=dt.timedelta(hours=2), timezone=timezone
        ),
    }


def with_freshness_policies(timezone: str, assets: list) -> list:
    """``assets`` (definitions and specs) with the freshness policies above attached."""
    policies = build_freshness_policies(timezone)
    return dg.map_asset_specs(
        lambda spec: (
            dg.apply_freshness_policy(spec, policies[spec.key.to_user_string()])
            if spec.key.to_user_string() in policies
            else spec
        ),
        assets,
    )
