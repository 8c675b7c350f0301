"""Hourly transformations that run inside PostgreSQL (SQL in ``hourly/sql``), each a
delete-then-insert over a time window in one transaction, so re-running a window is idempotent."""

from __future__ import annotations

import datetime as dt
import itertools

import psycopg
from psycopg import sql

from enms_dagster.db.sql_files import read_sql

# Power samples further apart than this are not bridged by power integration (a gap, not a step).
MAX_POWER_GAP_S = 900
# Sorts and hashes of one day stay in memory (the default 4 MB spills them to disk); JIT is off
# because compiling a plan over dozens of daily partitions costs seconds and saves nothing here.
TRANSFORM_SETTINGS = {"work_mem": "64MB", "jit": "off", "enable_bitmapscan": "off"}
# Hourly energy reads its window in this many slices, which PostgreSQL shares out between the
# leader and its parallel workers (two by default): six keep three processes evenly busy.
HOURLY_ENERGY_SLICES = 6
# Degree-hour bases stored with the drivers; baselines derive any other base from the mean.
HEATING_BASE_C = 18.0
COOLING_BASE_C = 18.0


def rebuild_hourly_energy(
    conn: psycopg.Connection,
    start: dt.datetime,
    end: dt.datetime,
    max_gap_s: float = MAX_POWER_GAP_S,
) -> int:
    """Recompute ``core.hourly_energy`` for the hours in [start, end) from the readings in
    (start, end] (and the last reading before start); return rows written. Conventions are in
    ``enms_dagster/hourly/sql/hourly_energy.sql``.

    The readings are grouped slice by slice in parallel workers (``CREATE TABLE AS`` may run in
    parallel, ``INSERT ... SELECT`` may not), then the groups are turned into hours."""
    params = {"start": start, "end": end, "max_gap_s": float(max_gap_s)}
    slices = sql.SQL(" UNION ALL ").join(
        sql.SQL(
            "SELECT * FROM core.group_hourly_energy_readings({}, {}, %(start)s, %(max_gap_s)s)"
        ).format(sql.Literal(lo), sql.Literal(hi))
        for lo, hi in _hour_slices(start, end, HOURLY_ENERGY_SLICES)
    )
    with conn.transaction():
        analyze_stale_readings(conn)
        apply_transform_settings(conn)
        conn.execute(
            "DELETE FROM core.hourly_energy WHERE hour_start >= %s AND hour_start < %s",
            (start, end),
        )
        conn.execute(
            sql.SQL("CREATE TEMP TABLE hourly_energy_groups ON COMMIT DROP AS {}").format(slices),
            params,
        )
        rows = conn.execute(read_sql("enms_dagster.hourly", "hourly_energy"), params).rowcount
        conn.execute("DROP TABLE hourly_energy_groups")
        _record_partition_run(conn, "hourly_energy", start, end)
        return rows


def _hour_slices(
    start: dt.datetime, end: dt.datetime, count: int
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Cut (start, end] at whole UTC hours into about ``count`` slices of similar length."""
    cuts = {
        (start + (end - start) * i / count)
        .astimezone(dt.UTC)
        .replace(minute=0, second=0, microsecond=0)
        for i in range(1, count)
    }
    bounds = [start, *sorted(cut for cut in cuts if start < cut < end), end]
    return list(itertools.pairwise(bounds))


def analyze_stale_readings(conn: psycopg.Connection) -> list[str]:
    """ANALYZE the raw.readings partitions (or chunks) never analyzed or much changed since.

    A day landed a minute ago has no statistics until autovacuum gets to it, and the planner
    then guesses a handful of rows and picks nested loops: the hourly transform once took
    400 s instead of 1.5 s that way. Analyzing one day's partition takes a fraction of a second.
    """
    stale = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_stat_user_tables s ON s.relid = c.oid "
        "WHERE i.inhparent = 'raw.readings'::regclass "
        "AND ((s.last_analyze IS NULL AND s.last_autoanalyze IS NULL) "
        "     OR s.n_mod_since_analyze > 0.2 * greatest(s.n_live_tup, 1000))"
    ).fetchall()
    for schema, table in stale:
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, table)))
    return [f"{schema}.{table}" for schema, table in stale]


def _record_partition_run(
    conn: psycopg.Connection, asset: str, start: dt.datetime, end: dt.datetime
) -> None:
    """Note the local days just rebuilt and forget their earlier check results: retention drops
    raw data only for days computed and then checked."""
    conn.execute(
        "INSERT INTO core.partition_runs (asset, local_date, rows) "
        "SELECT %(asset)s, local_date, count(*) FROM core.hourly_energy "
        "WHERE hour_start >= %(start)s AND hour_start < %(end)s GROUP BY local_date "
        "ON CONFLICT (asset, local_date) DO UPDATE SET "
        "materialized_at = now(), rows = EXCLUDED.rows",
        {"asset": asset, "start": start, "end": end},
    )
    conn.execute(
        "DELETE FROM core.check_results WHERE local_date IN ("
        "SELECT DISTINCT local_date FROM core.hourly_energy "
        "WHERE hour_start >= %(start)s AND hour_start < %(end)s)",
        {"start": start, "end": end},
    )


def apply_transform_settings(conn: psycopg.Connection) -> None:
    """Session settings for the current transaction only (SET LOCAL)."""
    for name, value in TRANSFORM_SETTINGS.items():
        conn.execute("SELECT set_config(%s, %s, true)", (name, value))


def rebuild_hourly_drivers(
    conn: psycopg.Connection,
    start: dt.datetime,
    end: dt.datetime,
    heating_base_c: float = HEATING_BASE_C,
    cooling_base_c: float = COOLING_BASE_C,
) -> int:
    """Recompute ``core.hourly_drivers`` (weather, production, calendar per site and hour) for
    the hours in [start, end); reads ``core.hourly_energy`` for the same hours."""
    params = {
        "start": start,
        "end": end,
        "heating_base_c": float(heating_base_c),
        "cooling_base_c": float(cooling_base_c),
    }
    with conn.transaction():
        apply_transform_settings(conn)
        conn.execute(
            "DELETE FROM core.hourly_drivers WHERE hour_start >= %s AND hour_start < %s",
            (start, end),
        )
        return conn.execute(read_sql("enms_dagster.hourly", "hourly_drivers"), params).rowcount
