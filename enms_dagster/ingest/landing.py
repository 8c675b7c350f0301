"""The one landing path: every reading, from MQTT or from an import, enters the warehouse here.

A batch is landed in one transaction: readings are copied into a staging table, de-duplicated,
and inserted with ``ON CONFLICT DO NOTHING`` (so redelivery and re-import add nothing);
rejections go to quarantine with their raw bytes; the batch is recorded in the batch log.
A batch only creates the daily partitions of days it holds readings for, and a caller that
passes a ``window`` has readings outside it refused before anything is written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import psycopg

from enms_dagster.ingest.payload import (
    ParsedMessage,
    PlausibleTime,
    Reading,
    RegistryView,
    Rejection,
    safe_text,
)

_COPY_READINGS = (
    "COPY raw.readings (machine_id, metric, ts, value, batch_id) FROM STDIN (FORMAT BINARY)"
)
_COPY_STAGING = "COPY landing_staging (machine_id, metric, ts, value) FROM STDIN (FORMAT BINARY)"


@dataclass(frozen=True)
class QuarantinedInput:
    topic: str | None
    payload: bytes | None
    rejection: Rejection


class ImplausibleTimeError(ValueError):
    """A batch holds readings outside the plausible time window its caller stated."""


def quarantine_message(
    topic: str, payload: bytes, parsed: ParsedMessage
) -> QuarantinedInput | None:
    """The single quarantine record of a message with rejections: its bytes are stored once,
    however many of its samples were rejected."""
    rejection = parsed.quarantine_rejection()
    return None if rejection is None else QuarantinedInput(topic, payload, rejection)


@dataclass(frozen=True)
class BatchResult:
    batch_id: int
    messages: int
    received: int
    inserted: int
    quarantined: int
    min_ts: dt.datetime | None
    max_ts: dt.datetime | None
    machines: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return self.received - self.inserted


def load_registry_view(conn: psycopg.Connection) -> RegistryView:
    rows = conn.execute(
        "SELECT m.machine_id, m.site_id, s.commissioned_on, s.timezone "
        "FROM core.machines m JOIN core.sites s USING (site_id)"
    ).fetchall()
    metrics = frozenset(
        m for (m,) in conn.execute("SELECT metric FROM core.metrics").fetchall()
    ) | {"state"}
    return RegistryView(
        machine_sites={m: s for m, s, _, _ in rows},
        commissioned={m: dt.datetime.combine(d, dt.time(), ZoneInfo(tz)) for m, _, d, tz in rows},
        metrics=metrics,
    )


def land_batch(
    conn: psycopg.Connection,
    readings: Sequence[Reading],
    quarantined: Sequence[QuarantinedInput] = (),
    *,
    source: str,
    messages: int,
    window: PlausibleTime | None = None,
    now: dt.datetime | None = None,
) -> BatchResult:
    """Land readings and quarantine rejections atomically; commit and return what happened.

    With a ``window`` (relative to ``now``), a reading outside it raises
    ``ImplausibleTimeError`` and nothing is landed: callers quarantine such readings first.
    """
    min_ts = min((r[2] for r in readings), default=None)
    max_ts = max((r[2] for r in readings), default=None)
    if window is not None and readings:
        earliest, latest = window.bounds(now or dt.datetime.now(dt.UTC))
        if min_ts < earliest or max_ts > latest:
            raise ImplausibleTimeError(
                f"readings from {min_ts.isoformat()} to {max_ts.isoformat()} leave the window "
                f"{earliest.isoformat()} .. {latest.isoformat()}"
            )
    with conn.transaction():
        machines = sorted({r[0] for r in readings})
        (batch_id,) = conn.execute(
            "INSERT INTO raw.ingest_batches (source, messages, readings_received, "
            "readings_inserted, quarantined, min_ts, max_ts, machines) "
            "VALUES (%s, %s, %s, 0, %s, %s, %s, %s) RETURNING batch_id",
            (source, messages, len(readings), len(quarantined), min_ts, max_ts, machines),
        ).fetchone()
        inserted = 0
        if readings:
            for first, last in _partition_runs(readings, min_ts, max_ts):
                conn.execute("SELECT raw.ensure_reading_partitions(%s, %s)", (first, last))
            inserted = _insert_readings(conn, readings, batch_id)
        stored = 0
        if quarantined:
            # a rejection another ingestor (or an earlier import) already stored is not stored
            # again, just as a reading already landed is not
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO raw.quarantine "
                    "(source, topic, payload, reason, detail, batch_id, fingerprint) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (fingerprint) DO NOTHING",
                    [
                        (
                            source,
                            None if q.topic is None else safe_text(q.topic, 4096),
                            q.payload,
                            safe_text(q.rejection.reason, 64),
                            safe_text(q.rejection.detail, 4096),
                            batch_id,
                            quarantine_fingerprint(source, q),
                        )
                        for q in quarantined
                    ],
                )
                stored = cur.rowcount
        conn.execute(
            "UPDATE raw.ingest_batches SET readings_inserted = %s, quarantined = %s "
            "WHERE batch_id = %s",
            (inserted, stored, batch_id),
        )
    return BatchResult(
        batch_id, messages, len(readings), inserted, stored, min_ts, max_ts, machines
    )


def _partition_runs(
    readings: Sequence[Reading], min_ts: dt.datetime, max_ts: dt.datetime
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Runs of consecutive UTC days that hold readings: the partitions to ensure. One stray
    timestamp far from the others then costs one partition, not every day in between."""
    if max_ts - min_ts <= dt.timedelta(days=2):
        return [(min_ts, max_ts)]
    days = sorted({int(r[2].timestamp() // 86400) for r in readings})
    runs: list[tuple[dt.datetime, dt.datetime]] = []
    start = prev = days[0]
    for day in days[1:] + [None]:
        if day is not None and day == prev + 1:
            prev = day
            continue
        runs.append((_utc_day(start), _utc_day(prev)))
        if day is not None:
            start = prev = day
    return runs


def _utc_day(day: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(day * 86400, dt.UTC)


def quarantine_fingerprint(source: str, q: QuarantinedInput) -> bytes:
    """What makes two quarantine rows the same rejection: the same source, topic, reason and
    bytes (a message redelivered, or landed by each of two redundant ingestors), and for other
    sources than MQTT the same detail too (an import's detail names the record's line). An MQTT
    message's detail is left out: it may quote the clock of the ingestor that judged it."""
    digest = hashlib.sha256()
    topic = None if q.topic is None else q.topic.encode("utf-8", "surrogatepass")
    detail = None if source == "mqtt" else q.rejection.detail.encode("utf-8", "surrogatepass")
    for part in (source.encode(), topic, q.rejection.reason.encode(), detail, q.payload):
        # length-prefixed, with None apart from empty, so no two inputs run together
        digest.update(b"\xff" * 8 if part is None else len(part).to_bytes(8, "big"))
        digest.update(part or b"")
    return digest.digest()


def _insert_readings(conn: psycopg.Connection, readings: Sequence[Reading], batch_id: int) -> int:
    """Insert new readings, skipping those already landed; return how many were new.

    Most batches hold no reading seen before, so the rows are first copied straight into
    raw.readings (inside a savepoint). Only when that meets a duplicate — a redelivery, a
    re-import — does the batch go the slower way: staging, then ``ON CONFLICT DO NOTHING``.
    """
    try:
        with conn.transaction(), conn.cursor() as cur, cur.copy(_COPY_READINGS) as copy:
            copy.set_types(["text", "text", "timestamptz", "float8", "int8"])
            for machine_id, metric, ts, value in readings:
                copy.write_row((machine_id, metric, ts, value, batch_id))
        return len(readings)
    except psycopg.errors.UniqueViolation:
        pass
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS landing_staging ("
        " machine_id text, metric text, ts timestamptz, value double precision"
        ") ON COMMIT DELETE ROWS"
    )
    with conn.cursor() as cur:
        with cur.copy(_COPY_STAGING) as copy:
            copy.set_types(["text", "text", "timestamptz", "float8"])
            for row in readings:
                copy.write_row(row)
        # DO NOTHING also absorbs duplicates inside the batch: the first one wins
        cur.execute(
            "INSERT INTO raw.readings (machine_id, metric, ts, value, batch_id) "
            "SELECT machine_id, metric, ts, value, %s FROM landing_staging "
            "ON CONFLICT DO NOTHING",
            (batch_id,),
        )
        return cur.rowcount
