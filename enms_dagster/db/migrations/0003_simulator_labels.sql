-- Ground truth from the simulator: injected faults and efficiency measures, so anomaly
-- detection can be scored on labelled events and savings models on a known saving.
CREATE TABLE core.fault_labels (
    machine_id  text NOT NULL REFERENCES core.machines,
    kind        text NOT NULL,
    start_ts    timestamptz NOT NULL,
    end_ts      timestamptz NOT NULL CHECK (end_ts > start_ts),
    magnitude   double precision NOT NULL DEFAULT 0,
    detail      text NOT NULL DEFAULT '',
    source      text NOT NULL DEFAULT 'simulator',
    seed        bigint,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (machine_id, kind, start_ts)
);
CREATE INDEX fault_labels_window_idx ON core.fault_labels (start_ts, end_ts);
COMMENT ON TABLE core.fault_labels IS
    'Injected faults (ground truth): air_leak, hvac_setpoint_drift, hvac_heat_cool_conflict, '
    'bearing_wear, pump_cavitation, heater_left_on, left_running, stuck_sensor, counter_reset. '
    'A fault affects readings with start_ts < ts <= end_ts.';
COMMENT ON COLUMN core.fault_labels.magnitude IS
    'Size of the fault in the unit its kind implies (share of capacity or power, or K).';

CREATE TABLE core.efficiency_measures (
    machine_id  text NOT NULL REFERENCES core.machines,
    start_ts    timestamptz NOT NULL,
    saving      double precision NOT NULL CHECK (saving > 0 AND saving < 1),
    description text NOT NULL DEFAULT '',
    source      text NOT NULL DEFAULT 'simulator',
    seed        bigint,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (machine_id, start_ts)
);
COMMENT ON TABLE core.efficiency_measures IS
    'Permanent savings of a known size: the machine draws saving (e.g. 0.10) less power '
    'for readings after start_ts.';
