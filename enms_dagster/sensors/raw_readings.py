"""The MQTT sensor: turns batches the ingestor committed into Dagster asset events and runs."""

import datetime as dt
import json
from zoneinfo import ZoneInfo

import dagster as dg

from enms_dagster.assets.check_names import INGESTOR_ALIVE
from enms_dagster.assets.raw import ingestor_health_result
from enms_dagster.ingest.batches import (
    BatchCursor,
    DayActivity,
    read_ingestor_health,
    read_new_batches,
)
from enms_dagster.jobs import energy_job
from enms_dagster.resources import WarehouseResource
from enms_dagster.sensors.position import recorded_position

LAST_BATCH_ID = "last_batch_id"


def materialization_for(
    activity: DayActivity, now: dt.datetime, last_batch_id: int
) -> dg.AssetMaterialization:
    """The day's raw_readings event; ``last_batch_id`` is the sensor's position in the batch log
    after it, from which a sensor without a cursor resumes (``recorded_position``)."""
    lag = (now - activity.last_committed_at).total_seconds() if activity.last_committed_at else None
    metadata: dict[str, object] = {
        "batches": activity.batches,
        "readings_inserted": activity.readings_inserted,
        "readings_duplicate": activity.readings_received - activity.readings_inserted,
        "quarantined": activity.quarantined,
        "machines": len(activity.machines),
        LAST_BATCH_ID: last_batch_id,
    }
    # times as timestamps: the UI shows them in one offset, the viewer's
    if activity.min_ts is not None and activity.max_ts is not None:
        metadata["min_ts"] = dg.MetadataValue.timestamp(activity.min_ts)
        metadata["max_ts"] = dg.MetadataValue.timestamp(activity.max_ts)
    if lag is not None:
        metadata["seconds_since_commit"] = round(lag, 1)
    return dg.AssetMaterialization(
        asset_key="raw_readings", partition=activity.day.isoformat(), metadata=metadata
    )


def build_raw_readings_sensor(partitions: dg.DailyPartitionsDefinition) -> dg.SensorDefinition:
    """The raw_readings sensor, reporting days of the plant's daily partitions."""

    @dg.sensor(
        job=energy_job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Reports each day partition of raw_readings that new batches touched, and requests the "
            "energy job for those days (late data re-materializes the past day it belongs to). "
            "Running by default: it only reads the batch log and requests idempotent runs."
        ),
    )
    def raw_readings_sensor(
        context: dg.SensorEvaluationContext, warehouse: WarehouseResource
    ) -> dg.SensorResult | dg.SkipReason:
        """Reports each day partition of raw_readings that new batches touched, and requests the
        energy job for those days (late data re-materializes the past day it belongs to).
        Running by default: it only reads the batch log and requests idempotent runs."""
        state = _load_cursor(context.cursor)
        if not context.cursor:
            state["batch"] = recorded_position(
                context.instance, dg.AssetKey("raw_readings"), LAST_BATCH_ID
            )
        now = dt.datetime.now(dt.UTC)
        before = BatchCursor(state["batch"], {int(k): v for k, v in state["gaps"].items()})
        with warehouse.connect() as conn:
            cursor, days = read_new_batches(conn, before, ZoneInfo(partitions.timezone), now)
            health = read_ingestor_health(conn)
        # Ingestor health goes to the UI with every batch, when it changes, and every 10 minutes.
        report_health = (
            bool(days)
            or health.alive != state["alive"]
            or health.down != state["down"]
            or now.timestamp() - state["health"] > 600
        )
        health_events = []
        if report_health:
            health_events = [_check_evaluation(health)]
            state["health"], state["alive"] = now.timestamp(), health.alive
            state["down"] = health.down
        state["batch"], state["gaps"] = cursor.last_id, cursor.gaps
        if not days and not health_events:
            context.update_cursor(json.dumps(state))
            return dg.SkipReason(f"no readings landed after batch {before.last_id}")
        valid = set(partitions.get_partition_keys())
        outside = [a.day.isoformat() for a in days if a.day.isoformat() not in valid]
        if outside:
            # partitions begin at the first landed day as the definitions were built: history
            # imported since has days before it until the code location reloads
            context.log.warning(
                f"readings landed in {len(outside)} day(s) outside the partitions "
                f"({outside[0]} .. {outside[-1]}; partitions {partitions.start:%Y-%m-%d} on): "
                "reload the code location (or set history_start in the plant file), then "
                "backfill those days"
            )
        days = [a for a in days if a.day.isoformat() in valid]
        landed = [a for a in days if a.readings_inserted > 0]
        return dg.SensorResult(
            asset_events=[materialization_for(a, now, cursor.last_id) for a in days]
            + health_events,
            run_requests=[
                dg.RunRequest(
                    partition_key=a.day.isoformat(),
                    run_key=f"energy-{a.day.isoformat()}-{cursor.last_id}",
                )
                for a in landed
            ],
            cursor=json.dumps(state),
        )

    return raw_readings_sensor


def _load_cursor(cursor: str | None) -> dict:
    state = {"batch": 0, "gaps": {}, "health": 0.0, "alive": None, "down": []}
    if cursor and cursor.isdigit():  # a bare batch id
        state["batch"] = int(cursor)
    elif cursor:
        state.update(json.loads(cursor))
    return state


def _check_evaluation(health) -> dg.AssetCheckEvaluation:
    result = ingestor_health_result(health)
    return dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey("raw_readings"),
        check_name=INGESTOR_ALIVE,
        passed=result.passed,
        severity=result.severity,
        description=result.description,
        metadata=result.metadata,
    )
