"""Retention of raw readings: old UTC days are dropped whole, only once computed and checked."""

import datetime as dt

import dagster as dg

from enms_dagster.assets.hourly import RETENTION_REQUIRES
from enms_dagster.assets.metadata import native_table
from enms_dagster.hourly.retention import drop_raw_days, plan_raw_retention
from enms_dagster.resources import WarehouseResource


class RetentionConfig(dg.Config):
    """Raw readings older than this many days are dropped (where hourly energy is safe)."""

    max_age_days: int = 90


@dg.asset(group_name="core", deps=["hourly_energy"], kinds={"postgres"})
def raw_retention_log(
    config: RetentionConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """raw.retention_log: raw.readings partitions (UTC days) dropped for age. A day is dropped
    only when every local day it feeds is materialized in hourly_energy and passed the checks
    retention requires; the others are kept and listed with the reason."""
    today = dt.datetime.now(dt.UTC).date()
    with warehouse.connect() as conn:
        plan = plan_raw_retention(conn, config.max_age_days, today, RETENTION_REQUIRES)
        dropped = drop_raw_days(conn, plan, config.max_age_days)
    kept = [d for d in plan if not d.droppable]
    return dg.MaterializeResult(
        metadata={
            "max_age_days": config.max_age_days,
            "days_dropped": len(plan) - len(kept),
            "readings_dropped": dropped,
            "days_kept": len(kept),
            "kept": native_table(["UTC day", "why kept"], [(d.utc_day, d.reason) for d in kept]),
        }
    )
