"""Poison-message detection for the crash-only ingestor, kept in PostgreSQL so it survives the
process restarts that a crash causes.

Before a batch is parsed, one row naming its messages (a fingerprint each) is committed to
``raw.ingest_attempts``; the transaction that lands the batch deletes it. A row that outlives its
ingestor therefore marks a landing that died. At start an ingestor folds its own leftover rows
into ``raw.ingest_suspects`` (fingerprint -> landings it died in). A suspect is landed alone on
its next delivery, so that the innocent neighbours of a poison message land and are cleared; a
suspect that was in ``POISON_AFTER`` dead landings is quarantined as ``poison`` unparsed.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

import psycopg

POISON_AFTER = 2  # dead landings after which a message is quarantined instead of landed
FINGERPRINT_BYTES = 32


@dataclass(frozen=True)
class Suspect:
    attempts: int
    last_error: str | None
    poisoned: bool = False

    @property
    def is_poison(self) -> bool:
        return self.poisoned or self.attempts >= POISON_AFTER

    @property
    def poison_detail(self) -> str:
        cause = self.last_error or "unknown (the process died without saying)"
        return f"the ingestor died {self.attempts} times landing this message; last error: {cause}"


def message_fingerprint(topic: str, payload: bytes) -> bytes:
    """sha256 of topic and payload (an MQTT topic never holds NUL, so the pair is unambiguous):
    a redelivered message, or a copy of it, has the same fingerprint."""
    return hashlib.sha256(topic.encode() + b"\0" + payload).digest()


def begin_attempt(
    conn: psycopg.Connection, client_id: str, attempt_id: uuid.UUID, fingerprints: list[bytes]
) -> None:
    """Commit the record of a landing about to start (see ``settle_attempt``). Idempotent, so a
    landing retried after a lost connection writes it again without knowing whether it landed.

    One statement on an autocommit connection, committed asynchronously (``set_config`` local
    to its own transaction): the row must outlive this process, not the database server, so it
    need not wait for the disk; the landing that follows commits synchronously. The fingerprints
    travel as one concatenated bytea: a bytea[] of 2,000 costs ten times more to send.
    """
    conn.execute(
        "INSERT INTO raw.ingest_attempts (attempt_id, client_id, fingerprints) "
        "SELECT %s, %s, %s FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async "
        "ON CONFLICT (attempt_id) DO NOTHING",
        (attempt_id, client_id, b"".join(fingerprints)),
    )


def settle_attempt(conn: psycopg.Connection, attempt_id: uuid.UUID) -> None:
    """Inside the landing transaction: the landing committed, so it did not die."""
    conn.execute("DELETE FROM raw.ingest_attempts WHERE attempt_id = %s", (attempt_id,))


def note_attempt_error(conn: psycopg.Connection, attempt_id: uuid.UUID, error: str) -> None:
    conn.execute(
        "UPDATE raw.ingest_attempts SET error = %s WHERE attempt_id = %s", (error, attempt_id)
    )


def clear_suspect(conn: psycopg.Connection, fingerprint: bytes) -> None:
    """Inside the transaction that landed a suspect on its own: it was innocent."""
    conn.execute("DELETE FROM raw.ingest_suspects WHERE fingerprint = %s", (fingerprint,))


def mark_poisoned(conn: psycopg.Connection, fingerprint: bytes) -> None:
    """Inside the transaction that quarantined a suspect: kept, so copies go the same way."""
    conn.execute(
        "UPDATE raw.ingest_suspects SET poisoned_at = coalesce(poisoned_at, now()) "
        "WHERE fingerprint = %s",
        (fingerprint,),
    )


def fold_attempts(conn: psycopg.Connection, client_id: str) -> dict[bytes, Suspect]:
    """Count this client's dead landings against their messages; return every suspect.

    Only this client's rows: another ingestor's rows are its landings in progress.
    """
    with conn.transaction():
        conn.execute(
            "WITH dead AS (DELETE FROM raw.ingest_attempts WHERE client_id = %s "
            "  RETURNING attempt_id, started_at, fingerprints, error), "
            "per_message AS (SELECT DISTINCT d.attempt_id, d.started_at, d.error, "
            "  substring(d.fingerprints FROM 1 + %s * i FOR %s) AS fingerprint "
            "  FROM dead d, generate_series(0, length(d.fingerprints) / %s - 1) AS i) "
            "INSERT INTO raw.ingest_suspects AS s "
            "  (fingerprint, attempts, first_crash_at, last_crash_at, last_error) "
            "SELECT fingerprint, count(*), min(started_at), max(started_at), "
            "  (array_agg(error ORDER BY started_at DESC) FILTER (WHERE error IS NOT NULL))[1] "
            "FROM per_message GROUP BY fingerprint "
            "ON CONFLICT (fingerprint) DO UPDATE SET attempts = s.attempts + EXCLUDED.attempts, "
            "  last_crash_at = EXCLUDED.last_crash_at, "
            "  last_error = coalesce(EXCLUDED.last_error, s.last_error)",
            (client_id, FINGERPRINT_BYTES, FINGERPRINT_BYTES, FINGERPRINT_BYTES),
        )
        rows = conn.execute(
            "SELECT fingerprint, attempts, last_error, poisoned_at IS NOT NULL "
            "FROM raw.ingest_suspects"
        ).fetchall()
    return {bytes(fp): Suspect(attempts, error, poisoned) for fp, attempts, error, poisoned in rows}
