-- Hourly energy reads a counter hour by hour instead of reading by reading (issue 5).
--
-- Migration 0006 paired every counter reading with the one before it (a window function) and
-- judged each step on its own. Most hours of a counter are plain growth, and for those the sum
-- of the steps is the last reading less the first: an hour is now read from its count, lowest
-- and highest value, first and last reading (one aggregate pass and two primary-key lookups),
-- and only an hour that is not plain growth is read step by step. On the reference plant this
-- takes a quarter off the hourly energy of a day, and every row of the benchmark day is the
-- same as before (benchmarks/bench_hourly.py).
--
-- Plain growth: every reading of the hour lies between its first and its last reading, and the
-- growth from first to last is within twice the rated power over that time (the jump rule of a
-- step, applied to the hour). A reset, a rollover or a jump beyond that breaks it and sends the
-- hour through the steps, as before. What reads differently from 0006: a register that dips
-- and recovers inside those bounds counts its net growth (0006 took each dip for a reset), and a
-- single step that outruns the rated power while the hour as a whole does not is energy (0006
-- replaced it by integrated power). The step from the reading before the hour to its first
-- reading is always judged on its own, so gaps are still spread and late data stays in its own
-- day. The conventions are in sql/transforms/hourly_energy.sql.

-- The energy (or parts) of one counter step, from prev to this reading. A step up is growth
-- unless it is more than twice the rated power could draw in the interval (a meter replaced or
-- re-based); a drop within 1 % of the counter's maximum (rollover_at, or the power of ten above
-- the previous value) is a rollover; any other drop, and any jump, is integrated from the power
-- reported at that instant over the interval (at most max_gap_s; 0 without power). A parts
-- counter counts its new value after a reset.
CREATE FUNCTION core.counter_step(
    machine_id text,
    metric text,
    unlimited boolean,
    max_kwh_per_s double precision,
    rollover_at double precision,
    ts timestamptz,
    value double precision,
    prev_ts timestamptz,
    prev_value double precision,
    max_gap_s double precision
) RETURNS double precision
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN prev_value IS NULL THEN 0
        WHEN value >= prev_value AND (unlimited OR value - prev_value
                <= 0.01 + max_kwh_per_s * date_part('epoch', ts - prev_ts))
            THEN value - prev_value
        WHEN value < prev_value AND value + w.wrap - prev_value <= 0.01 * w.wrap
            THEN value + w.wrap - prev_value
        WHEN metric = 'parts_total' THEN value
        ELSE COALESCE((
            SELECT p.value FROM raw.readings p
            WHERE p.machine_id = counter_step.machine_id AND p.metric = 'power_kw'
              AND p.ts = counter_step.ts
        ), 0) * least(date_part('epoch', ts - prev_ts), max_gap_s) / 3600.0
    END
    FROM (SELECT COALESCE(rollover_at, power(10, floor(log(greatest(prev_value, 1e-9))) + 1))
                 AS wrap) AS w
$$;
COMMENT ON FUNCTION core.counter_step IS
    'Energy (or parts) of one counter step: growth, rollover, or a reset or jump integrated '
    'from power. Conventions in sql/transforms/hourly_energy.sql.';

-- Same signature and result as in 0006; the counter half now works per hour.
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
