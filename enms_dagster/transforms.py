"""Warehouse transformations that run inside PostgreSQL (SQL in ``sql/transforms``), each a
delete-then-insert over a time window in one transaction, so re-running a window is idempotent."""

from __future__ import annotations

import datetime as dt
from functools import cache

import psycopg

from enms_dagster.settings import REPO_DIR

TRANSFORMS_DIR = REPO_DIR / "sql" / "transforms"


@cache
def _sql(name: str) -> str:
    return (TRANSFORMS_DIR / f"{name}.sql").read_text()


def rebuild_hourly_energy(conn: psycopg.Connection, start: dt.datetime, end: dt.datetime) -> int:
    """Recompute ``core.hourly_energy`` for the hours in [start, end); return rows written."""
    with conn.transaction():
        conn.execute(
            "DELETE FROM core.hourly_energy WHERE hour_start >= %s AND hour_start < %s",
            (start, end),
        )
        return conn.execute(_sql("hourly_energy"), {"start": start, "end": end}).rowcount


def rebuild_kpi_daily(conn: psycopg.Connection, first: dt.date, last: dt.date) -> int:
    """Recompute ``marts.kpi_daily`` for the local days first..last; return rows written."""
    with conn.transaction():
        conn.execute(
            "DELETE FROM marts.kpi_daily WHERE local_date BETWEEN %s AND %s", (first, last)
        )
        return conn.execute(_sql("kpi_daily"), {"first_date": first, "last_date": last}).rowcount


def negative_energy_hours(conn: psycopg.Connection) -> list[tuple[str, dt.datetime, float]]:
    """Machine-hours with negative kWh: there must be none."""
    return conn.execute(
        "SELECT machine_id, hour_start, energy_kwh FROM core.hourly_energy "
        "WHERE energy_kwh < 0 ORDER BY machine_id, hour_start"
    ).fetchall()
