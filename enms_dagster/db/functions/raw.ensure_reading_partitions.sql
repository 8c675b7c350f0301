-- Creates the daily partitions of raw.readings that [from_ts, to_ts] needs (no-op under
-- TimescaleDB). The landing calls it before it writes a batch; first defined in migration 0001.
CREATE OR REPLACE FUNCTION raw.ensure_reading_partitions(from_ts timestamptz, to_ts timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    day date := (from_ts AT TIME ZONE 'UTC')::date;
    last_day date := (to_ts AT TIME ZONE 'UTC')::date;
    part text;
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_partitioned_table p
        JOIN pg_class c ON c.oid = p.partrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'raw' AND c.relname = 'readings'
    ) THEN
        RETURN;
    END IF;
    WHILE day <= last_day LOOP
        part := 'readings_' || to_char(day, 'YYYYMMDD');
        IF to_regclass(format('raw.%I', part)) IS NULL THEN
            BEGIN
                EXECUTE format(
                    'CREATE TABLE IF NOT EXISTS raw.%I PARTITION OF raw.readings '
                    'FOR VALUES FROM (%L) TO (%L)',
                    part, (day::timestamp AT TIME ZONE 'UTC'),
                    ((day + 1)::timestamp AT TIME ZONE 'UTC'));
            EXCEPTION WHEN duplicate_table OR unique_violation THEN
                NULL;  -- a concurrent landing created it first
            END;
        END IF;
        day := day + 1;
    END LOOP;
END
$$;
