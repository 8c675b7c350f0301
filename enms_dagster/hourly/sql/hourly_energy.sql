-- Hourly energy per machine for the readings in (%(start)s, %(end)s]; hours are UTC-aligned and
-- the rows are the hours starting in [start, end).
--
-- Conventions
-- * A reading at ts covers the interval that ends at ts, so it belongs to the hour of
--   (ts - 1 microsecond): the counter step at 10:00:00 is energy drawn before 10:00.
-- * The first reading of each machine and metric in the window is paired with the last reading
--   at or before the window start, fetched on the (machine_id, metric, ts) primary key however
--   long ago it was (a scalar subquery run once per machine and metric, not per row).
-- * Energy comes from the cumulative counter where the machine has one, else from interval
--   energy, else from power integrated over the sample spacing; energy_method records which.
-- * Counter steps: value - previous when it grows. When it drops, it is a rollover if
--   value + (max - previous) is under 1 percent of max, max being core.metrics.rollover_at or, unset,
--   the power of ten above the previous value (99 999.5 -> 0.7 is 1.2 kWh); any other drop is a
--   reset, whose interval is integrated from the power reported with it (0 without power, never
--   negative). Parts counters count the new value after a reset (they restart from zero).
--   A step up larger than twice the machine's rated power over the step's interval is a jump
--   (a meter replaced, a controller re-based), not energy: integrated from power like a reset.
-- * Within an hour, a counter whose readings all lie between the hour's first and last reading,
--   and whose growth from first to last is within twice the rated power over that time, counts
--   that growth (a register that dips and recovers inside those bounds nets out); any other
--   hour is read step by step as above. The step from the reading before the hour to the hour's
--   first reading is always judged on its own.
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
--
-- The readings are read by core.group_hourly_energy_readings (db/functions/), one
-- slice of the window per call, so that the slices run in parallel workers; a slice's first
-- reading is paired with the last one before the slice, exactly as without slices, and slices
-- are cut at whole hours, so an hour of a counter is never split. Each stream reads one metric
-- of one machine at a time as a range of the primary key (a LATERAL per machine), so only the
-- rows needed are read and no window function sorts, and sums them per hour (quarter hour for
-- power) right there. rebuild_hourly_energy stages those groups, a few thousand rows a day, in the
-- temporary table hourly_energy_groups; this statement spreads the counter steps that reach back
-- into earlier hours and turns the groups into hours.
WITH counter_hours AS (
    SELECT machine_id, hour_start,
           sum(share) FILTER (WHERE metric = 'energy_kwh_total') AS energy_kwh,
           COALESCE(sum(samples) FILTER (
               WHERE metric = 'energy_kwh_total' AND hour_start = last_hour), 0) AS samples,
           sum(share) FILTER (WHERE metric = 'parts_total') AS parts
    FROM (
        SELECT machine_id, metric, last_hour, samples, hour_start,
               CASE WHEN span_from IS NULL THEN amount
                    ELSE amount * date_part('epoch', least(span_to, hour_start + interval '1 hour')
                                                      - greatest(span_from, hour_start))
                         / date_part('epoch', span_to - span_from)
               END AS share
        FROM (
            SELECT machine_id, metric, period_start AS last_hour, span_from, span_to, amount,
                   samples,
                   generate_series(
                       date_bin('1 hour', COALESCE(span_from, period_start),
                                timestamptz '2000-01-01 00:00Z'),
                       period_start, interval '1 hour') AS hour_start
            FROM hourly_energy_groups
            WHERE metric IN ('energy_kwh_total', 'parts_total')
        ) AS g
    ) AS spread
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
quarters AS (
    SELECT machine_id, period_start AS quarter_start,
           sum(kw_s) FILTER (WHERE bridged) / 3600.0 AS energy_kwh,
           sum(kw_s) FILTER (WHERE bridged AND state = 1) / 3600.0 AS idle_kwh,
           sum(step_s) FILTER (WHERE bridged AND state = 2) AS running_s,
           sum(step_s) FILTER (WHERE bridged AND state = 1) AS idle_s,
           sum(step_s) FILTER (WHERE bridged AND state = 0) AS off_s,
           sum(sum_kw) AS sum_kw,
           max(max_kw) AS max_kw,
           sum(samples)::bigint AS samples
    FROM hourly_energy_groups
    WHERE metric = 'power_kw'
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
