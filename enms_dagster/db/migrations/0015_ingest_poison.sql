-- A crash-only ingestor: the heartbeat row says why an ingestor stopped, and messages that were
-- being landed when a worker died are remembered across restarts so that one that keeps killing
-- the worker is quarantined as 'poison' instead of retried forever.
ALTER TABLE raw.ingestor_status
    ADD COLUMN state      text NOT NULL DEFAULT 'running',
    ADD COLUMN stopped_at timestamptz,
    ADD COLUMN last_error text;
COMMENT ON COLUMN raw.ingestor_status.state IS
    'running, stopped (a clean stop) or crashed (the process exited non-zero; see last_error).';
COMMENT ON COLUMN raw.ingestor_status.last_error IS
    'The error that last stopped this ingestor (kept after a restart).';

-- One row per batch being landed: committed before the batch is parsed, deleted by the
-- transaction that lands it. A row that outlives its ingestor marks a batch whose landing died.
CREATE TABLE raw.ingest_attempts (
    attempt_id   uuid PRIMARY KEY,  -- chosen by the ingestor, so a retried INSERT is idempotent
    client_id    text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    fingerprints bytea NOT NULL,  -- the messages' 32-byte fingerprints, concatenated
    error        text
);
CREATE INDEX ingest_attempts_client_idx ON raw.ingest_attempts (client_id);
COMMENT ON TABLE raw.ingest_attempts IS
    'Batches an ingestor is landing right now (sha256 of topic and payload per message).';

-- Messages that were in a batch whose landing died, with how many landings they were part of.
CREATE TABLE raw.ingest_suspects (
    fingerprint    bytea PRIMARY KEY,
    attempts       integer NOT NULL,
    first_crash_at timestamptz NOT NULL DEFAULT now(),
    last_crash_at  timestamptz NOT NULL DEFAULT now(),
    last_error     text,
    poisoned_at    timestamptz
);
COMMENT ON TABLE raw.ingest_suspects IS
    'Messages present when an ingestor worker died. Landed alone on their next delivery; cleared '
    'when that lands; quarantined as poison (and kept, so copies go the same way) after 2 crashes.';
