"""The MQTT sensor: turns batches the ingestor committed into Dagster asset events and runs."""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from enms_dagster.ingest.batches import DayActivity, read_new_batches
from enms_dagster.jobs import energy_job
from enms_dagster.partitions import PLANT_TIMEZONE, daily_partitions
from enms_dagster.resources import WarehouseResource


def materialization_for(activity: DayActivity, now: dt.datetime) -> dg.AssetMaterialization:
    lag = (now - activity.last_committed_at).total_seconds() if activity.last_committed_at else None
    return dg.AssetMaterialization(
        asset_key="raw_readings",
        partition=activity.day.isoformat(),
        metadata={
            "batches": activity.batches,
            "readings_inserted": activity.readings_inserted,
            "readings_duplicate": activity.readings_received - activity.readings_inserted,
            "quarantined": activity.quarantined,
            "machines": len(activity.machines),
            "min_ts": activity.min_ts.isoformat() if activity.min_ts else "",
            "max_ts": activity.max_ts.isoformat() if activity.max_ts else "",
            "seconds_since_commit": round(lag, 1) if lag is not None else None,
        },
    )


@dg.sensor(
    job=energy_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def raw_readings_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    """Reports each day partition of raw_readings that new batches touched, and requests the
    energy job for those days (late data re-materializes the past day it belongs to).
    Running by default: it only reads the batch log and requests idempotent runs."""
    after = int(context.cursor or 0)
    with warehouse.connect() as conn:
        cursor, days = read_new_batches(conn, after, ZoneInfo(PLANT_TIMEZONE))
    if cursor == after:
        return dg.SkipReason(f"no batches committed after batch {after}")
    now = dt.datetime.now(dt.UTC)
    valid = set(daily_partitions.get_partition_keys())
    landed = [a for a in days if a.readings_inserted > 0 and a.day.isoformat() in valid]
    return dg.SensorResult(
        asset_events=[materialization_for(a, now) for a in days if a.day.isoformat() in valid],
        run_requests=[
            dg.RunRequest(
                partition_key=a.day.isoformat(), run_key=f"energy-{a.day.isoformat()}-{cursor}"
            )
            for a in landed
        ],
        cursor=str(cursor),
    )
