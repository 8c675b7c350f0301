-- Runs of identical power readings per machine, for the readings in
-- (%(start)s - %(margin)s, %(end)s + %(margin)s]: the margin lets a run that crosses an edge of
-- the window be seen whole, whichever day is computed first.
--
-- A live sensor's readings carry noise, so consecutive readings repeat exactly only while the
-- value is frozen or the load is genuinely constant (a motor idling, heaters on standby);
-- analytics/anomalies.py tells the two apart from the states reported during the run. Readings
-- of exactly 0 kW while the machine reports 'off' (state 0), or reports no state, are quiet: a
-- machine that is switched off draws nothing. The state is the one reported at the same instant,
-- as in hourly_energy.sql. A run is a maximal sequence of consecutive readings with the same value
-- and the same quietness; quiet runs, and runs of fewer than %(min_samples)s readings or shorter
-- than %(min_duration)s, are not returned.
--
-- One pass per machine over a range of the (machine_id, metric, ts) primary key.
SELECT m.machine_id, f.power_kw, f.first_ts, f.last_ts, f.samples,
       f.running_samples, f.idle_samples, f.off_samples
FROM core.machines m
CROSS JOIN LATERAL (
    SELECT min(value) AS power_kw,
           min(ts) AS first_ts,
           max(ts) AS last_ts,
           count(*) AS samples,
           count(*) FILTER (WHERE state = 2) AS running_samples,
           count(*) FILTER (WHERE state = 1) AS idle_samples,
           count(*) FILTER (WHERE state = 0) AS off_samples
    FROM (
        SELECT ts, value, state, quiet, count(*) FILTER (WHERE changed) OVER (ORDER BY ts) AS run
        FROM (
            SELECT ts, value, state, quiet,
                   value IS DISTINCT FROM lag(value) OVER w
                       OR quiet IS DISTINCT FROM lag(quiet) OVER w AS changed
            FROM (
                SELECT p.ts, p.value, st.value AS state,
                       p.value = 0 AND COALESCE(st.value, 0) = 0 AS quiet
                FROM raw.readings p
                LEFT JOIN raw.readings st
                    ON st.machine_id = m.machine_id AND st.metric = 'state' AND st.ts = p.ts
                   AND st.ts > %(start)s - %(margin)s AND st.ts <= %(end)s + %(margin)s
                WHERE p.machine_id = m.machine_id AND p.metric = 'power_kw'
                  AND p.ts > %(start)s - %(margin)s AND p.ts <= %(end)s + %(margin)s
            ) AS readings
            WINDOW w AS (ORDER BY ts)
        ) AS steps
    ) AS runs
    WHERE NOT quiet
    GROUP BY run
    HAVING count(*) >= %(min_samples)s AND max(ts) - min(ts) >= %(min_duration)s
) AS f
ORDER BY m.machine_id, f.first_ts
