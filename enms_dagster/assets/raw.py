"""Readings landed by the MQTT ingestor (or ``enms import``): external to Dagster, reported by the
MQTT sensor one day partition at a time."""

import dagster as dg

from enms_dagster.partitions import daily_partitions

raw_readings = dg.AssetSpec(
    "raw_readings",
    description=(
        "raw.readings: every reading landed by the ingestor, once per machine, metric and ts. "
        "Written outside Dagster; the raw_readings_sensor reports each touched day."
    ),
    group_name="raw",
    partitions_def=daily_partitions,
    deps=["plant_registry"],
    kinds={"postgres", "mqtt"},
)
