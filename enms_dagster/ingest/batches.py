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


GAP_PATIENCE_S = 600.0
FIRST_READ_LOOKBACK = 100


@dataclass
class BatchCursor:
    """How far the batch log has been read: the highest batch id seen, and the lower ids that
    were not visible yet. Ids come from a sequence, so a missing id is a batch still committing
    (it will appear) or one rolled back (it never will): gaps are re-read until they appear or
    are ``GAP_PATIENCE_S`` old. A batch that commits late is therefore never skipped."""

    last_id: int = 0
    gaps: dict[int, float] = field(default_factory=dict)  # batch id -> first noticed (epoch s)


def read_new_batches(
    conn: psycopg.Connection,
    cursor: BatchCursor,
    zone: ZoneInfo,
    now: dt.datetime | None = None,
    limit: int = 10_000,
) -> tuple[BatchCursor, list[DayActivity]]:
    """Activity per local day of the batches committed since the cursor; the new cursor."""
    now_s = (now or dt.datetime.now(dt.UTC)).timestamp()
    rows = conn.execute(
        "SELECT batch_id, readings_inserted, readings_received, quarantined, machines, "
        "min_ts, max_ts, committed_at FROM raw.ingest_batches "
        "WHERE batch_id > %s OR batch_id = ANY(%s) ORDER BY batch_id LIMIT %s",
        (cursor.last_id, list(cursor.gaps), limit),
    ).fetchall()
    seen = {r[0] for r in rows}
    last_id = max([cursor.last_id, *seen])
    gaps = {g: t for g, t in cursor.gaps.items() if g not in seen and now_s - t < GAP_PATIENCE_S}
    new_ids = sorted(i for i in seen if i > cursor.last_id)
    if new_ids:
        # on the very first read, only the ids just below the first one seen may still be
        # committing; older ones are history (or rolled back)
        first = cursor.last_id + 1 if cursor.last_id else max(1, new_ids[0] - FIRST_READ_LOOKBACK)
        for missing in set(range(first, new_ids[-1])) - seen:
            gaps[missing] = now_s
    cursor = BatchCursor(last_id, gaps)
    days: dict[dt.date, DayActivity] = {}
    for _, inserted, received, quarantined, machines, min_ts, max_ts, committed in rows:
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


# A member whose last heartbeat is older than this is history (a retired client id), not a
# member of the fleet that went down.
MEMBER_FORGOTTEN_AFTER_S = 24 * 3600.0


@dataclass(frozen=True)
class IngestorHealth:
    """Each ingestor's last heartbeat, state and counters. The plant is ingesting while one
    member beat recently; a member that crashed or fell silent within the last day is "down"
    (with redundant ingestors the others carry on, but the redundancy is gone)."""

    # client_id, heartbeat age s, state, queue depth, committed, quarantined, errors, last error
    rows: list[tuple]
    alive: bool
    down: list[str]  # members that crashed or stopped beating in the last day
    quarantine_rate: float | None  # quarantined per committed message, all ingestors

    @property
    def summary(self) -> str:
        if not self.rows:
            return "no ingestor has ever reported"
        parts = []
        for client, age, state, queue, *_, error in self.rows:
            if client in self.down:
                why = f": {error}" if state == "crashed" and error else ""
                parts.append(f"{client} DOWN, {state}, last beat {age:.0f} s ago{why}")
            else:
                parts.append(f"{client} {state}, beat {age:.0f} s ago (queue {queue})")
        return "; ".join(parts)


def read_ingestor_health(conn: psycopg.Connection, stale_after_s: float = 60.0) -> IngestorHealth:
    rows = conn.execute(
        "SELECT client_id, extract(epoch FROM now() - last_heartbeat)::float8, state, "
        "queue_depth, messages_committed, quarantined, landing_errors, "
        "regexp_replace(left(coalesce(last_error, ''), 200), '[|\\r\\n]+', ' ', 'g') "
        "FROM raw.ingestor_status ORDER BY client_id"
    ).fetchall()
    committed = sum(r[4] for r in rows)
    quarantined = sum(r[5] for r in rows)
    down = [
        client
        for client, age, state, *_ in rows
        if age <= MEMBER_FORGOTTEN_AFTER_S
        and (state == "crashed" or (state == "running" and age > stale_after_s))
    ]
    return IngestorHealth(
        rows=rows,
        alive=any(age <= stale_after_s and state == "running" for _, age, state, *_ in rows),
        down=down,
        quarantine_rate=quarantined / committed if committed else None,
    )
