-- Anomaly detection (issue 7): hourly flags raised by the detectors, and the events they merge
-- into, with the alert and acknowledgement state of each event.

CREATE TABLE marts.anomalies (
    machine_id    text NOT NULL,
    hour_start    timestamptz NOT NULL,
    kind          text NOT NULL,
    local_date    date NOT NULL,
    method        text NOT NULL,
    severity      text NOT NULL CHECK (severity IN ('low', 'medium', 'high')),
    score         double precision NOT NULL,
    threshold     double precision NOT NULL,
    expected_kwh  double precision,
    actual_kwh    double precision,
    excess_kwh    double precision,
    excess_cost   double precision,
    observed      double precision,
    normal        double precision,
    event_id      text,
    PRIMARY KEY (machine_id, hour_start, kind)
);
CREATE INDEX anomalies_hour_start_idx ON marts.anomalies (hour_start);
COMMENT ON TABLE marts.anomalies IS
    'Hourly anomaly flags: one row per machine, hour and kind that a detector flagged. Rebuilt a '
    'day window at a time by the Dagster asset anomalies (delete + insert).';
COMMENT ON COLUMN marts.anomalies.machine_id IS 'Machine (marts.dim_machine).';
COMMENT ON COLUMN marts.anomalies.hour_start IS 'Start of the flagged hour (UTC instant).';
COMMENT ON COLUMN marts.anomalies.kind IS
    'What was found: above_baseline, baseline_drift, unusual_load, out_of_hours, '
    'idle_power_high, base_load_creep, power_while_off, stuck_signal.';
COMMENT ON COLUMN marts.anomalies.local_date IS 'Local day (plant time zone) of the hour.';
COMMENT ON COLUMN marts.anomalies.method IS
    'Detector family: residual_zscore or residual_cusum (against the energy baseline), '
    'isolation_forest (multivariate outlier per machine type), or rule.';
COMMENT ON COLUMN marts.anomalies.severity IS
    'low, medium or high: how far past its threshold the score is (under 2x, under 4x, more).';
COMMENT ON COLUMN marts.anomalies.score IS
    'What the method measured: robust z of the residual, CUSUM of daily residuals, Isolation '
    'Forest anomaly score, or for rules excess divided by the tolerated margin.';
COMMENT ON COLUMN marts.anomalies.threshold IS 'The score at which the method flags.';
COMMENT ON COLUMN marts.anomalies.expected_kwh IS
    'kWh the machine should have drawn in the hour (baseline, usual level, or actual minus the '
    'excess a rule attributes).';
COMMENT ON COLUMN marts.anomalies.actual_kwh IS 'kWh drawn in the hour (core.hourly_energy).';
COMMENT ON COLUMN marts.anomalies.excess_kwh IS 'actual_kwh - expected_kwh (negative: less).';
COMMENT ON COLUMN marts.anomalies.excess_cost IS
    'Positive excess_kwh times the price per kWh, in the currency of the event.';
COMMENT ON COLUMN marts.anomalies.observed IS
    'The quantity the method compared: kW for idle_power_high, base_load_creep and '
    'stuck_signal, mean hourly residual kWh for baseline_drift, else kWh.';
COMMENT ON COLUMN marts.anomalies.normal IS 'Its normal level, in the same unit.';
COMMENT ON COLUMN marts.anomalies.event_id IS 'The event the hour belongs to (marts.anomaly_events).';

CREATE TABLE marts.anomaly_events (
    event_id          text PRIMARY KEY,
    machine_id        text NOT NULL,
    site_id           text NOT NULL,
    kind              text NOT NULL,
    method            text NOT NULL,
    start_ts          timestamptz NOT NULL,
    end_ts            timestamptz NOT NULL CHECK (end_ts > start_ts),
    hours             integer NOT NULL,
    severity          text NOT NULL CHECK (severity IN ('low', 'medium', 'high')),
    score             double precision NOT NULL,
    expected_kwh      double precision,
    actual_kwh        double precision,
    excess_kwh        double precision,
    excess_cost       double precision,
    currency          text,
    sentence          text NOT NULL,
    first_seen        timestamptz NOT NULL DEFAULT now(),
    last_updated      timestamptz NOT NULL DEFAULT now(),
    alerted_severity  text CHECK (alerted_severity IN ('low', 'medium', 'high')),
    alerted_at        timestamptz,
    acknowledged_at   timestamptz,
    acknowledged_by   text
);
CREATE INDEX anomaly_events_machine_kind_idx ON marts.anomaly_events (machine_id, kind, start_ts);
CREATE INDEX anomaly_events_window_idx ON marts.anomaly_events (start_ts, end_ts);
COMMENT ON TABLE marts.anomaly_events IS
    'Anomaly events: consecutive flagged hours of one machine and kind (marts.anomalies) merged '
    'into one event that keeps its id as it grows, with its alert and acknowledgement state.';
COMMENT ON COLUMN marts.anomaly_events.event_id IS
    'Stable id: machine, kind and the UTC hour it was first seen starting, e.g. '
    'CMP-01.out_of_hours.20260310T2100Z (enms alerts ack takes it).';
COMMENT ON COLUMN marts.anomaly_events.machine_id IS 'Machine (marts.dim_machine).';
COMMENT ON COLUMN marts.anomaly_events.site_id IS 'Site of the machine; alerts go to enms/<site_id>/alerts.';
COMMENT ON COLUMN marts.anomaly_events.kind IS 'What was found (see marts.anomalies.kind).';
COMMENT ON COLUMN marts.anomaly_events.method IS 'Detector family (see marts.anomalies.method).';
COMMENT ON COLUMN marts.anomaly_events.start_ts IS 'Start of the first flagged hour (UTC instant).';
COMMENT ON COLUMN marts.anomaly_events.end_ts IS 'End of the last flagged hour (exclusive).';
COMMENT ON COLUMN marts.anomaly_events.hours IS 'Flagged hours in the event.';
COMMENT ON COLUMN marts.anomaly_events.severity IS 'The highest severity of its hours: low, medium, high.';
COMMENT ON COLUMN marts.anomaly_events.score IS 'The highest score of its hours.';
COMMENT ON COLUMN marts.anomaly_events.expected_kwh IS 'Expected kWh summed over its hours.';
COMMENT ON COLUMN marts.anomaly_events.actual_kwh IS 'Actual kWh summed over its hours.';
COMMENT ON COLUMN marts.anomaly_events.excess_kwh IS 'actual_kwh - expected_kwh.';
COMMENT ON COLUMN marts.anomaly_events.excess_cost IS 'Cost of the excess, in currency.';
COMMENT ON COLUMN marts.anomaly_events.currency IS 'Currency of excess_cost, e.g. EUR.';
COMMENT ON COLUMN marts.anomaly_events.sentence IS 'What happened, in one sentence for a technician.';
COMMENT ON COLUMN marts.anomaly_events.first_seen IS 'When the event was first recorded.';
COMMENT ON COLUMN marts.anomaly_events.last_updated IS
    'When it last grew, shrank or changed severity (recomputing the same data leaves it).';
COMMENT ON COLUMN marts.anomaly_events.alerted_severity IS
    'Severity last sent as an alert (NULL: never alerted); a higher severity alerts once more.';
COMMENT ON COLUMN marts.anomaly_events.alerted_at IS 'When the last alert was acknowledged by the broker.';
COMMENT ON COLUMN marts.anomaly_events.acknowledged_at IS
    'When someone acknowledged the event (enms alerts ack); it never alerts again.';
COMMENT ON COLUMN marts.anomaly_events.acknowledged_by IS 'Who acknowledged it.';
