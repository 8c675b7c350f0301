"""Analyst marts in the ``marts`` schema: the first per-machine ``kpi_daily``, and the fact tables
``fct_energy_hourly`` (priced hourly energy) and ``fct_kpi_daily`` (KPIs per machine, line and
site). Dimensions are views (``enms_dagster/db/migrations/0008_marts.sql``) and need no asset."""

import datetime as dt

import dagster as dg

from enms_dagster.assets.metadata import native_table, plottable
from enms_dagster.marts.transforms import (
    rebuild_fct_energy_hourly,
    rebuild_fct_kpi_daily,
    rebuild_kpi_daily,
)
from enms_dagster.resources import WarehouseResource


def _window_days(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """First and last local day of the partition window (one day, or a backfill range)."""
    window = context.partition_time_window
    return window.start.date(), (window.end - dt.timedelta(seconds=1)).date()


def build_mart_assets(partitions: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    """kpi_daily, fct_energy_hourly and fct_kpi_daily over the plant's daily partitions."""

    @dg.asset(
        group_name="marts",
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=["hourly_energy"],
        kinds={"postgres", "sql"},
    )
    def kpi_daily(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """marts.kpi_daily: energy, average kW, 15-minute peak and load factor per machine and
        local day, from core.hourly_energy alone (no tariff). fct_kpi_daily holds the priced set
        at machine, line and site level; the report falls back to this table's peak where
        fct_kpi_daily has no rows for the period."""
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
        peaks = [peak for *_, peak in per_machine if peak is not None]
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "rows": rows,
                "days": f"{first} .. {last}",
                "total_energy_kwh": round(total, 3),
                "machines": len(per_machine),
                "peak_15min_kw": plottable(max(peaks, default=None), 2),
                "energy_by_machine": native_table(
                    ["machine", "kWh", "peak 15-min kW"], per_machine
                ),
            }
        )

    @dg.asset(
        group_name="marts",
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=["hourly_energy", "hourly_drivers", "plant_registry"],
        kinds={"postgres", "sql"},
    )
    def fct_energy_hourly(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """marts.fct_energy_hourly: kWh, power, state hours, parts and completeness per machine and
        hour, with the shift flag, the time-of-use price and cost (periods matched in local time)
        and the CO2e of the hour."""
        window = context.partition_time_window
        with warehouse.connect() as conn:
            rows = rebuild_fct_energy_hourly(conn, window.start, window.end)
            periods = conn.execute(
                "SELECT COALESCE(tariff_period, '(none)'), count(*), sum(energy_kwh), "
                "sum(energy_cost), sum(energy_cost) / NULLIF(sum(energy_kwh), 0), sum(co2e_kg) "
                "FROM marts.fct_energy_hourly WHERE hour_start >= %s AND hour_start < %s "
                "GROUP BY 1 ORDER BY 1",
                (window.start, window.end),
            ).fetchall()
            profile = conn.execute(
                "SELECT local_hour, sum(energy_kwh) FROM marts.fct_energy_hourly "
                "WHERE hour_start >= %s AND hour_start < %s GROUP BY 1 ORDER BY 1",
                (window.start, window.end),
            ).fetchall()
        first, last = _window_days(context)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "rows": rows,
                "days": f"{first} .. {last}",
                "energy_kwh": round(sum(p[2] or 0 for p in periods), 3),
                "energy_cost": round(sum(p[3] or 0 for p in periods), 2),
                "co2e_kg": round(sum(p[5] or 0 for p in periods), 1),
                "tariff_periods": native_table(
                    ["period", "machine-hours", "kWh", "cost", "mean price / kWh", "kg CO2e"],
                    periods,
                ),
                "load_profile": native_table(
                    ["local hour", "kWh"], [(f"{hour:02d}:00", kwh) for hour, kwh in profile]
                ),
            }
        )

    @dg.asset(
        group_name="marts",
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=["fct_energy_hourly", "raw_readings"],
        kinds={"postgres", "sql"},
    )
    def fct_kpi_daily(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """marts.fct_kpi_daily: energy, SEC, peak demand, load factor, base load, idle and
        out-of-hours energy, time-of-use cost with the demand charge share, and CO2e per local day
        for each machine, line and site. Line and site peaks read the day's power readings."""
        first, last = _window_days(context)
        with warehouse.connect() as conn:
            rows = rebuild_fct_kpi_daily(conn, first, last)
            sites = conn.execute(
                "SELECT level_id, local_date, energy_kwh, peak_15min_kw, load_factor, "
                "base_load_kw, out_of_hours_share, total_cost, co2e_kg FROM marts.fct_kpi_daily "
                "WHERE level = 'site' AND local_date BETWEEN %s AND %s ORDER BY 1, 2",
                (first, last),
            ).fetchall()
            lines = conn.execute(
                "SELECT site_id || ' / ' || level_id, sum(energy_kwh), max(peak_15min_kw), "
                "sum(energy_kwh) / NULLIF(sum(parts), 0), sum(total_cost) FROM marts.fct_kpi_daily "
                "WHERE level = 'line' AND local_date BETWEEN %s AND %s GROUP BY 1 ORDER BY 1",
                (first, last),
            ).fetchall()
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "rows": rows,
                "days": f"{first} .. {last}",
                # the site level adds up the plant: one number per day to plot
                "energy_kwh": plottable(sum(site[2] or 0 for site in sites), 3),
                "peak_15min_kw": plottable(max((s[3] for s in sites if s[3]), default=None), 2),
                "total_cost": plottable(sum(site[7] or 0 for site in sites), 2),
                "co2e_kg": plottable(sum(site[8] or 0 for site in sites), 1),
                "line_count": len(lines),
                "sites": native_table(
                    [
                        "site",
                        "day",
                        "kWh",
                        "peak 15-min kW",
                        "load factor",
                        "base load kW",
                        "out-of-hours share",
                        "cost",
                        "kg CO2e",
                    ],
                    sites,
                ),
                "lines": native_table(
                    ["line", "kWh", "peak 15-min kW", "kWh / part", "cost"], lines
                ),
            }
        )

    return [kpi_daily, fct_energy_hourly, fct_kpi_daily]
