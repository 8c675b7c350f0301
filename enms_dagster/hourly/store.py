"""The hourly frame from the warehouse (``hourly/sql/hourly_frame.sql``)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import psycopg

from enms_dagster.db.sql_files import read_sql
from enms_dagster.hourly.frame import typed_hourly_frame


def read_hourly_frame(
    conn: psycopg.Connection, start: dt.datetime, end: dt.datetime
) -> pd.DataFrame:
    """Hourly energy of every machine in [start, end) with its type, rated power, local hour
    and weekday, and its site's drivers (``hourly.frame.HOURLY_COLUMNS``)."""
    with conn.cursor() as cur:
        cur.execute(read_sql("enms_dagster.hourly", "hourly_frame"), (start, end))
        columns = [c.name for c in cur.description]
        frame = pd.DataFrame(cur.fetchall(), columns=columns)
    return typed_hourly_frame(frame)
