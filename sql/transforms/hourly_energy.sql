-- Hourly energy per machine for the readings in (%(start)s, %(end)s]; hours are UTC-aligned and
-- the rows are the hours starting in [start, end).
--
-- Conventions
-- * A reading at ts covers the interval that ends at ts, so it belongs to the hour of
--   (ts - 1 microsecond): the counter step at 10:00:00 is energy drawn before 10:00.
-- * The first reading of each machine and metric in the window is paired with the last reading
--   at or before the window start, fetched on the (machine_id, metric, ts) primary key however
--   long ago it was (a scalar subquery that runs once per machine and metric, not per row).
-- * Energy comes from the cumulative counter where the machine has one, else from interval
--   energy, else from power integrated over the sample spacing; energy_method records which.
-- * Counter steps: value - previous when it grows. When it drops, it is a rollover if
--   value + (max - previous) is under 1 percent of max, max being core.metrics.rollover_at or, unset,
--   the power of ten above the previous value (99 999.5 -> 0.7 is 1.2 kWh); any other drop is a
--   reset, whose interval is integrated from the power reported with it (0 without power, never
--   negative). Parts counters count the new value after a reset (they restart from zero).
-- * Gaps: a counter step is spread evenly over the hours of (previous ts, ts] that lie inside
--   the window: a five-hour outage puts a fifth of the step into each hour (rows with 0 samples
--   and completeness 0 mark the hours of the gap) instead of one spike. The part of a gap before
--   the window start is spread over the window's hours of the gap, so every reading's energy
--   stays in its own day and late data changes only that day.
-- * Power steps longer than %(max_gap_s)s seconds are not bridged (no power energy, no state
--   time). State hours and idle kWh pair each power reading with the state reported at the same
--   instant, over the power sample's spacing.
-- * avg_kw is the mean of the power samples of the hour, peak_15min_kw the highest mean of a
--   quarter hour, completeness = samples / (3600 / machine_types.sample_interval_s).
-- Each stream reads one metric of one machine at a time as a range of the primary key (a
-- LATERAL per machine), so only the rows needed are read and no window function sorts.
WITH counter_steps AS (
    SELECT m.machine_id, c.ts, c.value,
           COALESCE(c.prev_ts, (
               SELECT r.ts FROM raw.readings r
               WHERE r.machine_id = m.machine_id AND r.metric = 'energy_kwh_total'
                 AND r.ts <= %(start)s
               ORDER BY r.ts DESC LIMIT 1)) AS prev_ts,
           COALESCE(c.prev_value, (
               SELECT r.value FROM raw.readings r
               WHERE r.machine_id = m.machine_id AND r.metric = 'energy_kwh_total'
                 AND r.ts <= %(start)s
               ORDER BY r.ts DESC LIMIT 1)) AS prev_value
    FROM core.machines m
    CROSS JOIN LATERAL (
        SELECT r.ts, r.value, lag(r.ts) OVER w AS prev_ts, lag(r.value) OVER w AS prev_value
        FROM raw.readings r
        WHERE r.machine_id = m.machine_id AND r.metric = 'energy_kwh_total'
          AND r.ts > %(start)s AND r.ts <= %(end)s
        WINDOW w AS (ORDER BY r.ts)
    ) AS c
),
counter_kwh AS (
    SELECT machine_id, ts, prev_ts,
           CASE
               WHEN prev_value IS NULL THEN 0
               WHEN value >= prev_value THEN value - prev_value
               WHEN value + wrap - prev_value <= 0.01 * wrap THEN value + wrap - prev_value
               ELSE COALESCE((
                   SELECT p.value FROM raw.readings p
                   WHERE p.machine_id = s.machine_id AND p.metric = 'power_kw' AND p.ts = s.ts
               ), 0) * least(date_part('epoch', ts - prev_ts), %(max_gap_s)s) / 3600.0
           END AS kwh
    FROM (
        SELECT *,
               COALESCE(
                   (SELECT rollover_at FROM core.metrics WHERE metric = 'energy_kwh_total'),
                   power(10, floor(log(greatest(prev_value, 1e-9))) + 1)
               ) AS wrap
        FROM counter_steps
    ) AS s
),
parts_steps AS (
    SELECT m.machine_id, c.ts, c.value,
           COALESCE(c.prev_ts, (
               SELECT r.ts FROM raw.readings r
               WHERE r.machine_id = m.machine_id AND r.metric = 'parts_total'
                 AND r.ts <= %(start)s
               ORDER BY r.ts DESC LIMIT 1)) AS prev_ts,
           COALESCE(c.prev_value, (
               SELECT r.value FROM raw.readings r
               WHERE r.machine_id = m.machine_id AND r.metric = 'parts_total'
                 AND r.ts <= %(start)s
               ORDER BY r.ts DESC LIMIT 1)) AS prev_value
    FROM core.machines m
    CROSS JOIN LATERAL (
        SELECT r.ts, r.value, lag(r.ts) OVER w AS prev_ts, lag(r.value) OVER w AS prev_value
        FROM raw.readings r
        WHERE r.machine_id = m.machine_id AND r.metric = 'parts_total'
          AND r.ts > %(start)s AND r.ts <= %(end)s
        WINDOW w AS (ORDER BY r.ts)
    ) AS c
),
parts_count AS (
    SELECT machine_id, ts, prev_ts,
           CASE
               WHEN prev_value IS NULL THEN 0
               WHEN value >= prev_value THEN value - prev_value
               WHEN value + wrap - prev_value <= 0.01 * wrap THEN value + wrap - prev_value
               ELSE value
           END AS amount
    FROM (
        SELECT *,
               COALESCE(
                   (SELECT rollover_at FROM core.metrics WHERE metric = 'parts_total'),
                   power(10, floor(log(greatest(prev_value, 1e-9))) + 1)
               ) AS wrap
        FROM parts_steps
    ) AS s
),
-- counter steps (energy and parts) spread over the hours of their interval inside the window
counter_spread AS (
    SELECT machine_id, metric, ts, amount, from_ts, hour_start,
           CASE WHEN first_hour = last_hour THEN amount
                ELSE amount * date_part('epoch', least(ts, hour_start + interval '1 hour')
                                                  - greatest(from_ts, hour_start))
                     / date_part('epoch', ts - from_ts)
           END AS share
    FROM (
        SELECT *,
               generate_series(first_hour, last_hour, interval '1 hour') AS hour_start
        FROM (
            SELECT machine_id, metric, ts, amount, from_ts,
                   date_bin('1 hour', from_ts, timestamptz '2000-01-01 00:00Z') AS first_hour,
                   date_bin('1 hour', ts - interval '1 microsecond',
                            timestamptz '2000-01-01 00:00Z') AS last_hour
            FROM (
                SELECT machine_id, 'energy' AS metric, ts, kwh AS amount,
                       greatest(COALESCE(prev_ts, ts - interval '1 microsecond'), %(start)s)
                           AS from_ts
                FROM counter_kwh
                UNION ALL
                SELECT machine_id, 'parts', ts, amount,
                       greatest(COALESCE(prev_ts, ts - interval '1 microsecond'), %(start)s)
                FROM parts_count
            ) AS u
        ) AS b
    ) AS g
),
counter_hours AS (
    SELECT machine_id, hour_start,
           sum(share) FILTER (WHERE metric = 'energy') AS energy_kwh,
           count(*) FILTER (WHERE metric = 'energy' AND hour_start = date_bin(
               '1 hour', ts - interval '1 microsecond', timestamptz '2000-01-01 00:00Z'))
               AS samples,
           sum(share) FILTER (WHERE metric = 'parts') AS parts
    FROM counter_spread
    GROUP BY 1, 2
),
interval_hours AS (
    SELECT m.machine_id,
           date_bin('1 hour', r.ts - interval '1 microsecond', timestamptz '2000-01-01 00:00Z')
               AS hour_start,
           sum(r.value) AS energy_kwh, count(*) AS samples
    FROM core.machines m
    JOIN raw.readings r
        ON r.machine_id = m.machine_id AND r.metric = 'energy_kwh_interval'
       AND r.ts > %(start)s AND r.ts <= %(end)s
    GROUP BY 1, 2
),
power_steps AS (
    SELECT m.machine_id, x.ts, x.power_kw, x.state,
           date_part('epoch', x.ts - COALESCE(x.prev_ts, (
               SELECT r.ts FROM raw.readings r
               WHERE r.machine_id = m.machine_id AND r.metric = 'power_kw'
                 AND r.ts <= %(start)s
               ORDER BY r.ts DESC LIMIT 1))) AS step_s
    FROM core.machines m
    CROSS JOIN LATERAL (
        SELECT p.ts, p.value AS power_kw, st.value AS state,
               lag(p.ts) OVER (ORDER BY p.ts) AS prev_ts
        FROM raw.readings p
        LEFT JOIN raw.readings st
            ON st.machine_id = m.machine_id AND st.metric = 'state' AND st.ts = p.ts
           AND st.ts > %(start)s AND st.ts <= %(end)s
        WHERE p.machine_id = m.machine_id AND p.metric = 'power_kw'
          AND p.ts > %(start)s AND p.ts <= %(end)s
    ) AS x
),
quarters AS (
    SELECT machine_id,
           date_bin('15 minutes', ts - interval '1 microsecond', timestamptz '2000-01-01 00:00Z')
               AS quarter_start,
           sum(CASE WHEN step_s <= %(max_gap_s)s THEN power_kw * step_s END) / 3600.0
               AS energy_kwh,
           sum(CASE WHEN step_s <= %(max_gap_s)s AND state = 1 THEN power_kw * step_s END)
               / 3600.0 AS idle_kwh,
           sum(CASE WHEN step_s <= %(max_gap_s)s AND state = 2 THEN step_s END) AS running_s,
           sum(CASE WHEN step_s <= %(max_gap_s)s AND state = 1 THEN step_s END) AS idle_s,
           sum(CASE WHEN step_s <= %(max_gap_s)s AND state = 0 THEN step_s END) AS off_s,
           sum(power_kw) AS sum_kw,
           max(power_kw) AS max_kw,
           count(*) AS samples
    FROM power_steps
    GROUP BY 1, 2
),
power_hours AS (
    SELECT machine_id,
           date_bin('1 hour', quarter_start, timestamptz '2000-01-01 00:00Z') AS hour_start,
           COALESCE(sum(energy_kwh), 0) AS energy_kwh,
           sum(idle_kwh) AS idle_kwh,
           COALESCE(sum(running_s), 0) / 3600.0 AS running_h,
           COALESCE(sum(idle_s), 0) / 3600.0 AS idle_h,
           COALESCE(sum(off_s), 0) / 3600.0 AS off_h,
           sum(sum_kw) / sum(samples) AS avg_kw,
           max(max_kw) AS max_kw,
           max(sum_kw / samples) AS peak_15min_kw,
           sum(samples) AS samples
    FROM quarters
    GROUP BY 1, 2
),
hours AS (
    SELECT machine_id, hour_start FROM counter_hours WHERE energy_kwh IS NOT NULL
    UNION SELECT machine_id, hour_start FROM interval_hours
    UNION SELECT machine_id, hour_start FROM power_hours
)
INSERT INTO core.hourly_energy (
    machine_id, hour_start, local_date, energy_kwh, energy_method, power_kwh,
    avg_kw, max_kw, peak_15min_kw, running_h, idle_h, off_h, idle_kwh, parts,
    samples, expected_samples, completeness
)
SELECT h.machine_id,
       h.hour_start,
       (h.hour_start AT TIME ZONE s.timezone)::date,
       COALESCE(c.energy_kwh, i.energy_kwh, p.energy_kwh),
       CASE WHEN c.energy_kwh IS NOT NULL THEN 'counter'
            WHEN i.machine_id IS NOT NULL THEN 'interval'
            ELSE 'power' END,
       p.energy_kwh,
       p.avg_kw,
       p.max_kw,
       p.peak_15min_kw,
       COALESCE(p.running_h, 0),
       COALESCE(p.idle_h, 0),
       COALESCE(p.off_h, 0),
       p.idle_kwh,
       c.parts,
       COALESCE(CASE WHEN c.energy_kwh IS NOT NULL THEN c.samples END, i.samples, p.samples, 0),
       round(3600.0 / t.sample_interval_s),
       COALESCE(CASE WHEN c.energy_kwh IS NOT NULL THEN c.samples END, i.samples, p.samples, 0)
           / (3600.0 / t.sample_interval_s)
FROM hours h
JOIN core.machines m USING (machine_id)
JOIN core.machine_types t USING (machine_type)
JOIN core.sites s USING (site_id)
LEFT JOIN counter_hours c USING (machine_id, hour_start)
LEFT JOIN interval_hours i USING (machine_id, hour_start)
LEFT JOIN power_hours p USING (machine_id, hour_start)
WHERE h.hour_start >= %(start)s AND h.hour_start < %(end)s
