-- The energy (or parts) of one counter step, from prev to this reading. A step up is growth
-- unless it is more than twice the rated power could draw in the interval (a meter replaced or
-- re-based); a drop within 1 % of the counter's maximum (rollover_at, or the power of ten above
-- the previous value) is a rollover; any other drop, and any jump, is integrated from the power
-- reported at that instant over the interval (at most max_gap_s; 0 without power). A parts
-- counter counts its new value after a reset. First defined in migration 0012; the conventions
-- are in enms_dagster/hourly/sql/hourly_energy.sql.
CREATE OR REPLACE FUNCTION core.counter_step(
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
    'from power. Conventions in enms_dagster/hourly/sql/hourly_energy.sql.';
