"""Hourly energy per machine, computed in PostgreSQL a local day (or a range of days) at a time,
and the Great Expectations checks on it and on the raw readings it is computed from."""

import datetime as dt

import dagster as dg

from enms_dagster.assets.check_names import (
    HOURLY_ENERGY_COMPLETE,
    HOURLY_ENERGY_COUNTER_MATCHES_POWER,
    HOURLY_ENERGY_NOT_NEGATIVE,
    RAW_READINGS_COUNTERS_MONOTONIC,
    RAW_READINGS_IN_PHYSICAL_RANGE,
    RAW_READINGS_NOT_IN_FUTURE,
)
from enms_dagster.assets.metadata import native_table, plottable, window_timestamps
from enms_dagster.hourly import quality
from enms_dagster.hourly.transforms import rebuild_hourly_energy
from enms_dagster.resources import WarehouseResource


def _window_days(window: dg.TimeWindow) -> list[dt.date]:
    days, day = [], window.start.date()
    while day < window.end.date():
        days.append(day)
        day += dt.timedelta(days=1)
    return days


def _result(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    asset: str,
    check_name: str,
    outcome: quality.CheckOutcome,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> dg.AssetCheckResult:
    """Record the outcome per day for retention and turn it into a check result whose metadata
    says what failed, where and how many rows."""
    window = context.partition_time_window
    with warehouse.connect() as conn:
        quality.record_check_outcome(conn, asset, check_name, _window_days(window), outcome)
    return dg.AssetCheckResult(
        passed=outcome.passed,
        severity=severity,
        metadata={
            "expectation": outcome.expectation,
            "checked_rows": outcome.checked_rows,
            "failed_rows": outcome.failed_rows,
            "failed_days": sorted(d.isoformat() for d in outcome.failed_dates),
            **window_timestamps(window),
            "examples": (
                native_table(
                    list(outcome.examples[0]), [tuple(e.values()) for e in outcome.examples]
                )
                if outcome.examples
                else "none"
            ),
        },
    )


def build_hourly_energy(partitions: dg.DailyPartitionsDefinition) -> dg.AssetsDefinition:
    """The hourly_energy asset over the plant's daily partitions."""

    @dg.asset(
        group_name="core",
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=["raw_readings"],
        kinds={"postgres", "sql"},
    )
    def hourly_energy(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """core.hourly_energy: kWh (counter, interval or power), average, maximum and
        15-minute peak kW, running / idle / off hours, idle kWh, parts and completeness per
        machine and hour."""
        window = context.partition_time_window
        with warehouse.connect() as conn:
            rows = rebuild_hourly_energy(conn, window.start, window.end)
            methods = conn.execute(
                "SELECT energy_method, count(DISTINCT machine_id), count(*), sum(energy_kwh), "
                "round(avg(completeness)::numeric, 3) FROM core.hourly_energy "
                "WHERE hour_start >= %s AND hour_start < %s GROUP BY 1 ORDER BY 1",
                (window.start, window.end),
            ).fetchall()
            machines, completeness = conn.execute(
                "SELECT count(DISTINCT machine_id), 100 * avg(completeness) "
                "FROM core.hourly_energy WHERE hour_start >= %s AND hour_start < %s",
                (window.start, window.end),
            ).fetchone()
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "rows": rows,
                "machines": machines,
                "energy_kwh": plottable(sum(m[3] for m in methods), 3),
                "completeness_pct": plottable(completeness, 2),
                **window_timestamps(window),
                "energy_methods": native_table(
                    ["method", "machines", "machine-hours", "kWh", "mean completeness"], methods
                ),
            }
        )

    return hourly_energy


def build_hourly_energy_checks(
    partitions: dg.DailyPartitionsDefinition,
) -> list[dg.AssetChecksDefinition]:
    """The checks on each day of hourly energy."""

    @dg.asset_check(
        asset="hourly_energy",
        blocking=True,
        partitions_def=partitions,
        name=HOURLY_ENERGY_NOT_NEGATIVE,
    )
    def hourly_energy_not_negative(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        """No machine-hour of the window has negative kWh; blocking: the marts wait until it
        holds."""
        window = context.partition_time_window
        with warehouse.connect() as conn:
            outcome = quality.check_hourly_energy_not_negative(conn, window.start, window.end)
        return _result(context, warehouse, "hourly_energy", HOURLY_ENERGY_NOT_NEGATIVE, outcome)

    @dg.asset_check(
        asset="hourly_energy", partitions_def=partitions, name=HOURLY_ENERGY_COUNTER_MATCHES_POWER
    )
    def hourly_energy_counter_matches_power(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        """Counter kWh agree with integrated power within max(0.05 kWh, 2 %) per machine-hour."""
        window = context.partition_time_window
        with warehouse.connect() as conn:
            outcome = quality.check_counter_matches_power(conn, window.start, window.end)
        return _result(
            context, warehouse, "hourly_energy", HOURLY_ENERGY_COUNTER_MATCHES_POWER, outcome
        )

    @dg.asset_check(asset="hourly_energy", partitions_def=partitions, name=HOURLY_ENERGY_COMPLETE)
    def hourly_energy_complete(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        """Machine-hours with under 90 % of their expected samples (a warning, not an error)."""
        window = context.partition_time_window
        with warehouse.connect() as conn:
            outcome = quality.check_hourly_completeness(conn, window.start, window.end)
        return _result(
            context,
            warehouse,
            "hourly_energy",
            HOURLY_ENERGY_COMPLETE,
            outcome,
            dg.AssetCheckSeverity.WARN,
        )

    return [
        hourly_energy_not_negative,
        hourly_energy_counter_matches_power,
        hourly_energy_complete,
    ]


def build_raw_readings_checks(
    partitions: dg.DailyPartitionsDefinition,
) -> list[dg.AssetChecksDefinition]:
    """The checks on each day of raw readings (days of the plant's time zone)."""

    @dg.asset_check(
        asset="raw_readings", partitions_def=partitions, name=RAW_READINGS_IN_PHYSICAL_RANGE
    )
    def raw_readings_in_physical_range(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        """Every reading of the day lies inside its metric's min/max in core.metrics."""
        window = context.partition_time_window
        with warehouse.connect() as conn:
            outcome = quality.check_raw_values_in_range(
                conn, window.start, window.end, partitions.timezone
            )
        return _result(context, warehouse, "raw_readings", RAW_READINGS_IN_PHYSICAL_RANGE, outcome)

    @dg.asset_check(
        asset="raw_readings", partitions_def=partitions, name=RAW_READINGS_NOT_IN_FUTURE
    )
    def raw_readings_not_in_future(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        """No reading anywhere is stamped after now (5 minutes of clock skew allowed)."""
        with warehouse.connect() as conn:
            outcome = quality.check_raw_no_future_readings(
                conn, dt.datetime.now(dt.UTC), partitions.timezone
            )
        return _result(context, warehouse, "raw_readings", RAW_READINGS_NOT_IN_FUTURE, outcome)

    @dg.asset_check(
        asset="raw_readings", partitions_def=partitions, name=RAW_READINGS_COUNTERS_MONOTONIC
    )
    def raw_readings_counters_monotonic(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        """Counters only step back at a rollover or a reset recorded in core.counter_resets
        (a warning: hourly_energy already reads an unrecorded drop as a reset)."""
        window = context.partition_time_window
        with warehouse.connect() as conn:
            outcome = quality.check_raw_counters_monotonic(
                conn, window.start, window.end, partitions.timezone
            )
        return _result(
            context,
            warehouse,
            "raw_readings",
            RAW_READINGS_COUNTERS_MONOTONIC,
            outcome,
            dg.AssetCheckSeverity.WARN,
        )

    return [
        raw_readings_in_physical_range,
        raw_readings_not_in_future,
        raw_readings_counters_monotonic,
    ]


# Checks whose failure on a day keeps that day's raw readings from retention.
RETENTION_REQUIRES = {
    "hourly_energy": (HOURLY_ENERGY_NOT_NEGATIVE, HOURLY_ENERGY_COUNTER_MATCHES_POWER),
    "raw_readings": (RAW_READINGS_IN_PHYSICAL_RANGE, RAW_READINGS_NOT_IN_FUTURE),
}
