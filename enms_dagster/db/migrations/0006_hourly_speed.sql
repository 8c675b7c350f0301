-- Hourly energy reads a day's readings in slices that run side by side (issue 5).
--
-- The readings of one machine and metric are paired with the reading before them by a window
-- function. The planner keeps window functions out of parallel workers (it cannot know that
-- their input order is deterministic), and PostgreSQL 15 runs no INSERT ... SELECT in parallel,
-- so one process read the whole window. The per-reading work of sql/transforms/hourly_energy.sql
-- therefore lives here, one slice of the window per call: rebuild_hourly_energy stages the
-- slices with CREATE TABLE AS, whose Parallel Append runs the calls in the leader and the
-- workers side by side, then inserts the hours. PARALLEL SAFE holds: a call only reads, and each
-- window orders one machine's readings of one metric by the primary key, so a worker gets
-- exactly the answer the leader would.
--
-- Returns the readings of (slice_start, slice_end] in groups, a few thousand rows per day:
-- * energy_kwh_total and parts_total: the counter steps of each hour (period_start), priced, and
--   one row per step that reaches back into an earlier hour (span_from, span_to), to be spread;
-- * power_kw: per quarter hour (period_start), state and whether the step is bridged, the sum of
--   power x step (kw_s), of the steps (step_s) and of the samples (sum_kw), and the largest.
-- The conventions (pairing, rollovers, resets, jumps, gaps, bridging) are in hourly_energy.sql.
CREATE FUNCTION core.group_hourly_energy_readings(
    slice_start timestamptz,
    slice_end timestamptz,
    window_start timestamptz,
    max_gap_s double precision
) RETURNS TABLE (
    machine_id text,
    metric text,
    period_start timestamptz,
    span_from timestamptz,
    span_to timestamptz,
    amount double precision,
    samples bigint,
    state double precision,
    bridged boolean,
    kw_s double precision,
    step_s double precision,
    sum_kw double precision,
    max_kw double precision
)
LANGUAGE plpgsql STABLE PARALLEL SAFE
-- A slice reads some 10^5 readings: the cost tells the planner that parallel workers pay off.
COST 1000000 ROWS 1000
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT m.machine_id, k.metric, g.last_hour, g.span_from, g.span_to, g.amount, g.samples,
           NULL::double precision, NULL::boolean, NULL::double precision, NULL::double precision,
           NULL::double precision, NULL::double precision
    FROM core.machines m
    CROSS JOIN (VALUES ('energy_kwh_total'), ('parts_total')) AS k (metric)
    LEFT JOIN core.metrics mt ON mt.metric = k.metric
    CROSS JOIN LATERAL (
        SELECT last_hour,
               CASE WHEN from_ts < last_hour THEN from_ts END AS span_from,
               CASE WHEN from_ts < last_hour THEN ts END AS span_to,
               sum(amount) AS amount,
               count(*) AS samples
        FROM (
            SELECT ts,
                   greatest(COALESCE(prev_ts, ts - interval '1 microsecond'), window_start)
                       AS from_ts,
                   date_bin('1 hour', ts - interval '1 microsecond',
                            timestamptz '2000-01-01 00:00Z') AS last_hour,
                   CASE
                       WHEN prev_value IS NULL THEN 0
                       -- a step up no machine of that rating could draw (a meter replaced,
                       -- a controller re-based) is not energy: priced from power below
                       WHEN value >= prev_value AND (
                           k.metric = 'parts_total' OR m.rated_power_kw IS NULL
                           OR value - prev_value <= 0.01 + 2 * m.rated_power_kw
                               * date_part('epoch', ts - prev_ts) / 3600.0)
                           THEN value - prev_value
                       WHEN value + wrap - prev_value <= 0.01 * wrap
                           THEN value + wrap - prev_value
                       WHEN k.metric = 'parts_total' THEN value
                       ELSE COALESCE((
                           SELECT p.value FROM raw.readings p
                           WHERE p.machine_id = m.machine_id AND p.metric = 'power_kw'
                             AND p.ts = c.ts
                       ), 0) * least(date_part('epoch', ts - prev_ts), max_gap_s) / 3600.0
                   END AS amount
            FROM (
                SELECT r.ts, r.value,
                       COALESCE(lag(r.ts) OVER w, (
                           SELECT b.ts FROM raw.readings b
                           WHERE b.machine_id = m.machine_id AND b.metric = k.metric
                             AND b.ts <= slice_start
                           ORDER BY b.ts DESC LIMIT 1)) AS prev_ts,
                       COALESCE(lag(r.value) OVER w, (
                           SELECT b.value FROM raw.readings b
                           WHERE b.machine_id = m.machine_id AND b.metric = k.metric
                             AND b.ts <= slice_start
                           ORDER BY b.ts DESC LIMIT 1)) AS prev_value
                FROM raw.readings r
                WHERE r.machine_id = m.machine_id AND r.metric = k.metric
                  AND r.ts > slice_start AND r.ts <= slice_end
                WINDOW w AS (ORDER BY r.ts)
            ) AS c
            CROSS JOIN LATERAL (  -- the counter's maximum, worked out for drops only
                SELECT CASE WHEN c.value < c.prev_value THEN COALESCE(
                    mt.rollover_at, power(10, floor(log(greatest(c.prev_value, 1e-9))) + 1))
                END AS wrap
            ) AS rollover
            OFFSET 0  -- keeps from_ts and last_hour computed once per reading
        ) AS s
        GROUP BY 1, 2, 3
    ) AS g
    UNION ALL
    SELECT m.machine_id, 'power_kw', q.quarter_start, NULL, NULL, NULL, q.samples,
           q.state, q.bridged, q.kw_s, q.step_s, q.sum_kw, q.max_kw
    FROM core.machines m
    CROSS JOIN LATERAL (
        SELECT date_bin('15 minutes', ts - interval '1 microsecond',
                        timestamptz '2000-01-01 00:00Z') AS quarter_start,
               state,
               step_s <= max_gap_s AS bridged,
               sum(power_kw * step_s) AS kw_s,
               sum(step_s) AS step_s,
               sum(power_kw) AS sum_kw,
               max(power_kw) AS max_kw,
               count(*) AS samples
        FROM (
            SELECT p.ts, p.value AS power_kw, st.value AS state,
                   date_part('epoch', p.ts - COALESCE(lag(p.ts) OVER (ORDER BY p.ts), (
                       SELECT b.ts FROM raw.readings b
                       WHERE b.machine_id = m.machine_id AND b.metric = 'power_kw'
                         AND b.ts <= slice_start
                       ORDER BY b.ts DESC LIMIT 1))) AS step_s
            FROM raw.readings p
            LEFT JOIN raw.readings st
                ON st.machine_id = m.machine_id AND st.metric = 'state' AND st.ts = p.ts
               AND st.ts > slice_start AND st.ts <= slice_end
            WHERE p.machine_id = m.machine_id AND p.metric = 'power_kw'
              AND p.ts > slice_start AND p.ts <= slice_end
        ) AS x
        GROUP BY 1, 2, 3
    ) AS q;
END
$$;
COMMENT ON FUNCTION core.group_hourly_energy_readings IS
    'One slice of the hourly energy window, grouped per hour (counters) and quarter hour '
    '(power); PARALLEL SAFE so that the slices of a day run in parallel workers.';
