-- Hourly energy per machine, and the first analyst mart built from it.
CREATE TABLE core.hourly_energy (
    machine_id     text NOT NULL REFERENCES core.machines,
    hour_start     timestamptz NOT NULL,
    local_date     date NOT NULL,
    energy_kwh     double precision NOT NULL,
    energy_method  text NOT NULL CHECK (energy_method IN ('counter', 'interval', 'power')),
    avg_kw         double precision,
    max_kw         double precision,
    peak_15min_kw  double precision,
    samples        integer NOT NULL,
    PRIMARY KEY (machine_id, hour_start)
);
CREATE INDEX hourly_energy_local_date_idx ON core.hourly_energy (local_date);
COMMENT ON TABLE core.hourly_energy IS
    'kWh per machine and hour, from counter deltas, interval energy or power integration.';

CREATE TABLE marts.kpi_daily (
    machine_id     text NOT NULL,
    site_id        text NOT NULL,
    machine_type   text NOT NULL,
    local_date     date NOT NULL,
    energy_kwh     double precision NOT NULL,
    avg_kw         double precision,
    peak_15min_kw  double precision,
    max_kw         double precision,
    load_factor    double precision,
    hours          integer NOT NULL,
    PRIMARY KEY (machine_id, local_date)
);
COMMENT ON TABLE marts.kpi_daily IS 'Daily energy KPIs per machine in the site''s local day.';
COMMENT ON COLUMN marts.kpi_daily.energy_kwh IS 'Energy drawn in the local day, kWh.';
COMMENT ON COLUMN marts.kpi_daily.avg_kw IS 'Average power over the hours with data, kW.';
COMMENT ON COLUMN marts.kpi_daily.peak_15min_kw IS
    'Highest 15-minute average power in the day, kW (the figure utilities bill).';
COMMENT ON COLUMN marts.kpi_daily.max_kw IS 'Highest single power reading, kW.';
COMMENT ON COLUMN marts.kpi_daily.load_factor IS 'avg_kw / peak_15min_kw.';
COMMENT ON COLUMN marts.kpi_daily.hours IS 'Hours of the day with data.';
