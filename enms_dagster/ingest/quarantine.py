"""Quarantined input: what was set aside and why, and re-driving it once the cause is fixed
(for example after an unknown machine was registered)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg

from enms_dagster.ingest.landing import land_batch, load_registry_view
from enms_dagster.ingest.payload import PlausibleTime, parse_message

PREVIEW_BYTES = 120


@dataclass(frozen=True)
class RedriveResult:
    examined: int
    landed: int
    still_rejected: int
    readings_inserted: int


def summarize(conn: psycopg.Connection) -> list[tuple]:
    """(source, reason, pending, re-driven, first received, last received) per reason."""
    return conn.execute(
        "SELECT source, reason, count(*) FILTER (WHERE redriven_at IS NULL), "
        "count(*) FILTER (WHERE redriven_at IS NOT NULL), min(received_at), max(received_at) "
        "FROM raw.quarantine GROUP BY source, reason ORDER BY source, reason"
    ).fetchall()


def pending_entries(
    conn: psycopg.Connection, reason: str | None = None, limit: int = 20
) -> list[tuple]:
    """(id, received_at, source, topic, reason, detail, payload preview) of pending entries; the
    preview is printable text whatever the stored bytes (see ``render_preview``)."""
    rows = conn.execute(
        "SELECT quarantine_id, received_at, source, topic, reason, detail, "
        "substring(payload FROM 1 FOR %s), octet_length(payload) "
        "FROM raw.quarantine WHERE redriven_at IS NULL AND (%s::text IS NULL OR reason = %s) "
        "ORDER BY quarantine_id LIMIT %s",
        (PREVIEW_BYTES, reason, reason, limit),
    ).fetchall()
    return [(*row[:6], render_preview(bytes(row[6] or b""), row[7] or 0)) for row in rows]


def render_preview(head: bytes, total: int) -> str:
    """The first bytes of a payload as one printable line: invalid UTF-8 (including a character
    cut at the end) as ``\\xNN``, control characters escaped, and the size when cut."""
    text = head.decode("utf-8", errors="backslashreplace")
    shown = "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )
    return shown if total <= len(head) else f"{shown}… ({total:,} bytes)"


def redrive(
    conn: psycopg.Connection,
    reason: str | None = None,
    now: dt.datetime | None = None,
    chunk: int = 1000,
    window: PlausibleTime | None = None,
) -> RedriveResult:
    """Parse pending MQTT entries again with the current registry and land those that now pass.

    An entry (one per message) is marked re-driven when its whole message now parses cleanly;
    otherwise it stays pending with one more attempt counted. Readings that had landed before
    (the good samples of a partly rejected message) are not duplicated. ``poison`` entries (a
    message that crashed the ingestor twice) are only re-driven when asked for by name, once
    their cause is fixed: they would stop this command just as they stopped the ingestor.
    """
    now = now or dt.datetime.now(dt.UTC)
    registry = load_registry_view(conn)
    examined = landed = still = inserted = 0
    after = 0
    while True:
        rows = conn.execute(
            "SELECT quarantine_id, topic, payload FROM raw.quarantine "
            "WHERE redriven_at IS NULL AND source = 'mqtt' AND quarantine_id > %s "
            "AND (reason = %s OR (%s::text IS NULL AND reason <> 'poison')) "
            "ORDER BY quarantine_id LIMIT %s",
            (after, reason, reason, chunk),
        ).fetchall()
        if not rows:
            break
        after = rows[-1][0]
        examined += len(rows)
        clean_ids, dirty_ids, readings = [], [], []
        parsed_payloads: dict[tuple[str, bytes], bool] = {}
        for quarantine_id, topic, payload in rows:
            key = (topic, bytes(payload))
            if key not in parsed_payloads:
                parsed = parse_message(topic, bytes(payload), registry, now, window)
                parsed_payloads[key] = not parsed.rejections
                if not parsed.rejections:
                    readings.extend(parsed.readings)
            (clean_ids if parsed_payloads[key] else dirty_ids).append(quarantine_id)
        with conn.transaction():
            if clean_ids:
                result = land_batch(conn, readings, (), source="redrive", messages=len(clean_ids))
                inserted += result.inserted
                conn.execute(
                    "UPDATE raw.quarantine SET redriven_at = %s, redrive_batch_id = %s, "
                    "redrive_attempts = redrive_attempts + 1 WHERE quarantine_id = ANY(%s)",
                    (now, result.batch_id, clean_ids),
                )
            if dirty_ids:
                conn.execute(
                    "UPDATE raw.quarantine SET redrive_attempts = redrive_attempts + 1 "
                    "WHERE quarantine_id = ANY(%s)",
                    (dirty_ids,),
                )
        landed += len(clean_ids)
        still += len(dirty_ids)
    return RedriveResult(examined, landed, still, inserted)
