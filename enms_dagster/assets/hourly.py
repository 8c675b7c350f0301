"""Hourly energy per machine, computed in PostgreSQL a local day (or a range of days) at a time."""

import dagster as dg

from enms_dagster.charts import markdown_table
from enms_dagster.partitions import daily_partitions
from enms_dagster.resources import WarehouseResource
from enms_dagster.transforms import negative_energy_hours, rebuild_hourly_energy


@dg.asset(
    group_name="core",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=["raw_readings"],
    kinds={"postgres", "sql"},
)
def hourly_energy(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """core.hourly_energy: kWh, average, maximum and 15-minute peak kW per machine and hour."""
    window = context.partition_time_window
    with warehouse.connect() as conn:
        rows = rebuild_hourly_energy(conn, window.start, window.end)
        methods = conn.execute(
            "SELECT energy_method, count(DISTINCT machine_id), count(*) FROM core.hourly_energy "
            "WHERE hour_start >= %s AND hour_start < %s GROUP BY 1 ORDER BY 1",
            (window.start, window.end),
        ).fetchall()
    return dg.MaterializeResult(
        metadata={
            "rows": rows,
            "window_start": window.start.isoformat(),
            "window_end": window.end.isoformat(),
            "energy_methods": dg.MetadataValue.md(
                markdown_table(["method", "machines", "machine-hours"], methods)
            ),
        }
    )


@dg.asset_check(asset=hourly_energy, blocking=True)
def hourly_energy_not_negative(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """No machine-hour may have negative kWh; the marts wait until this holds. It scans the whole
    table (a few hundred thousand rows a year), so a bad hour anywhere keeps failing until fixed."""
    with warehouse.connect() as conn:
        bad = negative_energy_hours(conn)
    return dg.AssetCheckResult(
        passed=not bad,
        metadata={
            "negative_hours": len(bad),
            "examples": dg.MetadataValue.md(
                markdown_table(
                    ["machine", "hour", "kWh"], [(m, h.isoformat(), e) for m, h, e in bad[:10]]
                )
            ),
        },
    )
