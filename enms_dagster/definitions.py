"""The whole platform in one screen: assets, checks, jobs, schedules, sensors, resources.

Built when Dagster loads the code location, not when this module is imported: the daily
partitions and the schedules follow the plant's time zone, read from the plant file then, and the
partitions begin at the plant's first day of data (``partitions.history_start``).
"""

import warnings

import dagster as dg

from enms_dagster.assets.anomalies import build_anomalies
from enms_dagster.assets.baselines import energy_baselines, energy_performance
from enms_dagster.assets.drift import drift_events
from enms_dagster.assets.drivers import build_hourly_drivers
from enms_dagster.assets.forecasts import (
    build_load_forecasts,
    forecast_accuracy,
    forecast_champions,
)
from enms_dagster.assets.hourly import (
    build_hourly_energy,
    build_hourly_energy_checks,
    build_raw_readings_checks,
)
from enms_dagster.assets.marts import build_mart_assets
from enms_dagster.assets.plant import plant_registry
from enms_dagster.assets.raw import build_raw_readings, ingestor_alive
from enms_dagster.assets.report import energy_report
from enms_dagster.assets.retention import raw_retention_log
from enms_dagster.jobs import (
    baseline_job,
    build_schedules,
    daily_job,
    energy_job,
    forecast_job,
    hourly_job,
    retention_job,
    with_freshness_policies,
)
from enms_dagster.partitions import daily_partitions, history_start, plant_timezone
from enms_dagster.resources import AlertsResource, PlantResource, WarehouseResource
from enms_dagster.sensors.alerts import anomaly_alerts_sensor
from enms_dagster.sensors.drift import baseline_drift_sensor
from enms_dagster.sensors.raw_readings import build_raw_readings_sensor


@dg.definitions
def defs() -> dg.Definitions:
    # Single-run backfills and partitioned checks are beta/preview features used on purpose;
    # their warnings at every load would bury what the console's log has to say.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return _definitions()


def _definitions() -> dg.Definitions:
    timezone = plant_timezone()
    days = daily_partitions(timezone, history_start(timezone))
    return dg.Definitions(
        assets=with_freshness_policies(
            timezone,
            [
                plant_registry,
                build_raw_readings(days),
                build_hourly_energy(days),
                build_hourly_drivers(days),
                *build_mart_assets(days),  # kpi_daily, fct_energy_hourly, fct_kpi_daily
                energy_baselines,
                energy_performance,
                build_anomalies(days),
                build_load_forecasts(days),
                forecast_accuracy,
                forecast_champions,
                drift_events,
                energy_report,
                raw_retention_log,
            ],
        ),
        asset_checks=[
            *build_raw_readings_checks(days),
            *build_hourly_energy_checks(days),
            ingestor_alive,
        ],
        jobs=[energy_job, hourly_job, daily_job, forecast_job, baseline_job, retention_job],
        schedules=build_schedules(timezone),
        sensors=[build_raw_readings_sensor(days), anomaly_alerts_sensor, baseline_drift_sensor],
        resources={
            "warehouse": WarehouseResource(database_url=dg.EnvVar("ENMS_DATABASE_URL")),
            "plant": PlantResource(),
            "alerts": AlertsResource(),
        },
    )
