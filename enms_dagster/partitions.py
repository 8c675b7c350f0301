"""Partitioning shared by the assets: one partition per local day of the plant.

Machines are a column, not a partition dimension (partition counts in the tens of thousands make
the UI slow). The time zone is the reference plant's; a plant in another zone sets its own here.
"""

import dagster as dg

PLANT_TIMEZONE = "Europe/Berlin"

daily_partitions = dg.DailyPartitionsDefinition(
    start_date="2025-01-01", timezone=PLANT_TIMEZONE, end_offset=1
)
