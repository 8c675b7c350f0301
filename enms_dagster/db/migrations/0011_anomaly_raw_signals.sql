-- What the anomaly detectors read from raw readings besides hourly energy (issue 7): how unsteady
-- a process signal was in each hour. Kept because the detectors compare an hour with weeks of
-- history, and re-reading weeks of 1-second readings every day would cost more than the rest
-- of the pipeline (raw readings may also be dropped by retention before the history is used).

CREATE TABLE core.hourly_signal_noise (
    machine_id  text NOT NULL REFERENCES core.machines,
    metric      text NOT NULL REFERENCES core.metrics,
    hour_start  timestamptz NOT NULL,
    samples     integer NOT NULL,
    mean_value  double precision,
    noise       double precision,
    PRIMARY KEY (machine_id, metric, hour_start)
);
CREATE INDEX hourly_signal_noise_hour_start_idx ON core.hourly_signal_noise (hour_start);
COMMENT ON TABLE core.hourly_signal_noise IS
    'How much a gauge reading (e.g. pressure_bar) moved from one sample to the next, per machine, '
    'metric and hour: one row for every machine-hour of core.hourly_energy (samples 0 where the '
    'machine publishes no such metric). Written by the Dagster asset anomalies, a window at a '
    'time (delete + insert), from sql/anomalies/hourly_signal_noise.sql.';
COMMENT ON COLUMN core.hourly_signal_noise.hour_start IS
    'Start of the hour (UTC instant); it holds the readings of (hour_start, hour_start + 1 h].';
COMMENT ON COLUMN core.hourly_signal_noise.samples IS 'Readings of the metric in the hour.';
COMMENT ON COLUMN core.hourly_signal_noise.mean_value IS 'Their mean, in the unit of the metric.';
COMMENT ON COLUMN core.hourly_signal_noise.noise IS
    'The 75th percentile of the absolute change between consecutive readings of the hour, in the '
    'unit of the metric: the step size of a noisy signal, untouched by a few level changes (a '
    'start-up, a changeover). NULL with fewer than two readings.';

-- The kinds the raw-signal detectors add.
COMMENT ON COLUMN marts.anomalies.kind IS
    'What was found: above_baseline, baseline_drift, unusual_load, out_of_hours, '
    'idle_power_high, base_load_creep, power_while_off, stuck_signal, meter_reset, '
    'unsteady_pressure.';
