-- Redundant ingestors land every message once each. Readings absorb that by their key
-- (machine, metric, ts); a rejection is absorbed by this fingerprint of what was rejected
-- (source, topic, reason, detail, payload), so it is quarantined once however many ingestors
-- or imports saw it. Rows from before this migration have none and stay as they are.
ALTER TABLE raw.quarantine ADD COLUMN fingerprint bytea;
CREATE UNIQUE INDEX quarantine_fingerprint_key ON raw.quarantine (fingerprint);
