"""Partitioning shared by the assets: one partition per local day of the plant.

Machines are a column, not a partition dimension (partition counts in the tens of thousands make
the UI slow). Days are those of the plant's sites, read from the plant file (``ENMS_PLANT_FILE``,
else the reference plant) when the definitions are built, not when a module is imported: a plant
in New York gets New York days. They begin at the plant's first day of data (``history_start``
in the plant file, else the first landed day in the warehouse), so any age of history has
partitions and the partition bar shows real gaps.
"""

import datetime as dt
import logging
import os
from zoneinfo import ZoneInfo

import dagster as dg
import psycopg

from enms_dagster.db import connect
from enms_dagster.ingest.history import first_landed_day
from enms_dagster.plant import Plant, PlantFileError, load_plant
from enms_dagster.settings import DEFAULT_PLANT_FILE, Settings

log = logging.getLogger(__name__)

# Building the definitions must not wait long for a database that does not answer.
CONNECT_TIMEOUT_S = 3
STATEMENT_TIMEOUT_MS = 5000


def _plant(environ: dict[str, str]) -> tuple[Plant, str]:
    path = environ.get("ENMS_PLANT_FILE") or str(DEFAULT_PLANT_FILE)
    return load_plant(path), path


def plant_timezone(environ: dict[str, str] | None = None) -> str:
    """The time zone of the plant's days: the one its sites share. Sites in different zones
    cannot share daily partitions (a day would start at two different instants); such a plant
    runs one code location per zone, each with its own plant file."""
    plant, path = _plant(os.environ if environ is None else environ)
    zones = {site.timezone for site in plant.sites.values()}
    if len(zones) != 1:
        raise PlantFileError(
            f"{path}: the sites of one plant file must share a time zone for daily partitions, "
            f"found {', '.join(sorted(zones)) or 'no site'}; split the plant into one file "
            "(and code location) per time zone"
        )
    return zones.pop()


def history_start(
    timezone: str, environ: dict[str, str] | None = None, today: dt.date | None = None
) -> dt.date:
    """The first day of the plant's partitions: the plant file's ``history_start``; else the
    first landed day in the warehouse (``ENMS_DATABASE_URL``); else, when the warehouse is
    empty, unset or does not answer within seconds, today minus ``ENMS_READINGS_MAX_AGE_DAYS``
    (the oldest day an ingestor accepts), so the code location always loads."""
    environ = os.environ if environ is None else environ
    plant, _ = _plant(environ)
    if plant.history_start is not None:
        return plant.history_start
    settings = Settings.from_env(environ)
    today = today or dt.datetime.now(ZoneInfo(timezone)).date()
    fallback = today - dt.timedelta(days=settings.readings_max_age_days)
    if settings.database_url is None:
        return fallback
    try:
        with connect(
            settings.database_url,
            connect_timeout=CONNECT_TIMEOUT_S,
            options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
        ) as conn:
            landed = first_landed_day(conn, ZoneInfo(timezone))
    except psycopg.Error as exc:
        log.warning(
            "partitions begin %s (ENMS_READINGS_MAX_AGE_DAYS back): the first landed day could "
            "not be read from ENMS_DATABASE_URL: %s",
            fallback,
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
        )
        return fallback
    return min(landed, today) if landed is not None else fallback


def daily_partitions(timezone: str, start: dt.date) -> dg.DailyPartitionsDefinition:
    """One partition per local day in ``timezone``, from ``start`` to today (the current day
    is open: the hourly schedule recomputes it as it fills)."""
    return dg.DailyPartitionsDefinition(
        start_date=start.isoformat(), timezone=timezone, end_offset=1
    )
