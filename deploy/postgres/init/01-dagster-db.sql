-- Run once by the timescaledb image's entrypoint, on an empty data volume only, as
-- POSTGRES_USER connected to POSTGRES_DB (the EnMS database, created by the entrypoint).
-- Dagster keeps its run, event-log and schedule storage in a database of its own on the
-- same server, so it can be backed up, vacuumed or reset independently of the energy data.
-- The name must match DAGSTER_POSTGRES_DB in compose.yaml.
CREATE DATABASE dagster;
