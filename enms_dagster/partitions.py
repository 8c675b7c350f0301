"""Partitioning shared by the assets: one partition per local day of the plant.

Machines are a column, not a partition dimension (partition counts in the tens of thousands make
the UI slow). Days are those of the plant's sites, read from the plant file (``ENMS_PLANT_FILE``,
else the reference plant) when the definitions are built, not when a module is imported: a plant
in New York gets New York days.
"""

import os

import dagster as dg

from enms_dagster.plant import PlantFileError, load_plant
from enms_dagster.settings import DEFAULT_PLANT_FILE


def plant_timezone(environ: dict[str, str] | None = None) -> str:
    """The time zone of the plant's days: the one its sites share. Sites in different zones
    cannot share daily partitions (a day would start at two different instants); such a plant
    runs one code location per zone, each with its own plant file."""
    environ = os.environ if environ is None else environ
    path = environ.get("ENMS_PLANT_FILE") or DEFAULT_PLANT_FILE
    zones = {site.timezone for site in load_plant(path).sites.values()}
    if len(zones) != 1:
        raise PlantFileError(
            f"{path}: the sites of one plant file must share a time zone for daily partitions, "
            f"found {', '.join(sorted(zones)) or 'no site'}; split the plant into one file "
            "(and code location) per time zone"
        )
    return zones.pop()


def daily_partitions(timezone: str) -> dg.DailyPartitionsDefinition:
    """One partition per local day in ``timezone``, from 2025-01-01 to today (the current day
    is open: the hourly schedule recomputes it as it fills)."""
    return dg.DailyPartitionsDefinition(start_date="2025-01-01", timezone=timezone, end_offset=1)
