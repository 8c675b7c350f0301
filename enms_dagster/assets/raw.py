"""Readings landed by the MQTT ingestor (or ``enms import``): external to Dagster, reported by the
MQTT sensor one day partition at a time."""

import dagster as dg

from enms_dagster.assets.check_names import INGESTOR_ALIVE
from enms_dagster.assets.metadata import native_table
from enms_dagster.ingest.batches import IngestorHealth, read_ingestor_health
from enms_dagster.resources import WarehouseResource


def build_raw_readings(partitions: dg.DailyPartitionsDefinition) -> dg.AssetSpec:
    """raw_readings, external to Dagster, over the plant's daily partitions."""
    return dg.AssetSpec(
        "raw_readings",
        description=(
            "raw.readings: every reading landed by the ingestor, once per machine, metric and ts. "
            "Written outside Dagster; the raw_readings_sensor reports each touched day."
        ),
        group_name="raw",
        partitions_def=partitions,
        deps=["plant_registry"],
        kinds={"postgres", "mqtt"},
    )


def ingestor_health_result(health: IngestorHealth) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key="raw_readings",
        check_name=INGESTOR_ALIVE,
        passed=health.alive,
        severity=dg.AssetCheckSeverity.WARN,
        description=health.summary,
        metadata={
            "ingestors": len(health.rows),
            "ingestors_down": len(health.down),
            "quarantine_rate": health.quarantine_rate,
            "status": native_table(
                [
                    "ingestor",
                    "heartbeat age s",
                    "state",
                    "queue",
                    "committed",
                    "quarantined",
                    "errors",
                    "last error",
                ],
                health.rows,
            ),
        },
    )


@dg.asset_check(asset="raw_readings", name=INGESTOR_ALIVE)
def ingestor_alive(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """At least one ingestor sent a heartbeat in the last minute; shows each one's state,
    queue, throughput, quarantine rate and last error, and names members that crashed or fell
    silent (redundancy lost). The MQTT sensor also reports it as it polls."""
    with warehouse.connect() as conn:
        return ingestor_health_result(read_ingestor_health(conn))
