"""Relevant variables (drivers) per site and hour, next to the energy they explain."""

import dagster as dg

from enms_dagster.assets.metadata import native_table, plottable
from enms_dagster.hourly.transforms import COOLING_BASE_C, HEATING_BASE_C, rebuild_hourly_drivers
from enms_dagster.resources import WarehouseResource


class DriversConfig(dg.Config):
    """Degree-hour bases stored with the drivers (the hourly mean temperature is stored too, so
    baselines derive degree-hours for any other base)."""

    heating_base_c: float = HEATING_BASE_C
    cooling_base_c: float = COOLING_BASE_C


def build_hourly_drivers(partitions: dg.DailyPartitionsDefinition) -> dg.AssetsDefinition:
    """The hourly_drivers asset over the plant's daily partitions."""

    @dg.asset(
        group_name="core",
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=["hourly_energy"],
        kinds={"postgres", "sql"},
    )
    def hourly_drivers(
        context: dg.AssetExecutionContext, config: DriversConfig, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """core.hourly_drivers: outdoor temperature, heating / cooling degree-hours, parts, running
        and operating hours, weekday, holiday and shift per site and hour."""
        window = context.partition_time_window
        with warehouse.connect() as conn:
            rows = rebuild_hourly_drivers(
                conn, window.start, window.end, config.heating_base_c, config.cooling_base_c
            )
            summary = conn.execute(
                "SELECT local_date, count(*), round(avg(outdoor_temperature_c)::numeric, 1), "
                "round(sum(hdh)::numeric, 1), round(sum(cdh)::numeric, 1), sum(parts), "
                "count(*) FILTER (WHERE is_shift), bool_or(is_holiday) "
                "FROM core.hourly_drivers WHERE hour_start >= %s AND hour_start < %s "
                "GROUP BY 1 ORDER BY 1",
                (window.start, window.end),
            ).fetchall()
            temperature, hdh, cdh, parts, shift_hours = conn.execute(
                "SELECT avg(outdoor_temperature_c), sum(hdh), sum(cdh), sum(parts), "
                "count(*) FILTER (WHERE is_shift) FROM core.hourly_drivers "
                "WHERE hour_start >= %s AND hour_start < %s",
                (window.start, window.end),
            ).fetchone()
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "rows": rows,
                "heating_base_c": config.heating_base_c,
                "cooling_base_c": config.cooling_base_c,
                "mean_outdoor_temperature_c": plottable(temperature, 1),
                "hdh": plottable(hdh, 1),
                "cdh": plottable(cdh, 1),
                "parts": plottable(parts),
                "shift_hours": shift_hours,
                "days": native_table(
                    [
                        "day",
                        "hours",
                        "mean °C",
                        "HDH",
                        "CDH",
                        "parts",
                        "shift hours",
                        "holiday",
                    ],
                    summary,
                ),
            }
        )

    return hourly_drivers
