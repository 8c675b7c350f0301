"""Analyst marts in the ``marts`` schema."""

import datetime as dt

import dagster as dg

from enms_dagster.charts import bar_chart_markdown, markdown_table
from enms_dagster.partitions import daily_partitions
from enms_dagster.resources import WarehouseResource
from enms_dagster.transforms import rebuild_kpi_daily


@dg.asset(
    group_name="marts",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=["hourly_energy"],
    kinds={"postgres", "sql"},
)
def kpi_daily(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """marts.kpi_daily: energy, average kW, 15-minute peak and load factor per machine and day."""
    window = context.partition_time_window
    first: dt.date = window.start.date()
    last: dt.date = (window.end - dt.timedelta(seconds=1)).date()
    with warehouse.connect() as conn:
        rows = rebuild_kpi_daily(conn, first, last)
        per_machine = conn.execute(
            "SELECT machine_id, sum(energy_kwh), max(peak_15min_kw) FROM marts.kpi_daily "
            "WHERE local_date BETWEEN %s AND %s GROUP BY machine_id ORDER BY machine_id",
            (first, last),
        ).fetchall()
    total = sum(kwh for _, kwh, _ in per_machine)
    metadata = {
        "rows": rows,
        "days": f"{first} .. {last}",
        "total_energy_kwh": round(total, 3),
        "machines": len(per_machine),
        "energy_by_machine": dg.MetadataValue.md(
            markdown_table(["machine", "kWh", "peak 15-min kW"], per_machine)
        ),
    }
    if per_machine:
        metadata["energy_chart"] = dg.MetadataValue.md(
            bar_chart_markdown(
                [m for m, _, _ in per_machine],
                [kwh for _, kwh, _ in per_machine],
                f"Energy by machine, {first} .. {last}",
                "kWh",
            )
        )
    return dg.MaterializeResult(metadata=metadata)
