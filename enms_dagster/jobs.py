"""Jobs and schedules over the asset graph."""

import dagster as dg

energy_job = dg.define_asset_job(
    "energy_job",
    selection=dg.AssetSelection.assets("hourly_energy", "kpi_daily"),
    description="Hourly energy and the daily KPI mart for one day (or a range, in one run).",
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
