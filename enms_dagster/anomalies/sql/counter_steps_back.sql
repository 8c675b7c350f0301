-- Counter readings in [%(start)s, %(end)s) that stepped back from the reading before them, for
-- the counters in %(metrics)s: the meter was reset (replaced, or its controller restarted).
--
-- The same rules as hourly_energy.sql and the raw quality check: a drop is a rollover, not a
-- reset, when value + (max - previous) is under 1 percent of max, max being
-- core.metrics.rollover_at or, unset, the power of ten above the previous value. A reset someone
-- recorded in core.counter_resets at an instant in (previous ts, ts] is expected and not
-- returned. The first reading of the window is paired with the last one before it, fetched on
-- the (machine_id, metric, ts) primary key; each machine and counter is one range of that key.
SELECT m.machine_id, mt.metric, c.ts, c.prev_ts, c.prev_value, c.value
FROM core.machines m
CROSS JOIN core.metrics mt
CROSS JOIN LATERAL (
    SELECT r.ts, r.value,
           COALESCE(lag(r.ts) OVER w, (
               SELECT b.ts FROM raw.readings b
               WHERE b.machine_id = m.machine_id AND b.metric = mt.metric AND b.ts < %(start)s
               ORDER BY b.ts DESC LIMIT 1)) AS prev_ts,
           COALESCE(lag(r.value) OVER w, (
               SELECT b.value FROM raw.readings b
               WHERE b.machine_id = m.machine_id AND b.metric = mt.metric AND b.ts < %(start)s
               ORDER BY b.ts DESC LIMIT 1)) AS prev_value
    FROM raw.readings r
    WHERE r.machine_id = m.machine_id AND r.metric = mt.metric
      AND r.ts >= %(start)s AND r.ts < %(end)s
    WINDOW w AS (ORDER BY r.ts)
) AS c
CROSS JOIN LATERAL (
    SELECT COALESCE(mt.rollover_at,
                    power(10, floor(log(greatest(c.prev_value, 1e-9))) + 1)) AS wrap
) AS rollover
WHERE mt.metric = ANY(%(metrics)s)
  AND c.value < c.prev_value
  AND c.value + rollover.wrap - c.prev_value > 0.01 * rollover.wrap
  AND NOT EXISTS (
      SELECT 1 FROM core.counter_resets cr
      WHERE cr.machine_id = m.machine_id AND cr.metric = mt.metric
        AND cr.ts > c.prev_ts AND cr.ts <= c.ts)
ORDER BY m.machine_id, mt.metric, c.ts
