"""Raw-data retention: drop whole UTC-day partitions of raw.readings once they are old enough
and every local day they feed was materialized into hourly energy and passed its checks.

Under TimescaleDB the same days are dropped with ``drop_chunks``. Every drop is recorded in
``raw.retention_log``. Plain Python: the Dagster asset in ``assets/retention.py`` calls it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

_PARTITION = re.compile(r"^readings_(\d{8})$")


@dataclass(frozen=True)
class RawDay:
    utc_day: dt.date
    partition: str
    droppable: bool
    reason: str


def _partitions(conn: psycopg.Connection) -> list[tuple[dt.date, str]]:
    names = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'raw.readings'::regclass"
    ).fetchall()
    days = []
    for (name,) in names:
        match = _PARTITION.match(name)
        if match:
            days.append((dt.datetime.strptime(match[1], "%Y%m%d").date(), name))
    return sorted(days)


def _is_hypertable(conn: psycopg.Connection) -> bool:
    return bool(
        conn.execute(
            "SELECT to_regclass('timescaledb_information.hypertables') IS NOT NULL"
        ).fetchone()[0]
    )


def _hypertable_days(conn: psycopg.Connection, before: dt.date) -> list[tuple[dt.date, str]]:
    rows = conn.execute(
        "SELECT range_start, chunk_schema || '.' || chunk_name "
        "FROM timescaledb_information.chunks "
        "WHERE hypertable_schema = 'raw' AND hypertable_name = 'readings' AND range_end <= %s",
        (dt.datetime.combine(before, dt.time(), dt.UTC),),
    ).fetchall()
    return sorted((start.astimezone(dt.UTC).date(), name) for start, name in rows)


def plan_raw_retention(
    conn: psycopg.Connection,
    max_age_days: int,
    today: dt.date,
    required_checks: Mapping[str, Sequence[str]],
) -> list[RawDay]:
    """Every raw UTC day older than ``max_age_days``, and whether it may be dropped: each local
    day (in each site's zone) whose hours it holds readings for must be materialized in
    hourly_energy and have passed every required check after that materialization."""
    cutoff = today - dt.timedelta(days=max_age_days)
    if _is_hypertable(conn):
        days = _hypertable_days(conn, cutoff)
    else:
        days = [(d, name) for d, name in _partitions(conn) if d < cutoff]
    required = [(a, c) for a, checks in required_checks.items() for c in checks]
    plan = []
    for day, name in days:
        start = dt.datetime.combine(day, dt.time(), dt.UTC)
        missing = conn.execute(
            """
            WITH local_days AS (
                SELECT DISTINCT d::date AS local_date
                FROM core.sites s,
                     generate_series(((%(start)s::timestamptz - interval '1 microsecond')
                                          AT TIME ZONE s.timezone)::date,
                                     ((%(end)s::timestamptz - interval '1 microsecond')
                                          AT TIME ZONE s.timezone)::date,
                                     interval '1 day') AS d
            ),
            required AS (
                SELECT * FROM unnest(%(assets)s::text[], %(checks)s::text[]) AS r(asset, check_name)
            )
            SELECT l.local_date, 'hourly_energy not materialized'
            FROM local_days l
            LEFT JOIN core.partition_runs p
                ON p.asset = 'hourly_energy' AND p.local_date = l.local_date
            WHERE p.local_date IS NULL
            UNION ALL
            SELECT l.local_date, r.check_name || ' not passed'
            FROM local_days l CROSS JOIN required r
            LEFT JOIN core.check_results c
                ON c.asset = r.asset AND c.check_name = r.check_name
               AND c.local_date = l.local_date
            WHERE c.passed IS NOT TRUE
            ORDER BY 1, 2
            """,
            {
                "start": start,
                "end": start + dt.timedelta(days=1),
                "assets": [a for a, _ in required],
                "checks": [c for _, c in required],
            },
        ).fetchall()
        reason = "; ".join(f"{d}: {why}" for d, why in missing[:5])
        plan.append(RawDay(day, name, not missing, reason or "materialized and checked"))
    return plan


def drop_raw_days(conn: psycopg.Connection, days: Sequence[RawDay], max_age_days: int) -> int:
    """Drop the droppable days and log each in raw.retention_log; return readings dropped."""
    dropped = 0
    hypertable = _is_hypertable(conn)
    for day in days:
        if not day.droppable:
            continue
        start = dt.datetime.combine(day.utc_day, dt.time(), dt.UTC)
        end = start + dt.timedelta(days=1)
        with conn.transaction():
            (rows,) = conn.execute(
                "SELECT count(*) FROM raw.readings WHERE ts >= %s AND ts < %s", (start, end)
            ).fetchone()
            if hypertable:
                conn.execute(
                    "SELECT drop_chunks('raw.readings', older_than => %s, newer_than => %s)",
                    (end, start),
                )
            else:
                conn.execute(sql.SQL("DROP TABLE raw.{}").format(sql.Identifier(day.partition)))
            conn.execute(
                "INSERT INTO raw.retention_log (partition_name, utc_day, rows, max_age_days) "
                "VALUES (%s, %s, %s, %s)",
                (day.partition, day.utc_day, rows, max_age_days),
            )
        dropped += rows
    return dropped
