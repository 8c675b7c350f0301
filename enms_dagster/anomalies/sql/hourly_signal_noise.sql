-- How unsteady each gauge metric in %(metrics)s was, per machine-hour of core.hourly_energy that
-- starts in [%(start)s, %(end)s): one row per machine-hour and metric (samples 0 where the machine
-- publishes no such readings, so a row marks the hour as computed).
--
-- An hour holds the readings of (hour_start, hour_start + 1 h], as in hourly_energy.sql. Its
-- noise is the 75th percentile of the absolute change between consecutive readings of the hour:
-- a signal with more scatter steps further from one reading to the next, while a start-up or a
-- changeover moves only a few steps. Each machine-hour reads one range of the
-- (machine_id, metric, ts) primary key.
INSERT INTO core.hourly_signal_noise (machine_id, metric, hour_start, samples, mean_value, noise)
SELECT e.machine_id, mt.metric, e.hour_start, n.samples, n.mean_value, n.noise
FROM core.hourly_energy e
CROSS JOIN core.metrics mt
CROSS JOIN LATERAL (
    SELECT count(*) AS samples,
           avg(s.value) AS mean_value,
           percentile_cont(0.75) WITHIN GROUP (ORDER BY abs(s.step)) AS noise
    FROM (
        SELECT r.value, r.value - lag(r.value) OVER (ORDER BY r.ts) AS step
        FROM raw.readings r
        WHERE r.machine_id = e.machine_id AND r.metric = mt.metric
          AND r.ts > e.hour_start AND r.ts <= e.hour_start + interval '1 hour'
    ) AS s
) AS n
WHERE mt.metric = ANY(%(metrics)s)
  AND e.hour_start >= %(start)s AND e.hour_start < %(end)s
