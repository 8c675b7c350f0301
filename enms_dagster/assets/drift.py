"""The drift events asset: ``marts.drift_events``, written by ``baseline_drift_sensor``
(``sensors/drift.py``), which reports each new event on this asset."""

import dagster as dg

drift_events = dg.AssetSpec(
    "drift_events",
    group_name="analytics",
    deps=["energy_baselines", "hourly_energy", "hourly_drivers"],
    kinds={"postgres"},
    description=(
        "marts.drift_events: drifts of a machine's daily energy away from its active baseline "
        "(two-sided CUSUM of residuals after the baseline period), with the evidence. Stored by "
        "baseline_drift_sensor, which reports them here."
    ),
)
