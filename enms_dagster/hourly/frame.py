"""The hourly frame: one row per machine and hour, the columns of ``core.hourly_energy`` with the
machine's type and rated power from ``core.machines`` and the site's drivers from
``core.hourly_drivers``. The anomaly detectors read it; ``hourly.store.read_hourly_frame``
loads it."""

from __future__ import annotations

import pandas as pd

# Columns of the hourly frame (core.hourly_energy per machine and hour, the machine's type and
# rated power from core.machines, the site's drivers from core.hourly_drivers).
HOURLY_COLUMNS = (
    "machine_id",
    "machine_type",
    "rated_power_kw",  # may be NaN: the reference p95 of hourly kWh stands in
    "hour_start",  # UTC, start of the hour
    "local_date",
    "local_hour",
    "iso_weekday",
    "is_shift",  # the hour is inside the site's shift on a working day (NaN: unknown)
    "is_holiday",
    "outdoor_temperature_c",
    "site_parts",  # parts the whole site made in the hour (NaN: the site counts none)
    "energy_kwh",
    "avg_kw",
    "max_kw",
    "peak_15min_kw",
    "power_kwh",
    "running_h",
    "idle_h",
    "off_h",
    "idle_kwh",
    "parts",
    "completeness",
)
# every column of the hourly frame but the keys, the calendar and the flags is a number
FLOAT_COLUMNS = tuple(
    c
    for c in HOURLY_COLUMNS
    if c not in ("machine_id", "machine_type", "hour_start", "local_date", "local_hour",
                 "iso_weekday", "is_shift", "is_holiday")
)  # fmt: skip


def typed_hourly_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with ``hour_start`` as UTC timestamps and every number column as float (NULL
    becomes NaN)."""
    frame["hour_start"] = pd.to_datetime(frame["hour_start"], utc=True)
    for column in FLOAT_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame
