"""The whole platform in one screen: assets, checks, jobs, schedules, sensors, resources."""

import dagster as dg

from enms_dagster.assets.anomalies import anomalies
from enms_dagster.assets.baselines import energy_baselines, energy_performance
from enms_dagster.assets.drivers import hourly_drivers
from enms_dagster.assets.hourly import hourly_energy, hourly_energy_checks, raw_readings_checks
from enms_dagster.assets.marts import fct_energy_hourly, fct_kpi_daily, kpi_daily
from enms_dagster.assets.plant import plant_registry
from enms_dagster.assets.raw import ingestor_alive, raw_readings
from enms_dagster.assets.retention import raw_retention_log
from enms_dagster.jobs import (
    baseline_job,
    daily_energy_schedule,
    daily_retention_schedule,
    energy_job,
    retention_job,
    weekly_baseline_schedule,
)
from enms_dagster.resources import PlantResource, WarehouseResource
from enms_dagster.sensors.alerts import AlertsResource, anomaly_alerts_sensor
from enms_dagster.sensors.raw_readings import raw_readings_sensor

defs = dg.Definitions(
    assets=[
        plant_registry,
        raw_readings,
        hourly_energy,
        hourly_drivers,
        kpi_daily,
        fct_energy_hourly,
        fct_kpi_daily,
        energy_baselines,
        energy_performance,
        anomalies,
        raw_retention_log,
    ],
    asset_checks=[*raw_readings_checks, *hourly_energy_checks, ingestor_alive],
    jobs=[energy_job, retention_job, baseline_job],
    schedules=[daily_energy_schedule, daily_retention_schedule, weekly_baseline_schedule],
    sensors=[raw_readings_sensor, anomaly_alerts_sensor],
    resources={
        "warehouse": WarehouseResource(database_url=dg.EnvVar("ENMS_DATABASE_URL")),
        "plant": PlantResource(),
        "alerts": AlertsResource(),
    },
)
