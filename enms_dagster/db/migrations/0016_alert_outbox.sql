-- Alerts go out through an outbox: the message is written in the same transaction that marks
-- its events alerted, and each channel (MQTT, webhook) delivers it on its own, retrying with
-- back-off until the channel acknowledges it or the delivery gives up.
CREATE TABLE core.alert_outbox (
    alert_id    uuid PRIMARY KEY,
    event_id    text NOT NULL,
    severity    text NOT NULL CHECK (severity IN ('low', 'medium', 'high')),
    status      text NOT NULL CHECK (status IN ('new', 'escalated')),
    topic       text NOT NULL,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL
);
COMMENT ON TABLE core.alert_outbox IS
    'One row per alert message (one per problem): what is sent on every channel.';
COMMENT ON COLUMN core.alert_outbox.alert_id IS
    'Stable id derived from event_id and severity; in the payload and the webhook''s '
    'Idempotency-Key header, so receivers can drop repeats.';
COMMENT ON COLUMN core.alert_outbox.event_id IS 'The lead event (marts.anomaly_events).';

CREATE TABLE core.alert_deliveries (
    alert_id         uuid NOT NULL REFERENCES core.alert_outbox ON DELETE CASCADE,
    channel          text NOT NULL CHECK (channel IN ('mqtt', 'webhook')),
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    last_attempt_at  timestamptz,
    last_error       text,
    delivered_at     timestamptz,
    PRIMARY KEY (alert_id, channel)
);
CREATE INDEX alert_deliveries_due_idx ON core.alert_deliveries (channel, next_attempt_at)
    WHERE state = 'pending';
COMMENT ON TABLE core.alert_deliveries IS
    'Delivery of an alert on one channel: pending until the channel acknowledged it (MQTT '
    'PUBACK, webhook 2xx), failed when it gave up.';
COMMENT ON COLUMN core.alert_deliveries.last_error IS 'Why the last attempt failed.';

COMMENT ON COLUMN marts.anomaly_events.alerted_at IS
    'When the last alert was queued for delivery (core.alert_outbox).';
