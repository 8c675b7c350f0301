-- One slice of the hourly energy window (readings in (slice_start, slice_end]), grouped for
-- rebuild_hourly_energy, which stages the slices of a day in parallel workers with CREATE TABLE
-- AS and then turns the groups into hours. PARALLEL SAFE holds: a call only reads, and each
-- window orders one machine's readings of one metric by the primary key.
--
-- * energy_kwh_total and parts_total: per hour (period_start) the growth within the hour — the
--   net (last less first reading) when the hour is plain growth (every reading between the first
--   and the last, growth within twice the rated power), otherwise step by step through
--   core.counter_step — and the step into the hour from the reading before it, as its own row
--   (span_from, span_to) when that reading lies in an earlier hour of the window, to be spread;
-- * power_kw: per quarter hour (period_start), state and whether the step is bridged, the sum of
--   power x step (kw_s), of the steps (step_s) and of the samples (sum_kw), and the largest.
--
-- The conventions (pairing, rollovers, resets, jumps, gaps, bridging) are in
-- enms_dagster/hourly/sql/hourly_energy.sql. History: migration 0006 (step by step), replaced
-- by 0012 (hour by hour); this file is the current definition.
CREATE OR REPLACE FUNCTION core.group_hourly_energy_readings(
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
COST 1000000 ROWS 1000
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    -- Counters: per hour (period_start) the growth within the hour, and the step into the hour
    -- from the reading before it, as its own row (span_from, span_to) when that reading lies in
    -- an earlier hour of the window, to be spread.
    SELECT k.machine_id, k.metric, c.last_hour, c.span_from, c.span_to, c.amount, c.samples,
           NULL::double precision, NULL::boolean, NULL::double precision, NULL::double precision,
           NULL::double precision, NULL::double precision
    FROM (
        SELECT m.machine_id, c.metric, mt.rollover_at,
               c.metric = 'parts_total' OR m.rated_power_kw IS NULL AS unlimited,
               m.rated_power_kw / 1800.0 AS max_kwh_per_s
        FROM core.machines m
        CROSS JOIN (VALUES ('energy_kwh_total'), ('parts_total')) AS c (metric)
        LEFT JOIN core.metrics mt ON mt.metric = c.metric
    ) AS k
    CROSS JOIN LATERAL (
        SELECT h.last_hour, x.span_from, x.span_to, x.amount, x.samples
        FROM (
            SELECT p.*,
                   COALESCE(lag(p.last_ts) OVER w, (
                       SELECT b.ts FROM raw.readings b
                       WHERE b.machine_id = k.machine_id AND b.metric = k.metric
                         AND b.ts <= slice_start
                       ORDER BY b.ts DESC LIMIT 1)) AS prev_ts,
                   COALESCE(lag(p.last_value) OVER w, (
                       SELECT b.value FROM raw.readings b
                       WHERE b.machine_id = k.machine_id AND b.metric = k.metric
                         AND b.ts <= slice_start
                       ORDER BY b.ts DESC LIMIT 1)) AS prev_value
            FROM (
                SELECT g.*,
                       (SELECT r.value FROM raw.readings r
                        WHERE r.machine_id = k.machine_id AND r.metric = k.metric
                          AND r.ts = g.first_ts AND r.ts > slice_start AND r.ts <= slice_end)
                           AS first_value,
                       (SELECT r.value FROM raw.readings r
                        WHERE r.machine_id = k.machine_id AND r.metric = k.metric
                          AND r.ts = g.last_ts AND r.ts > slice_start AND r.ts <= slice_end)
                           AS last_value
                FROM (
                    SELECT date_bin('1 hour', r.ts - interval '1 microsecond',
                                    timestamptz '2000-01-01 00:00Z') AS last_hour,
                           count(*) AS n, min(r.value) AS low, max(r.value) AS high,
                           min(r.ts) AS first_ts, max(r.ts) AS last_ts
                    FROM raw.readings r
                    WHERE r.machine_id = k.machine_id AND r.metric = k.metric
                      AND r.ts > slice_start AND r.ts <= slice_end
                    GROUP BY 1
                ) AS g
            ) AS p
            WINDOW w AS (ORDER BY p.last_hour)
        ) AS h
        CROSS JOIN LATERAL (
            SELECT h.prev_ts < h.last_hour AND h.last_hour > window_start AS spans,
                   core.counter_step(k.machine_id, k.metric, k.unlimited, k.max_kwh_per_s,
                                     k.rollover_at, h.first_ts, h.first_value, h.prev_ts,
                                     h.prev_value, max_gap_s) AS first_step,
                   CASE
                       WHEN h.n = 1 THEN 0
                       -- plain growth: the net
                       WHEN h.low >= h.first_value AND h.high <= h.last_value AND (
                           k.unlimited OR h.last_value - h.first_value
                               <= 0.01 + k.max_kwh_per_s
                                  * date_part('epoch', h.last_ts - h.first_ts))
                           THEN h.last_value - h.first_value
                       -- anything else: step by step (only such hours run this subquery)
                       ELSE (
                           SELECT sum(core.counter_step(
                               k.machine_id, k.metric, k.unlimited, k.max_kwh_per_s,
                               k.rollover_at, s.ts, s.value, s.prev_ts, s.prev_value,
                               max_gap_s))
                           FROM (
                               SELECT r.ts, r.value, lag(r.ts) OVER o AS prev_ts,
                                      lag(r.value) OVER o AS prev_value
                               FROM raw.readings r
                               WHERE r.machine_id = k.machine_id AND r.metric = k.metric
                                 AND r.ts >= h.first_ts AND r.ts <= h.last_ts
                                 AND r.ts > slice_start AND r.ts <= slice_end
                               WINDOW o AS (ORDER BY r.ts)
                           ) AS s
                           WHERE s.prev_ts IS NOT NULL)
                   END AS within
        ) AS f
        CROSS JOIN LATERAL (VALUES
            (NULL::timestamptz, NULL::timestamptz,
             f.within + CASE WHEN f.spans THEN 0 ELSE f.first_step END, h.n),
            (greatest(h.prev_ts, window_start), h.first_ts,
             CASE WHEN f.spans THEN f.first_step END, 0::bigint)
        ) AS x (span_from, span_to, amount, samples)
        WHERE x.amount IS NOT NULL
    ) AS c
    UNION ALL
    -- Power: per quarter hour (period_start), state and whether the step is bridged, the sum of
    -- power x step (kw_s), of the steps (step_s) and of the samples (sum_kw), and the largest.
    SELECT m.machine_id, 'power_kw', q.quarter_start, NULL, NULL, NULL, q.samples,
           q.state, q.bridged, q.kw_s, q.step_s, q.sum_kw, q.max_kw
    FROM core.machines m
    CROSS JOIN LATERAL (
        SELECT quarter_start, state,
               step_s <= max_gap_s AS bridged,
               sum(power_kw * step_s) AS kw_s,
               sum(step_s) AS step_s,
               sum(power_kw) AS sum_kw,
               max(power_kw) AS max_kw,
               count(*) AS samples
        FROM (
            SELECT p.value AS power_kw, st.value AS state,
                   date_bin('15 minutes', p.ts - interval '1 microsecond',
                            timestamptz '2000-01-01 00:00Z') AS quarter_start,
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
