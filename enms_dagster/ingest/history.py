"""How far back the warehouse's data reaches: the first local day that holds readings or hourly
energy (raw days past retention keep their hourly energy)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

# The earliest daily partition of raw.readings (tables are named readings_YYYYMMDD, UTC days);
# the catalog answers without reading any data.
_EARLIEST_PARTITION = """
SELECT c.relname FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_class p ON p.oid = i.inhparent
JOIN pg_namespace n ON n.oid = p.relnamespace
WHERE n.nspname = 'raw' AND p.relname = 'readings' AND c.relname ~ '^readings_[0-9]{8}$'
ORDER BY c.relname LIMIT 1
"""


def first_landed_day(conn: psycopg.Connection, zone: ZoneInfo) -> dt.date | None:
    """The first local day (in ``zone``) with landed readings or hourly energy; ``None`` for an
    empty warehouse. Cheap at any size: the earliest raw partition is found in the catalog and
    only that one day is read; hourly energy answers from its ``local_date`` index."""
    days = []
    hourly = conn.execute("SELECT min(local_date) FROM core.hourly_energy").fetchone()[0]
    if hourly is not None:
        days.append(hourly)
    partition = conn.execute(_EARLIEST_PARTITION).fetchone()
    first_ts = None
    if partition:  # daily range partitions
        query = sql.SQL("SELECT min(ts) FROM raw.{}").format(sql.Identifier(partition[0]))
        first_ts = conn.execute(query).fetchone()[0]
    if first_ts is None:  # a TimescaleDB hypertable (indexed on ts), or an empty first partition
        first_ts = conn.execute("SELECT min(ts) FROM raw.readings").fetchone()[0]
    if first_ts is not None:
        days.append(first_ts.astimezone(zone).date())
    return min(days, default=None)
