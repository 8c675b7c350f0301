"""What a report shows, as data: the frames and their columns that ``report.data`` fills from
the warehouse and ``report.html`` renders. Neither side defines them again."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

# One row per machine. Identity columns are required; the figures may be NaN where the table
# they come from does not exist (yet).
MACHINE_COLUMNS = (
    "machine_id",
    "machine_name",
    "machine_type",
    "line",
    "energy_source",
    "energy_kwh",
    "productive_kwh",
    "idle_kwh",
    "out_of_hours_kwh",
    "parts",
    "sec_kwh_per_part",
    "peak_15min_kw",
    "cost",
    "co2e_kg",
    "enpi",
)
# One row per day of the site's energy performance against its active daily baseline.
PERFORMANCE_COLUMNS = (
    "local_date",
    "actual_kwh",
    "expected_kwh",
    "enpi",
    "cusum_savings_kwh",
    "uncertainty_68_kwh",
    "in_baseline_period",
)
# One row per machine and local day with at least one hour in an anomaly event.
ANOMALY_DAY_COLUMNS = ("machine_id", "local_date", "flagged_hours", "severity", "kinds")


@dataclass(frozen=True)
class ReportData:
    """Everything one report shows. ``anomaly_days`` is None when anomaly detection has not run
    (its table is missing), an empty frame when it ran and found nothing in the period."""

    site_id: str
    site_name: str
    first_day: dt.date
    last_day: dt.date
    machines: pd.DataFrame
    performance: pd.DataFrame
    anomaly_days: pd.DataFrame | None = None
    anomaly_events: pd.DataFrame | None = None
    currency: str | None = None
    baseline: str | None = None
    sources: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    generated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
