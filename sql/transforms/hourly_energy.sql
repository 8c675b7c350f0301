-- kWh per machine and hour for the readings in (%(start)s, %(end)s].
-- A reading at ts covers the interval that ends at ts, so it belongs to the hour of
-- (ts - 1 microsecond): the counter step at 10:00:00 is energy drawn before 10:00.
-- Energy comes from the cumulative counter where the machine has one (a backwards step is a
-- reset or rollover: that interval is integrated from power instead, never negative), else from
-- interval energy, else from power integrated over the sample spacing (gaps over 15 min are not
-- bridged). A counter step whose previous reading is over an hour before the window start is
-- not counted here (issue 5 deepens gap handling).
WITH samples AS (
    -- one row per machine and instant, the energy metrics side by side
    SELECT machine_id, ts,
           max(value) FILTER (WHERE metric = 'energy_kwh_total') AS counter_kwh,
           max(value) FILTER (WHERE metric = 'energy_kwh_interval') AS interval_kwh,
           max(value) FILTER (WHERE metric = 'power_kw') AS power_kw
    FROM raw.readings
    WHERE metric IN ('energy_kwh_total', 'energy_kwh_interval', 'power_kw')
      AND ts > %(start)s - interval '1 hour' AND ts <= %(end)s
    GROUP BY machine_id, ts
),
counter_steps AS (
    SELECT machine_id, ts, power_kw,
           counter_kwh - lag(counter_kwh) OVER w AS delta,
           extract(epoch FROM ts - lag(ts) OVER w) AS step_s
    FROM samples
    WHERE counter_kwh IS NOT NULL
    WINDOW w AS (PARTITION BY machine_id ORDER BY ts)
),
power_steps AS (
    SELECT machine_id, ts, power_kw,
           extract(epoch FROM ts - lag(ts) OVER (PARTITION BY machine_id ORDER BY ts)) AS step_s
    FROM samples
    WHERE power_kw IS NOT NULL
),
counter_energy AS (
    SELECT machine_id, date_trunc('hour', ts - interval '1 microsecond') AS hour_start,
           sum(CASE
                   WHEN delta IS NULL THEN 0
                   WHEN delta >= 0 THEN delta
                   WHEN power_kw IS NOT NULL THEN power_kw * step_s / 3600.0
                   ELSE 0
               END) AS energy_kwh,
           count(*) AS samples
    FROM counter_steps
    WHERE ts > %(start)s
    GROUP BY 1, 2
),
interval_energy AS (
    SELECT machine_id, date_trunc('hour', ts - interval '1 microsecond') AS hour_start,
           sum(interval_kwh) AS energy_kwh, count(*) AS samples
    FROM samples
    WHERE interval_kwh IS NOT NULL AND ts > %(start)s
    GROUP BY 1, 2
),
quarters AS (
    SELECT machine_id,
           date_bin('15 minutes', ts - interval '1 microsecond', timestamptz '2000-01-01 00:00Z')
               AS quarter_start,
           sum(CASE WHEN step_s <= 900 THEN power_kw * step_s / 3600.0 ELSE 0 END) AS energy_kwh,
           avg(power_kw) AS avg_kw,
           max(power_kw) AS max_kw,
           count(*) AS samples
    FROM power_steps
    WHERE ts > %(start)s
    GROUP BY 1, 2
),
power_stats AS (
    SELECT machine_id, date_trunc('hour', quarter_start) AS hour_start,
           sum(energy_kwh) AS energy_kwh,
           sum(avg_kw * samples) / sum(samples) AS avg_kw,
           max(max_kw) AS max_kw,
           max(avg_kw) AS peak_15min_kw,
           sum(samples) AS samples
    FROM quarters
    GROUP BY 1, 2
),
hours AS (
    SELECT machine_id, hour_start FROM counter_energy
    UNION SELECT machine_id, hour_start FROM interval_energy
    UNION SELECT machine_id, hour_start FROM power_stats
)
INSERT INTO core.hourly_energy (
    machine_id, hour_start, local_date, energy_kwh, energy_method,
    avg_kw, max_kw, peak_15min_kw, samples
)
SELECT h.machine_id,
       h.hour_start,
       (h.hour_start AT TIME ZONE s.timezone)::date,
       COALESCE(c.energy_kwh, i.energy_kwh, p.energy_kwh),
       CASE WHEN c.machine_id IS NOT NULL THEN 'counter'
            WHEN i.machine_id IS NOT NULL THEN 'interval'
            ELSE 'power' END,
       p.avg_kw,
       p.max_kw,
       p.peak_15min_kw,
       COALESCE(c.samples, i.samples, p.samples)
FROM hours h
JOIN core.machines m USING (machine_id)
JOIN core.sites s USING (site_id)
LEFT JOIN counter_energy c USING (machine_id, hour_start)
LEFT JOIN interval_energy i USING (machine_id, hour_start)
LEFT JOIN power_stats p USING (machine_id, hour_start)
