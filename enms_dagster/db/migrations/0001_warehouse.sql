-- The warehouse skeleton: raw landing zone, plant registry, analyst marts.
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS core;
CREATE SCHEMA IF NOT EXISTS marts;

-- Plant registry, loaded from the plant YAML by the plant_registry asset.
CREATE TABLE core.sites (
    site_id         text PRIMARY KEY,
    name            text NOT NULL,
    timezone        text NOT NULL,
    commissioned_on date NOT NULL
);
COMMENT ON TABLE core.sites IS 'Sites of the plant, each with its IANA time zone.';

CREATE TABLE core.metrics (
    metric      text PRIMARY KEY,
    unit        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('gauge', 'counter', 'interval', 'state')),
    min_value   double precision,
    max_value   double precision,
    description text NOT NULL DEFAULT ''
);
COMMENT ON TABLE core.metrics IS
    'Metric catalog: gauge (power_kw), cumulative counter (energy_kwh_total), '
    'interval (kWh per period) or state code (0 off, 1 idle, 2 running).';

CREATE TABLE core.machine_types (
    machine_type       text PRIMARY KEY,
    description        text NOT NULL DEFAULT '',
    sample_interval_s  integer CHECK (sample_interval_s > 0)
);

CREATE TABLE core.machines (
    machine_id     text PRIMARY KEY,
    site_id        text NOT NULL REFERENCES core.sites,
    name           text NOT NULL,
    machine_type   text NOT NULL REFERENCES core.machine_types,
    line           text,
    rated_power_kw double precision CHECK (rated_power_kw > 0),
    energy_source  text NOT NULL DEFAULT 'electricity'
);

CREATE TABLE core.tariffs (
    site_id     text NOT NULL REFERENCES core.sites,
    name        text NOT NULL,
    valid_from  date NOT NULL,
    currency    text NOT NULL,
    definition  jsonb NOT NULL,
    PRIMARY KEY (site_id, valid_from)
);

CREATE TABLE core.emission_factors (
    site_id          text NOT NULL REFERENCES core.sites,
    valid_from       date NOT NULL,
    kg_co2e_per_kwh  double precision NOT NULL CHECK (kg_co2e_per_kwh >= 0),
    PRIMARY KEY (site_id, valid_from)
);

-- Ingest batch log: one row per committed landing batch (MQTT or import).
CREATE TABLE raw.ingest_batches (
    batch_id          bigserial PRIMARY KEY,
    source            text NOT NULL,
    committed_at      timestamptz NOT NULL DEFAULT now(),
    messages          integer NOT NULL,
    readings_received integer NOT NULL,
    readings_inserted integer NOT NULL,
    quarantined       integer NOT NULL,
    min_ts            timestamptz,
    max_ts            timestamptz,
    machines          text[] NOT NULL DEFAULT '{}'
);

-- Every reading a machine published, keyed on machine, metric and time.
-- TimescaleDB hypertable where the extension is available, daily range partitions otherwise:
-- either way old raw data is dropped a day at a time.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
        CREATE TABLE raw.readings (
            machine_id text NOT NULL,
            metric     text NOT NULL,
            ts         timestamptz NOT NULL,
            value      double precision NOT NULL,
            batch_id   bigint NOT NULL,
            PRIMARY KEY (machine_id, metric, ts)
        );
        PERFORM create_hypertable('raw.readings', 'ts', chunk_time_interval => interval '1 day');
    ELSE
        CREATE TABLE raw.readings (
            machine_id text NOT NULL,
            metric     text NOT NULL,
            ts         timestamptz NOT NULL,
            value      double precision NOT NULL,
            batch_id   bigint NOT NULL,
            PRIMARY KEY (machine_id, metric, ts)
        ) PARTITION BY RANGE (ts);
    END IF;
END
$$;
COMMENT ON TABLE raw.readings IS 'Every landed reading, exactly once per machine, metric and ts.';

-- Creates the daily partitions that [from_ts, to_ts] needs (no-op under TimescaleDB).
CREATE FUNCTION raw.ensure_reading_partitions(from_ts timestamptz, to_ts timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    day date := (from_ts AT TIME ZONE 'UTC')::date;
    last_day date := (to_ts AT TIME ZONE 'UTC')::date;
    part text;
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_partitioned_table p
        JOIN pg_class c ON c.oid = p.partrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'raw' AND c.relname = 'readings'
    ) THEN
        RETURN;
    END IF;
    WHILE day <= last_day LOOP
        part := 'readings_' || to_char(day, 'YYYYMMDD');
        IF to_regclass(format('raw.%I', part)) IS NULL THEN
            BEGIN
                EXECUTE format(
                    'CREATE TABLE IF NOT EXISTS raw.%I PARTITION OF raw.readings '
                    'FOR VALUES FROM (%L) TO (%L)',
                    part, (day::timestamp AT TIME ZONE 'UTC'),
                    ((day + 1)::timestamp AT TIME ZONE 'UTC'));
            EXCEPTION WHEN duplicate_table OR unique_violation THEN
                NULL;  -- a concurrent landing created it first
            END;
        END IF;
        day := day + 1;
    END LOOP;
END
$$;

-- Input that could not be used, kept with its raw bytes so it can be re-driven.
CREATE TABLE raw.quarantine (
    quarantine_id bigserial PRIMARY KEY,
    received_at   timestamptz NOT NULL DEFAULT now(),
    source        text NOT NULL,
    topic         text,
    payload       bytea,
    reason        text NOT NULL,
    detail        text NOT NULL DEFAULT '',
    batch_id      bigint REFERENCES raw.ingest_batches
);
CREATE INDEX quarantine_reason_idx ON raw.quarantine (reason, received_at);
