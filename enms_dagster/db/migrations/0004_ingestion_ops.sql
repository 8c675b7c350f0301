-- Operating the ingestion path: re-driving quarantined input, and each ingestor's health.
ALTER TABLE raw.quarantine
    ADD COLUMN redriven_at      timestamptz,
    ADD COLUMN redrive_batch_id bigint REFERENCES raw.ingest_batches,
    ADD COLUMN redrive_attempts integer NOT NULL DEFAULT 0;
CREATE INDEX quarantine_pending_idx ON raw.quarantine (quarantine_id) WHERE redriven_at IS NULL;
COMMENT ON COLUMN raw.quarantine.redriven_at IS
    'When a re-drive landed this input (NULL: still set aside).';

CREATE TABLE raw.ingestor_status (
    client_id          text PRIMARY KEY,
    started_at         timestamptz NOT NULL,
    last_heartbeat     timestamptz NOT NULL,
    last_commit_at     timestamptz,
    messages_committed bigint NOT NULL DEFAULT 0,
    readings_inserted  bigint NOT NULL DEFAULT 0,
    readings_duplicate bigint NOT NULL DEFAULT 0,
    quarantined        bigint NOT NULL DEFAULT 0,
    queue_depth        integer NOT NULL DEFAULT 0,
    landing_errors     bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE raw.ingestor_status IS
    'One row per ingestor client id, refreshed every few seconds while it runs.';
