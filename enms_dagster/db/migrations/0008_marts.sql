-- The analyst marts (issue 9): machine and date dimensions, hourly energy with its price and
-- CO2e, daily KPIs per machine, line and site, and the read-only role enms_analyst.
-- docs/marts.md is generated from the comments below (`enms db docs`).

-- marts.kpi_daily (0002) stays as it is: the demo and existing queries read it.
-- marts.fct_kpi_daily is its fuller successor.
COMMENT ON TABLE marts.kpi_daily IS
    'Daily energy KPIs per machine in the site''s local day (the first mart; '
    'marts.fct_kpi_daily has the full set at machine, line and site level).';
COMMENT ON COLUMN marts.kpi_daily.machine_id IS 'Machine (marts.dim_machine).';
COMMENT ON COLUMN marts.kpi_daily.site_id IS 'Site of the machine.';
COMMENT ON COLUMN marts.kpi_daily.machine_type IS 'Machine type, e.g. compressor.';
COMMENT ON COLUMN marts.kpi_daily.local_date IS 'Day in the site''s time zone.';

-- Dimensions: views over the plant registry, always current.
CREATE VIEW marts.dim_machine AS
SELECT m.machine_id,
       m.name AS machine_name,
       m.machine_type,
       t.description AS machine_type_description,
       m.line,
       m.site_id,
       s.name AS site_name,
       s.timezone,
       m.rated_power_kw,
       m.energy_source
FROM core.machines m
JOIN core.sites s USING (site_id)
JOIN core.machine_types t USING (machine_type);
COMMENT ON VIEW marts.dim_machine IS 'Machines of the plant registry, one row per machine.';
COMMENT ON COLUMN marts.dim_machine.machine_id IS 'Machine id, as in every fact table.';
COMMENT ON COLUMN marts.dim_machine.machine_name IS 'Human name of the machine.';
COMMENT ON COLUMN marts.dim_machine.machine_type IS 'Machine type, e.g. compressor, hvac, meter.';
COMMENT ON COLUMN marts.dim_machine.machine_type_description IS 'What the machine type is.';
COMMENT ON COLUMN marts.dim_machine.line IS
    'Production line or group (NULL: none); the line level of marts.fct_kpi_daily.';
COMMENT ON COLUMN marts.dim_machine.site_id IS 'Site the machine belongs to.';
COMMENT ON COLUMN marts.dim_machine.site_name IS 'Human name of the site.';
COMMENT ON COLUMN marts.dim_machine.timezone IS
    'IANA time zone of the site: local dates, shifts and tariff periods are in it.';
COMMENT ON COLUMN marts.dim_machine.rated_power_kw IS 'Nameplate power, kW.';
COMMENT ON COLUMN marts.dim_machine.energy_source IS 'Energy carrier, e.g. electricity.';

CREATE VIEW marts.dim_date AS
SELECT s.site_id,
       d.day AS local_date,
       extract(isodow FROM d.day)::smallint AS iso_weekday,
       (ARRAY['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'])
           [extract(isodow FROM d.day)::integer] AS weekday_name,
       extract(isoyear FROM d.day)::integer AS iso_year,
       extract(week FROM d.day)::smallint AS iso_week,
       extract(year FROM d.day)::integer AS year,
       extract(month FROM d.day)::smallint AS month,
       date_trunc('month', d.day::timestamp)::date AS month_start,
       extract(day FROM date_trunc('month', d.day::timestamp) + interval '1 month - 1 day')::smallint
           AS days_in_month,
       (extract(epoch FROM ((d.day + 1)::timestamp AT TIME ZONE s.timezone)
                           - (d.day::timestamp AT TIME ZONE s.timezone)) / 3600)::smallint
           AS hours_in_day,
       hol.holiday IS NOT NULL AS is_holiday,
       hol.holiday IS NULL AND (extract(isodow FROM d.day)::integer - 1) = ANY (s.shift_weekdays)
           AS is_working_day
FROM core.sites s
CROSS JOIN LATERAL (
    SELECT g::date AS day
    FROM generate_series(
        s.commissioned_on::timestamp,
        date_trunc('year', current_date::timestamp) + interval '2 years - 1 day',
        interval '1 day'
    ) AS g
) AS d
LEFT JOIN core.site_holidays hol ON hol.site_id = s.site_id AND hol.holiday = d.day;
COMMENT ON VIEW marts.dim_date IS
    'Local calendar days of each site, from its commissioning to the end of next year.';
COMMENT ON COLUMN marts.dim_date.site_id IS 'Site whose calendar this is.';
COMMENT ON COLUMN marts.dim_date.local_date IS 'Day in the site''s time zone.';
COMMENT ON COLUMN marts.dim_date.iso_weekday IS 'ISO weekday, 1 = Monday .. 7 = Sunday.';
COMMENT ON COLUMN marts.dim_date.weekday_name IS 'Weekday in English, e.g. Monday.';
COMMENT ON COLUMN marts.dim_date.iso_year IS 'ISO 8601 week-numbering year (differs from year around New Year).';
COMMENT ON COLUMN marts.dim_date.iso_week IS 'ISO 8601 week number, 1..53.';
COMMENT ON COLUMN marts.dim_date.year IS 'Calendar year.';
COMMENT ON COLUMN marts.dim_date.month IS 'Calendar month, 1..12.';
COMMENT ON COLUMN marts.dim_date.month_start IS 'First day of the month.';
COMMENT ON COLUMN marts.dim_date.days_in_month IS
    'Days in the month: the demand charge of a day is the monthly charge divided by it.';
COMMENT ON COLUMN marts.dim_date.hours_in_day IS
    'Hours in the local day: 23 or 25 on daylight-saving changes, else 24.';
COMMENT ON COLUMN marts.dim_date.is_holiday IS 'A holiday of the site (core.site_holidays).';
COMMENT ON COLUMN marts.dim_date.is_working_day IS
    'A shift weekday of the site that is not a holiday.';

-- Facts: tables, rebuilt a window at a time by the Dagster assets of the same names.
CREATE TABLE marts.fct_energy_hourly (
    machine_id       text NOT NULL,
    site_id          text NOT NULL,
    line             text,
    hour_start       timestamptz NOT NULL,
    local_date       date NOT NULL,
    local_hour       smallint NOT NULL,
    is_shift         boolean,
    energy_kwh       double precision NOT NULL,
    energy_method    text NOT NULL,
    avg_kw           double precision,
    max_kw           double precision,
    peak_15min_kw    double precision,
    running_h        double precision NOT NULL,
    idle_h           double precision NOT NULL,
    off_h            double precision NOT NULL,
    idle_kwh         double precision,
    parts            double precision,
    completeness     double precision,
    tariff_name      text,
    tariff_period    text,
    price_per_kwh    double precision,
    energy_cost      double precision,
    currency         text,
    kg_co2e_per_kwh  double precision,
    co2e_kg          double precision,
    PRIMARY KEY (machine_id, hour_start)
);
CREATE INDEX fct_energy_hourly_local_date_idx ON marts.fct_energy_hourly (local_date);
COMMENT ON TABLE marts.fct_energy_hourly IS
    'Energy per machine and hour (core.hourly_energy) with the hour''s time-of-use price, '
    'cost and CO2e. Tariff periods are matched in the site''s local time.';
COMMENT ON COLUMN marts.fct_energy_hourly.machine_id IS 'Machine (marts.dim_machine).';
COMMENT ON COLUMN marts.fct_energy_hourly.site_id IS 'Site of the machine.';
COMMENT ON COLUMN marts.fct_energy_hourly.line IS 'Line of the machine (NULL: none).';
COMMENT ON COLUMN marts.fct_energy_hourly.hour_start IS
    'Start of the hour (UTC instant); readings at ts count in the hour of ts - 1 microsecond.';
COMMENT ON COLUMN marts.fct_energy_hourly.local_date IS
    'Local day the hour starts in (marts.dim_date).';
COMMENT ON COLUMN marts.fct_energy_hourly.local_hour IS
    'Local clock hour of hour_start, 0..23 (2 is missing on the spring change and twice on the '
    'autumn change).';
COMMENT ON COLUMN marts.fct_energy_hourly.is_shift IS
    'The hour starts inside the site''s shift (core.hourly_drivers); NULL when drivers are missing.';
COMMENT ON COLUMN marts.fct_energy_hourly.energy_kwh IS
    'kWh drawn in the hour (counter deltas, interval energy or integrated power).';
COMMENT ON COLUMN marts.fct_energy_hourly.energy_method IS 'counter, interval or power.';
COMMENT ON COLUMN marts.fct_energy_hourly.avg_kw IS 'Mean of the power samples of the hour, kW.';
COMMENT ON COLUMN marts.fct_energy_hourly.max_kw IS 'Highest power sample of the hour, kW.';
COMMENT ON COLUMN marts.fct_energy_hourly.peak_15min_kw IS
    'Highest quarter-hour mean of the power samples, kW.';
COMMENT ON COLUMN marts.fct_energy_hourly.running_h IS 'Hours in state running.';
COMMENT ON COLUMN marts.fct_energy_hourly.idle_h IS 'Hours in state idle.';
COMMENT ON COLUMN marts.fct_energy_hourly.off_h IS 'Hours in state off.';
COMMENT ON COLUMN marts.fct_energy_hourly.idle_kwh IS
    'Integrated power while the state was idle, kWh (NULL without a state metric).';
COMMENT ON COLUMN marts.fct_energy_hourly.parts IS 'Parts produced in the hour (NULL: not counted).';
COMMENT ON COLUMN marts.fct_energy_hourly.completeness IS
    'Samples received / samples expected for the energy method (may exceed 1).';
COMMENT ON COLUMN marts.fct_energy_hourly.tariff_name IS
    'Tariff in force on the local day (core.tariffs, latest valid_from on or before it).';
COMMENT ON COLUMN marts.fct_energy_hourly.tariff_period IS
    'Tariff period at the hour''s local start: the first listed period whose local clock '
    'interval [start, end) and weekdays contain it (an end before the start crosses midnight; '
    'the part after midnight belongs to the weekday it started on); where none does, the '
    'cheapest period.';
COMMENT ON COLUMN marts.fct_energy_hourly.price_per_kwh IS
    'Energy price of the hour in currency per kWh: the mean of the prices at its four '
    'quarter-hour starts (a period boundary at :30 prices half the hour at each side).';
COMMENT ON COLUMN marts.fct_energy_hourly.energy_cost IS 'energy_kwh * price_per_kwh, in currency.';
COMMENT ON COLUMN marts.fct_energy_hourly.currency IS 'Currency of the tariff, e.g. EUR.';
COMMENT ON COLUMN marts.fct_energy_hourly.kg_co2e_per_kwh IS
    'Grid emission factor valid on the local day (core.emission_factors), kg CO2e per kWh.';
COMMENT ON COLUMN marts.fct_energy_hourly.co2e_kg IS 'energy_kwh * kg_co2e_per_kwh, kg CO2e.';

CREATE TABLE marts.fct_kpi_daily (
    level               text NOT NULL CHECK (level IN ('machine', 'line', 'site')),
    level_id            text NOT NULL,
    site_id             text NOT NULL,
    local_date          date NOT NULL,
    machines            integer NOT NULL,
    hours               integer NOT NULL,
    energy_kwh          double precision NOT NULL,
    avg_kw              double precision,
    peak_15min_kw       double precision,
    peak_method         text,
    load_factor         double precision,
    base_load_kw        double precision,
    parts               double precision,
    sec_kwh_per_part    double precision,
    idle_kwh            double precision,
    idle_share          double precision,
    out_of_hours_kwh    double precision,
    out_of_hours_share  double precision,
    energy_cost         double precision,
    demand_charge       double precision,
    total_cost          double precision,
    currency            text,
    co2e_kg             double precision,
    completeness        double precision,
    enpi                double precision,
    expected_kwh        double precision,
    savings_kwh         double precision,
    cusum_savings_kwh   double precision,
    baseline_version    text,
    PRIMARY KEY (level, site_id, level_id, local_date)
);
CREATE INDEX fct_kpi_daily_local_date_idx ON marts.fct_kpi_daily (local_date);
COMMENT ON TABLE marts.fct_kpi_daily IS
    'Daily energy KPIs per local day at three levels: each machine, each line (its machines '
    'summed) and each site (all its machines summed). Built from marts.fct_energy_hourly.';
COMMENT ON COLUMN marts.fct_kpi_daily.level IS 'machine, line or site.';
COMMENT ON COLUMN marts.fct_kpi_daily.level_id IS
    'machine_id, line name or site_id, by level (machines without a line have no line row).';
COMMENT ON COLUMN marts.fct_kpi_daily.site_id IS 'Site; line names are unique within a site.';
COMMENT ON COLUMN marts.fct_kpi_daily.local_date IS 'Day in the site''s time zone.';
COMMENT ON COLUMN marts.fct_kpi_daily.machines IS 'Machines with at least one hour of data.';
COMMENT ON COLUMN marts.fct_kpi_daily.hours IS
    'Hours of the day with data (23 or 25 on daylight-saving days when complete).';
COMMENT ON COLUMN marts.fct_kpi_daily.energy_kwh IS 'Energy drawn in the local day, kWh.';
COMMENT ON COLUMN marts.fct_kpi_daily.avg_kw IS 'energy_kwh / hours, kW.';
COMMENT ON COLUMN marts.fct_kpi_daily.peak_15min_kw IS
    'Peak demand: the highest 15-minute average kW of the day. Machine: the highest quarter-hour '
    'mean of its power samples. Line and site: the highest quarter-hour of the summed load (the '
    'machines'' quarter-hour means added up), read from raw.readings; once those are dropped, '
    'the highest hourly sum of the machines'' hourly peaks (an upper bound). Counts only machines '
    'that report power_kw.';
COMMENT ON COLUMN marts.fct_kpi_daily.peak_method IS
    'How peak_15min_kw was found: machine_15min, summed_15min, or sum_of_hourly_peaks '
    '(raw readings no longer kept).';
COMMENT ON COLUMN marts.fct_kpi_daily.load_factor IS
    'avg_kw / peak_15min_kw; NULL where some of the energy comes from machines without power '
    'readings (their 15-minute load is unknown).';
COMMENT ON COLUMN marts.fct_kpi_daily.base_load_kw IS
    'Base load: the 5th percentile of the hourly average kW of the day (hourly kWh of the level, '
    'hours with data), linear interpolation (percentile_cont): for 24 hours sorted x0..x23 it is '
    'x1 + 0.15 * (x2 - x1).';
COMMENT ON COLUMN marts.fct_kpi_daily.parts IS 'Parts produced (sum over the machines counting them).';
COMMENT ON COLUMN marts.fct_kpi_daily.sec_kwh_per_part IS
    'Specific energy consumption: energy_kwh / parts, kWh per part (NULL without parts).';
COMMENT ON COLUMN marts.fct_kpi_daily.idle_kwh IS
    'kWh drawn while the machine state was idle (NULL where no machine reports a state).';
COMMENT ON COLUMN marts.fct_kpi_daily.idle_share IS 'idle_kwh / energy_kwh.';
COMMENT ON COLUMN marts.fct_kpi_daily.out_of_hours_kwh IS
    'kWh drawn in hours outside the site''s shift (holidays and non-working weekdays entirely); '
    'NULL when the shift of some hour is unknown.';
COMMENT ON COLUMN marts.fct_kpi_daily.out_of_hours_share IS 'out_of_hours_kwh / energy_kwh.';
COMMENT ON COLUMN marts.fct_kpi_daily.energy_cost IS
    'Sum of the hourly time-of-use energy cost (marts.fct_energy_hourly), in currency.';
COMMENT ON COLUMN marts.fct_kpi_daily.demand_charge IS
    'Day''s share of the demand charge: demand_charge_eur_per_kw_month * peak_15min_kw / '
    'days_in_month. Utilities bill the month''s peak, so a month of these is at most the bill '
    '(equal when every day peaks alike); at machine and line level it attributes the charge '
    'by their own peaks.';
COMMENT ON COLUMN marts.fct_kpi_daily.total_cost IS 'energy_cost + demand_charge (0 when none).';
COMMENT ON COLUMN marts.fct_kpi_daily.currency IS 'Currency of the tariff in force on the day.';
COMMENT ON COLUMN marts.fct_kpi_daily.co2e_kg IS
    'Emissions: kWh * the emission factor valid on the day, kg CO2e.';
COMMENT ON COLUMN marts.fct_kpi_daily.completeness IS
    'Mean completeness of the machine-hours (samples received / expected).';
COMMENT ON COLUMN marts.fct_kpi_daily.enpi IS
    'Normalized EnPI: energy_kwh / expected_kwh (1.0 = as the baseline expects). '
    'Filled by the baseline assets; NULL until then.';
COMMENT ON COLUMN marts.fct_kpi_daily.expected_kwh IS
    'kWh the energy baseline expects for the day''s drivers (filled by the baseline assets).';
COMMENT ON COLUMN marts.fct_kpi_daily.savings_kwh IS
    'expected_kwh - energy_kwh (filled by the baseline assets).';
COMMENT ON COLUMN marts.fct_kpi_daily.cusum_savings_kwh IS
    'Running sum of savings_kwh since the baseline period ended (filled by the baseline assets).';
COMMENT ON COLUMN marts.fct_kpi_daily.baseline_version IS
    'Version of the baseline model behind expected_kwh (filled by the baseline assets).';

-- The read-only analyst role. Roles are cluster-wide, so it may already exist (another database
-- of the same server, or a concurrent migration): create it only where missing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'enms_analyst') THEN
        BEGIN
            CREATE ROLE enms_analyst NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created concurrently
        END;
    END IF;
END
$$;
COMMENT ON ROLE enms_analyst IS
    'Read-only analyst access to the marts schema; `enms db analyst-password` enables its login.';
ALTER ROLE enms_analyst SET default_transaction_read_only = on;

REVOKE ALL ON SCHEMA raw, core FROM enms_analyst;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON SCHEMA marts FROM enms_analyst;
GRANT USAGE ON SCHEMA marts TO enms_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA marts TO enms_analyst;
-- marts tables and views created later by the role that runs the migrations are readable too
ALTER DEFAULT PRIVILEGES IN SCHEMA marts GRANT SELECT ON TABLES TO enms_analyst;
