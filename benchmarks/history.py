"""Months of simulated history for the evaluation scripts: a scratch database, the reference plant
sampled once a minute (90 days land in a minute or two; the hourly kWh follow the same
physics as at the native 1–30 s), landed through ``land_batch`` and aggregated hourly."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import time
import uuid
from collections.abc import Iterator, Sequence

import psycopg
from psycopg import sql

from enms_dagster.db import connect, migrate
from enms_dagster.hourly.transforms import rebuild_hourly_drivers, rebuild_hourly_energy
from enms_dagster.plant import Plant, load_plant
from enms_dagster.plant.store import save_plant
from enms_dagster.settings import DEFAULT_PLANT_FILE
from enms_dagster.simulator.backfill import backfill_direct
from enms_dagster.simulator.faults import FaultLabel

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
FIRST_DAY = dt.datetime(2026, 1, 4, 23, tzinfo=dt.UTC)  # local midnight, Monday 5 January


def sampled_reference_plant(interval_s: int) -> Plant:
    plant = load_plant(DEFAULT_PLANT_FILE)
    return dataclasses.replace(
        plant,
        machine_types={
            name: dataclasses.replace(t, sample_interval_s=interval_s)
            for name, t in plant.machine_types.items()
        },
    )


@contextlib.contextmanager
def scratch_database(admin_dsn: str = ADMIN_DSN) -> Iterator[str]:
    """A migrated database of its own, dropped afterwards."""
    name = f"enms_eval_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(admin_dsn, dbname=name)
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def land_history(
    url: str,
    plant: Plant,
    days: int,
    seed: int,
    faults: Sequence[FaultLabel] = (),
) -> tuple[dt.datetime, dt.datetime, str]:
    """Register the plant, land ``days`` days from FIRST_DAY and build the hourly layer; return
    (start, end, a one-line summary)."""
    start, end = FIRST_DAY, FIRST_DAY + dt.timedelta(days=days)
    began = time.monotonic()
    with connect(url, autocommit=True) as conn:
        save_plant(conn, plant)
    landed = backfill_direct(plant, start, end, url, seed=seed, faults=list(faults))
    with connect(url, autocommit=True) as conn:
        rebuild_hourly_energy(conn, start, end)
        rebuild_hourly_drivers(conn, start, end)
    summary = (
        f"{landed.readings:,} readings over {days} days landed and aggregated in "
        f"{time.monotonic() - began:.0f} s"
    )
    return start, end, summary
