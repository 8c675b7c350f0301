"""Reading the ingest batch log: which days new readings touched since a cursor."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import psycopg


@dataclass
class DayActivity:
    """The batches that landed readings in one local day. Counts are those of the whole batches
    (a batch spanning midnight counts in both days); the time range is clipped to the day."""

    day: dt.date
    batches: int = 0
    readings_inserted: int = 0
    readings_received: int = 0
    quarantined: int = 0
    machines: set[str] = field(default_factory=set)
    min_ts: dt.datetime | None = None
    max_ts: dt.datetime | None = None
    last_committed_at: dt.datetime | None = None


def days_between(min_ts: dt.datetime, max_ts: dt.datetime, zone: ZoneInfo) -> list[dt.date]:
    """Local days from the day of ``min_ts`` to the day of ``max_ts``, both included."""
    first, last = min_ts.astimezone(zone).date(), max_ts.astimezone(zone).date()
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def read_new_batches(
    conn: psycopg.Connection, after_batch_id: int, zone: ZoneInfo, limit: int = 10_000
) -> tuple[int, list[DayActivity]]:
    """Activity per local day of the committed batches after the cursor; the new cursor.

    Only batches older than every still-open transaction are read, so the cursor never passes a
    batch that has not committed yet.
    """
    rows = conn.execute(
        "SELECT batch_id, readings_inserted, readings_received, quarantined, machines, "
        "min_ts, max_ts, committed_at FROM raw.ingest_batches "
        "WHERE batch_id > %s AND xact_id < pg_snapshot_xmin(pg_current_snapshot()) "
        "ORDER BY batch_id LIMIT %s",
        (after_batch_id, limit),
    ).fetchall()
    cursor = after_batch_id
    days: dict[dt.date, DayActivity] = {}
    for batch_id, inserted, received, quarantined, machines, min_ts, max_ts, committed in rows:
        cursor = max(cursor, batch_id)
        if min_ts is None:
            continue  # a quarantine-only batch landed nothing in any day
        for day in days_between(min_ts, max_ts, zone):
            a = days.setdefault(day, DayActivity(day))
            day_start = dt.datetime.combine(day, dt.time(), zone)
            day_end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone)
            lo, hi = max(min_ts, day_start), min(max_ts, day_end)
            a.batches += 1
            a.readings_inserted += inserted
            a.readings_received += received
            a.quarantined += quarantined
            a.machines.update(machines)
            a.min_ts = lo if a.min_ts is None else min(a.min_ts, lo)
            a.max_ts = hi if a.max_ts is None else max(a.max_ts, hi)
            a.last_committed_at = (
                committed if a.last_committed_at is None else max(a.last_committed_at, committed)
            )
    return cursor, sorted(days.values(), key=lambda a: a.day)
