"""Where a sensor without a cursor resumes: the position its last reported event recorded."""

import dagster as dg


def recorded_position(instance: dg.DagsterInstance, asset_key: dg.AssetKey, key: str) -> int:
    """The integer ``key`` of ``asset_key``'s latest materialization in this instance, else 0.

    A sensor writes its position into the events it reports, so a sensor that has no cursor
    (its first tick after the demo reported in-process, or a cursor lost with a renamed code
    location) resumes after what the instance already holds instead of replaying it."""
    event = instance.get_latest_materialization_event(asset_key)
    materialization = event.asset_materialization if event else None
    value = materialization.metadata.get(key) if materialization else None
    return int(value.value) if value is not None else 0
