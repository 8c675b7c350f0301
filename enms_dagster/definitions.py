"""The whole platform in one screen: assets, checks, jobs, schedules, sensors, resources."""

import dagster as dg

from enms_dagster.assets.anomalies import anomalies
from enms_dagster.assets.baselines import energy_baselines, energy_performance
from enms_dagster.assets.drivers import hourly_drivers
from enms_dagster.assets.forecasts import forecast_accuracy, forecast_champions, load_forecasts
from enms_dagster.assets.hourly import hourly_energy, hourly_energy_checks, raw_readings_checks
from enms_dagster.assets.marts import fct_energy_hourly, fct_kpi_daily, kpi_daily
from enms_dagster.assets.plant import plant_registry
from enms_dagster.assets.raw import ingestor_alive, raw_readings
from enms_dagster.assets.report import energy_report
from enms_dagster.assets.retention import raw_retention_log
from enms_dagster.jobs import (
    baseline_job,
    daily_forecast_schedule,
    daily_job,
    daily_retention_schedule,
    daily_schedule,
    energy_job,
    forecast_job,
    hourly_job,
    hourly_schedule,
    retention_job,
    weekly_baseline_schedule,
)
from enms_dagster.resources import PlantResource, WarehouseResource
from enms_dagster.sensors.alerts import AlertsResource, anomaly_alerts_sensor
from enms_dagster.sensors.drift import baseline_drift_sensor, drift_events
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
        load_forecasts,
        forecast_accuracy,
        forecast_champions,
        drift_events,
        energy_report,
        raw_retention_log,
    ],
    asset_checks=[*raw_readings_checks, *hourly_energy_checks, ingestor_alive],
    jobs=[energy_job, hourly_job, daily_job, forecast_job, baseline_job, retention_job],
    schedules=[
        hourly_schedule,
        daily_forecast_schedule,
        daily_schedule,
        weekly_baseline_schedule,
        daily_retention_schedule,
    ],
    sensors=[raw_readings_sensor, anomaly_alerts_sensor, baseline_drift_sensor],
    resources={
        "warehouse": WarehouseResource(database_url=dg.EnvVar("ENMS_DATABASE_URL")),
        "plant": PlantResource(),
        "alerts": AlertsResource(),
    },
)
