-- marts.fct_kpi_daily for the local days [%(first_date)s, %(last_date)s] at three levels: each
-- machine, each line (its machines summed) and each site (all its machines summed), from
-- marts.fct_energy_hourly, which must be built first. The definition of each KPI is in its
-- column comment (sql/migrations/0008_marts.sql, rendered in docs/marts.md).
-- * Line and site peaks are the highest quarter-hour of the summed load: each machine's mean
--   power_kw per quarter hour (readings at ts count in the quarter of ts - 1 microsecond, as in
--   core.hourly_energy), added up per quarter. Once retention has dropped the raw readings of a
--   day, a rebuild falls back to the highest hourly sum of the machines' hourly 15-minute peaks,
--   an upper bound (peak_method says which).
-- * Base load is percentile_cont(0.05) over the level's hourly kWh (= average kW of the hour).
-- * The demand charge of a day is the tariff's demand_charge_eur_per_kw_month times the day's
--   peak, divided by the days of its month.
WITH member_hours AS (
    -- every machine-hour, once for each level it counts in
    SELECT l.level, l.level_id, f.*
    FROM marts.fct_energy_hourly f
    CROSS JOIN LATERAL (
        VALUES ('machine', f.machine_id), ('line', f.line), ('site', f.site_id)
    ) AS l(level, level_id)
    WHERE f.local_date BETWEEN %(first_date)s AND %(last_date)s AND l.level_id IS NOT NULL
),
days AS (
    SELECT level, level_id, site_id, local_date,
           count(DISTINCT machine_id) AS machines,
           count(DISTINCT hour_start) AS hours,
           sum(energy_kwh) AS energy_kwh,
           max(peak_15min_kw) AS machine_peak_kw,
           bool_and(peak_15min_kw IS NOT NULL OR energy_kwh = 0) AS peak_covers_energy,
           sum(parts) AS parts,
           sum(idle_kwh) AS idle_kwh,
           CASE WHEN bool_and(is_shift IS NOT NULL)
                THEN COALESCE(sum(energy_kwh) FILTER (WHERE NOT is_shift), 0)
           END AS out_of_hours_kwh,
           sum(energy_cost) AS energy_cost,
           sum(co2e_kg) AS co2e_kg,
           avg(completeness) AS completeness
    FROM member_hours
    GROUP BY level, level_id, site_id, local_date
),
level_hours AS (
    -- the level's load in each hour of the day
    SELECT level, level_id, site_id, local_date, hour_start,
           sum(energy_kwh) AS energy_kwh,
           sum(peak_15min_kw) AS peak_sum_kw
    FROM member_hours
    GROUP BY level, level_id, site_id, local_date, hour_start
),
hour_stats AS (
    SELECT level, level_id, site_id, local_date,
           percentile_cont(0.05) WITHIN GROUP (ORDER BY energy_kwh) AS base_load_kw,
           max(peak_sum_kw) AS peak_sum_kw
    FROM level_hours
    GROUP BY level, level_id, site_id, local_date
),
site_windows AS (
    SELECT site_id, timezone,
           %(first_date)s::date::timestamp AT TIME ZONE timezone AS from_ts,
           (%(last_date)s::date + 1)::timestamp AT TIME ZONE timezone AS to_ts
    FROM core.sites
),
machine_quarters AS (
    SELECT m.machine_id, m.line, m.site_id, w.timezone, q.quarter_start, q.avg_kw
    FROM core.machines m
    JOIN site_windows w USING (site_id)
    CROSS JOIN LATERAL (
        SELECT date_bin('15 minutes', r.ts - interval '1 microsecond',
                        timestamptz '2000-01-01 00:00Z') AS quarter_start,
               avg(r.value) AS avg_kw
        FROM raw.readings r
        WHERE r.machine_id = m.machine_id AND r.metric = 'power_kw'
          AND r.ts > w.from_ts AND r.ts <= w.to_ts
        GROUP BY 1
    ) AS q
),
quarter_peaks AS (
    SELECT level, level_id, site_id, local_date, max(kw) AS peak_kw
    FROM (
        SELECT l.level, l.level_id, mq.site_id,
               (mq.quarter_start AT TIME ZONE mq.timezone)::date AS local_date,
               mq.quarter_start,
               sum(mq.avg_kw) AS kw
        FROM machine_quarters mq
        CROSS JOIN LATERAL (VALUES ('line', mq.line), ('site', mq.site_id)) AS l(level, level_id)
        WHERE l.level_id IS NOT NULL
        GROUP BY 1, 2, 3, 4, 5
    ) AS summed
    GROUP BY level, level_id, site_id, local_date
)
INSERT INTO marts.fct_kpi_daily (
    level, level_id, site_id, local_date, machines, hours, energy_kwh, avg_kw, peak_15min_kw,
    peak_method, load_factor, base_load_kw, parts, sec_kwh_per_part, idle_kwh, idle_share,
    out_of_hours_kwh, out_of_hours_share, energy_cost, demand_charge, total_cost, currency,
    co2e_kg, completeness, enpi, expected_kwh, savings_kwh, cusum_savings_kwh, baseline_version
)
SELECT d.level,
       d.level_id,
       d.site_id,
       d.local_date,
       d.machines,
       d.hours,
       d.energy_kwh,
       d.energy_kwh / d.hours,
       pk.peak_kw,
       pk.method,
       CASE WHEN d.peak_covers_energy THEN d.energy_kwh / d.hours / NULLIF(pk.peak_kw, 0) END,
       hs.base_load_kw,
       d.parts,
       d.energy_kwh / NULLIF(d.parts, 0),
       d.idle_kwh,
       d.idle_kwh / NULLIF(d.energy_kwh, 0),
       d.out_of_hours_kwh,
       d.out_of_hours_kwh / NULLIF(d.energy_kwh, 0),
       d.energy_cost,
       dc.demand_charge,
       d.energy_cost + COALESCE(dc.demand_charge, 0),
       t.currency,
       d.co2e_kg,
       d.completeness,
       perf.enpi,
       perf.expected_kwh,
       perf.savings_kwh,
       perf.cusum_savings_kwh,
       perf.baseline_version
FROM days d
JOIN hour_stats hs USING (level, level_id, site_id, local_date)
LEFT JOIN quarter_peaks qp USING (level, level_id, site_id, local_date)
CROSS JOIN LATERAL (
    SELECT CASE WHEN d.level = 'machine' THEN d.machine_peak_kw
                ELSE COALESCE(qp.peak_kw, hs.peak_sum_kw)
           END AS peak_kw,
           CASE WHEN d.level = 'machine'
                THEN CASE WHEN d.machine_peak_kw IS NOT NULL THEN 'machine_15min' END
                WHEN qp.peak_kw IS NOT NULL THEN 'summed_15min'
                WHEN hs.peak_sum_kw IS NOT NULL THEN 'sum_of_hourly_peaks'
           END AS method
) AS pk
LEFT JOIN LATERAL (
    SELECT t.currency, t.definition FROM core.tariffs t
    WHERE t.site_id = d.site_id AND t.valid_from <= d.local_date
    ORDER BY t.valid_from DESC LIMIT 1
) AS t ON true
CROSS JOIN LATERAL (
    SELECT (t.definition ->> 'demand_charge_eur_per_kw_month')::double precision * pk.peak_kw
           / extract(day FROM date_trunc('month', d.local_date::timestamp)
                              + interval '1 month - 1 day')::double precision
           AS demand_charge
) AS dc
-- EnPI and savings of the machine or site against its active daily baseline, where computed
-- (marts.energy_performance_daily; the baseline assets also update these rows when they run).
LEFT JOIN LATERAL (
    SELECT p.enpi, p.expected_kwh, p.savings_kwh, p.cusum_savings_kwh,
           'v' || m.version || ' (model ' || m.model_id || ')' AS baseline_version
    FROM marts.energy_performance_daily p
    JOIN marts.baseline_models m USING (model_id)
    WHERE d.level IN ('machine', 'site') AND p.scope_id = d.level_id
      AND p.local_date = d.local_date
) AS perf ON true
