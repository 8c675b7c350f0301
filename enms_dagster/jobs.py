"""Jobs and schedules over the asset graph."""

import dagster as dg

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
                "raw_readings_in_physical_range",
                "raw_readings_not_in_future",
                "raw_readings_counters_monotonic",
            )
        )
    ),
    description=(
        "Hourly energy, drivers, the KPI marts (hourly facts with cost and CO2e, daily KPIs "
        "per machine, line and site) and anomaly detection for one day (or a range, in one "
        "run), with the checks on the day's raw readings."
    ),
)

daily_energy_schedule = dg.build_schedule_from_partitioned_job(
    energy_job,
    hour_of_day=1,
    minute_of_hour=15,
    description=(
        "Recomputes yesterday's hourly energy and KPIs at 01:15 plant time, after late readings "
        "had an hour to arrive. Stopped by default: the MQTT sensor already reacts to new data; "
        "start it where readings arrive in bulk (imports) rather than continuously."
    ),
)

retention_job = dg.define_asset_job(
    "retention_job",
    selection=dg.AssetSelection.assets("raw_retention_log"),
    description="Drops raw readings past their age where hourly energy is computed and checked.",
)

daily_retention_schedule = dg.ScheduleDefinition(
    job=retention_job,
    cron_schedule="30 3 * * *",
    execution_timezone="Europe/Berlin",
    description=(
        "Drops expired raw days at 03:30 plant time. Stopped by default: dropping data is a "
        "decision for whoever runs the plant; start it once the retention age is set."
    ),
)

baseline_job = dg.define_asset_job(
    "baseline_job",
    selection=dg.AssetSelection.assets("energy_baselines", "energy_performance"),
    description=(
        "Fits the energy baselines (a new version per machine, site and resolution; valid ones "
        "become active) and recomputes EnPI, savings and CUSUM against them."
    ),
)

weekly_baseline_schedule = dg.ScheduleDefinition(
    name="weekly_baseline_schedule",
    job=baseline_job,
    cron_schedule="0 4 * * 1",
    execution_timezone="Europe/Berlin",
    run_config=dg.RunConfig(ops={"energy_baselines": {"config": {"reason": "weekly re-fit"}}}),
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "Re-fits every baseline on Monday at 04:00 plant time, after the week's hourly energy "
        "is in. Running by default: a re-fit only adds versions; the active model changes only "
        "to a valid one, and the old versions stay in marts.baseline_models."
    ),
)
