"""The drift sensor: finds machines whose energy drifts away from their baseline, stores each drift
as an event with its evidence, and requests one baseline re-fit per event."""

from typing import TYPE_CHECKING

import dagster as dg

from enms_dagster.assets.drift import drift_events
from enms_dagster.assets.metadata import native_table
from enms_dagster.jobs import baseline_job
from enms_dagster.resources import WarehouseResource
from enms_dagster.sensors.position import recorded_position

LAST_EVENT_SEQ = "last_event_seq"

if TYPE_CHECKING:
    from enms_dagster.drift.store import StoredDriftEvent


def refit_request(event: "StoredDriftEvent") -> dg.RunRequest:
    """A baseline re-fit of the event's machine whose new version records the drift as reason;
    the run key is the event id, so an event never launches a second run."""
    return dg.RunRequest(
        run_key=event.event_id,
        run_config={
            "ops": {
                "energy_baselines": {
                    "config": {
                        "scope_ids": [event.machine_id],
                        "reason": f"drift: {event.evidence} [{event.event_id}]",
                    }
                }
            }
        },
        tags={"enms/drift_event": event.event_id, "enms/machine": event.machine_id},
    )


@dg.sensor(
    job=baseline_job,
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Hourly: a CUSUM over each machine's daily residuals after its baseline period; each "
        "new drift (a step or a slow creep) is stored in marts.drift_events with its evidence "
        "and requests one baseline re-fit whose version records the drift as its reason. "
        "Running by default: a re-fit only adds a version, the active model changes only to a "
        "valid one, and a machine without drift triggers nothing."
    ),
)
def baseline_drift_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    """Runs the CUSUM drift detector over every machine's daily residuals after its baseline
    period, stores new drift events in marts.drift_events and launches baseline_job for each
    event stored since the cursor (one run per event: run key = event id). Hourly, since a
    residual is a whole day. Running by default: a re-fit only adds a baseline version, the
    active model changes only to a valid one, and a fault-free machine triggers nothing."""
    # the detector (pandas) loads when a tick runs, not with the code location
    from enms_dagster.drift.cusum import DriftSettings
    from enms_dagster.drift.store import drift_events_after, find_drift_events, store_drift_events

    after = (
        int(context.cursor)
        if context.cursor
        else recorded_position(context.instance, drift_events.key, LAST_EVENT_SEQ)
    )
    with warehouse.connect() as conn:
        inserted = store_drift_events(conn, find_drift_events(conn, DriftSettings()))
        events = drift_events_after(conn, after)
    if not events:
        return dg.SkipReason(f"no drift event after #{after}")
    for e in events:
        context.log.info(f"requesting a baseline re-fit of {e.machine_id}: {e.evidence}")
    last_seq = max(e.seq for e in events)
    new = [e for e in events if e.event_id in set(inserted)]
    return dg.SensorResult(
        run_requests=[refit_request(e) for e in events],
        asset_events=[drift_materialization(new, last_seq, "re-fit requested")] if new else [],
        cursor=str(last_seq),
    )


def drift_materialization(
    new: "list[StoredDriftEvent]", last_seq: int, refit: str
) -> dg.AssetMaterialization:
    """The drift_events event for newly stored drifts; ``last_seq`` is the position after them,
    from which a sensor without a cursor resumes; ``refit`` says what was done about them."""
    return dg.AssetMaterialization(
        asset_key=drift_events.key,
        metadata={
            "new_events": len(new),
            "machines_drifting": len({e.machine_id for e in new}),
            "machines": ", ".join(sorted({e.machine_id for e in new})),
            "refit": refit,
            LAST_EVENT_SEQ: last_seq,
            "events": native_table(
                ["event", "machine", "direction", "since", "detected", "evidence"],
                [
                    (
                        e.event_id,
                        e.machine_id,
                        e.direction,
                        e.change_start,
                        e.detected_on,
                        e.evidence,
                    )
                    for e in new
                ],
            ),  # fmt: skip
        },
    )
