"""Mart transformations that run inside PostgreSQL (SQL in ``marts/sql``), each a
delete-then-insert over local days or hours in one transaction, so re-running a window is
idempotent."""

from __future__ import annotations

import datetime as dt

import psycopg

from enms_dagster.db.sql_files import read_sql
from enms_dagster.hourly.transforms import apply_transform_settings


def rebuild_kpi_daily(conn: psycopg.Connection, first: dt.date, last: dt.date) -> int:
    """Recompute ``marts.kpi_daily`` for the local days first..last; return rows written."""
    with conn.transaction():
        conn.execute(
            "DELETE FROM marts.kpi_daily WHERE local_date BETWEEN %s AND %s", (first, last)
        )
        return conn.execute(
            read_sql("enms_dagster.marts", "kpi_daily"), {"first_date": first, "last_date": last}
        ).rowcount


def rebuild_fct_energy_hourly(
    conn: psycopg.Connection, start: dt.datetime, end: dt.datetime
) -> int:
    """Recompute ``marts.fct_energy_hourly`` (hourly energy with its time-of-use price, cost and
    CO2e) for the hours in [start, end) from ``core.hourly_energy`` and ``core.hourly_drivers``;
    return rows written. Tariff rules are in ``enms_dagster/marts/sql/fct_energy_hourly.sql``."""
    with conn.transaction():
        apply_transform_settings(conn)
        conn.execute(
            "DELETE FROM marts.fct_energy_hourly WHERE hour_start >= %s AND hour_start < %s",
            (start, end),
        )
        return conn.execute(
            read_sql("enms_dagster.marts", "fct_energy_hourly"), {"start": start, "end": end}
        ).rowcount


def rebuild_fct_kpi_daily(conn: psycopg.Connection, first: dt.date, last: dt.date) -> int:
    """Recompute ``marts.fct_kpi_daily`` (daily KPIs per machine, line and site) for the local
    days first..last from ``marts.fct_energy_hourly``; return rows written. The baseline columns
    (enpi, expected_kwh, savings) come from ``marts.energy_performance_daily`` where the
    baseline assets computed it (they update these rows again when they run)."""
    with conn.transaction():
        apply_transform_settings(conn)
        conn.execute(
            "DELETE FROM marts.fct_kpi_daily WHERE local_date BETWEEN %s AND %s", (first, last)
        )
        return conn.execute(
            read_sql("enms_dagster.marts", "fct_kpi_daily"),
            {"first_date": first, "last_date": last},
        ).rowcount
