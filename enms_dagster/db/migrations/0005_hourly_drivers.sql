-- Hourly energy in full (state hours, idle kWh, parts, completeness), hourly drivers, the site
-- calendar, per-day quality results and the raw retention log (issue 5).

-- Counters that wrap: the register's maximum. NULL means "no known maximum": a drop from just
-- under a power of ten to near zero is still read as a wrap (see hourly_energy.sql).
ALTER TABLE core.metrics ADD COLUMN rollover_at double precision CHECK (rollover_at > 0);
COMMENT ON COLUMN core.metrics.rollover_at IS
    'Counter maximum: the counter wraps to 0 here, the step is value + (rollover_at - previous).';

-- The site calendar: shift pattern (from the plant YAML) and holidays.
ALTER TABLE core.sites
    ADD COLUMN shift_weekdays smallint[] NOT NULL DEFAULT '{0,1,2,3,4}',
    ADD COLUMN shift_start time NOT NULL DEFAULT '06:00',
    ADD COLUMN shift_end time NOT NULL DEFAULT '22:00';
COMMENT ON COLUMN core.sites.shift_weekdays IS 'Working weekdays, 0 = Monday.';
COMMENT ON COLUMN core.sites.shift_end IS 'Shift end (local); an end before the start crosses midnight.';

CREATE TABLE core.site_holidays (
    site_id text NOT NULL REFERENCES core.sites,
    holiday date NOT NULL,
    PRIMARY KEY (site_id, holiday)
);
COMMENT ON TABLE core.site_holidays IS 'Non-working days of each site (local dates).';

ALTER TABLE core.hourly_energy
    ADD COLUMN power_kwh        double precision,
    ADD COLUMN running_h        double precision NOT NULL DEFAULT 0,
    ADD COLUMN idle_h           double precision NOT NULL DEFAULT 0,
    ADD COLUMN off_h            double precision NOT NULL DEFAULT 0,
    ADD COLUMN idle_kwh         double precision,
    ADD COLUMN parts            double precision,
    ADD COLUMN expected_samples integer,
    ADD COLUMN completeness     double precision;
COMMENT ON COLUMN core.hourly_energy.energy_kwh IS
    'kWh drawn in the hour by energy_method: counter deltas, interval energy or integrated power.';
COMMENT ON COLUMN core.hourly_energy.power_kwh IS
    'kWh from integrating power_kw alone (NULL without power): checks the counter against it.';
COMMENT ON COLUMN core.hourly_energy.running_h IS 'Hours in state running (2), from the state metric.';
COMMENT ON COLUMN core.hourly_energy.idle_h IS 'Hours in state idle (1).';
COMMENT ON COLUMN core.hourly_energy.off_h IS 'Hours in state off (0).';
COMMENT ON COLUMN core.hourly_energy.idle_kwh IS 'Integrated power while the state was idle, kWh.';
COMMENT ON COLUMN core.hourly_energy.parts IS 'Parts produced (steps of parts_total, resets excluded).';
COMMENT ON COLUMN core.hourly_energy.samples IS 'Readings of the metric energy_method used.';
COMMENT ON COLUMN core.hourly_energy.expected_samples IS
    '3600 / machine_types.sample_interval_s (the interval metered readings for interval energy).';
COMMENT ON COLUMN core.hourly_energy.completeness IS 'samples / expected_samples (may exceed 1).';

-- Relevant variables (drivers) per site and hour: weather, production, operating time, calendar.
CREATE TABLE core.hourly_drivers (
    site_id               text NOT NULL REFERENCES core.sites,
    hour_start            timestamptz NOT NULL,
    local_date            date NOT NULL,
    local_hour            smallint NOT NULL,
    iso_weekday           smallint NOT NULL CHECK (iso_weekday BETWEEN 1 AND 7),
    is_holiday            boolean NOT NULL,
    is_shift              boolean NOT NULL,
    outdoor_temperature_c double precision,
    temperature_samples   integer NOT NULL,
    hdh_base_c            double precision NOT NULL,
    hdh                   double precision,
    cdh_base_c            double precision NOT NULL,
    cdh                   double precision,
    parts                 double precision,
    running_h             double precision,
    operating_h           double precision,
    energy_kwh            double precision,
    PRIMARY KEY (site_id, hour_start)
);
CREATE INDEX hourly_drivers_local_date_idx ON core.hourly_drivers (local_date);
COMMENT ON TABLE core.hourly_drivers IS
    'Drivers per site and hour. Degree-hours for another base b: greatest(b - outdoor_temperature_c, 0).';
COMMENT ON COLUMN core.hourly_drivers.outdoor_temperature_c IS
    'Mean outdoor temperature of the hour over the site''s weather stations, degC.';
COMMENT ON COLUMN core.hourly_drivers.hdh IS 'Heating degree-hours at hdh_base_c, K·h.';
COMMENT ON COLUMN core.hourly_drivers.cdh IS 'Cooling degree-hours at cdh_base_c, K·h.';
COMMENT ON COLUMN core.hourly_drivers.is_shift IS
    'The hour starts inside the shift on a working weekday that is not a holiday.';
COMMENT ON COLUMN core.hourly_drivers.operating_h IS 'Machine-hours running or idle, summed.';

-- Which local days of a partitioned asset were materialized, and how their checks ended.
-- Retention reads these: raw data is dropped only for days computed and checked.
CREATE TABLE core.partition_runs (
    asset           text NOT NULL,
    local_date      date NOT NULL,
    materialized_at timestamptz NOT NULL DEFAULT now(),
    rows            integer NOT NULL,
    PRIMARY KEY (asset, local_date)
);
CREATE TABLE core.check_results (
    asset        text NOT NULL,
    check_name   text NOT NULL,
    local_date   date NOT NULL,
    passed       boolean NOT NULL,
    failed_rows  integer NOT NULL,
    evaluated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (asset, check_name, local_date)
);

-- What retention dropped: one row per raw partition (UTC day).
CREATE TABLE raw.retention_log (
    partition_name text NOT NULL,
    utc_day        date NOT NULL,
    rows           bigint NOT NULL,
    dropped_at     timestamptz NOT NULL DEFAULT now(),
    max_age_days   integer NOT NULL,
    PRIMARY KEY (utc_day, dropped_at)
);

-- Counter resets someone recorded (meter replaced, controller restarted): the raw quality check
-- accepts a counter that steps back exactly here.
CREATE TABLE core.counter_resets (
    machine_id text NOT NULL REFERENCES core.machines,
    metric     text NOT NULL REFERENCES core.metrics,
    ts         timestamptz NOT NULL,
    note       text NOT NULL DEFAULT '',
    PRIMARY KEY (machine_id, metric, ts)
);
