"""Every anomaly detector over a window of hourly energy, one family per module: residuals
against the baseline (``residuals``), multivariate outliers by Isolation Forest
(``multivariate``), the rules an energy manager would write by hand (``rules``) and faults seen
only in raw readings (``raw_signals``); what they share is in ``flags`` and ``contracts``.

Every detector is a pure function of an hourly frame (one row per machine and hour: the columns
of ``core.hourly_energy`` with the site's drivers from ``core.hourly_drivers``, see
``enms_dagster.hourly.frame.HOURLY_COLUMNS``) and the instant ``start`` from which hours are
scored. The hours before ``start`` are the reference a detector learns "normal" from (the asset
passes the 28 days before each day), so a day's flags depend on that day and its reference
only. Each detector returns hourly flags (``FLAG_COLUMNS``) tagged with the method that raised
them; ``events.py`` merges consecutive flagged hours into events.

Some faults show only in the raw readings, not in hourly energy: an energy counter that steps
back (a meter reset), a power reading frozen at one value, a pressure that turns noisy. Their
detectors read ``RawSignals`` (frames from ``anomalies/sql``, see ``anomalies.store``) together
with the hourly frame.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pandas as pd

from enms_dagster.anomalies.contracts import (
    DEFAULT_THRESHOLDS,
    Thresholds,
)
from enms_dagster.anomalies.flags import as_utc, concat_flags
from enms_dagster.anomalies.multivariate import detect_multivariate_anomalies
from enms_dagster.anomalies.raw_signals import RawSignals, detect_raw_anomalies
from enms_dagster.anomalies.residuals import detect_residual_anomalies
from enms_dagster.anomalies.rules import detect_rule_anomalies


def _strongest(flags: pd.DataFrame) -> pd.DataFrame:
    """One flag per machine, hour and kind (two rules may raise the same kind): the highest
    score."""
    flags = flags.sort_values("score", ascending=False, kind="stable")
    return concat_flags([flags.drop_duplicates(["machine_id", "hour_start", "kind"])])


def detect_anomalies(
    hourly: pd.DataFrame,
    start,
    end,
    residuals: pd.DataFrame | None = None,
    th: Thresholds = DEFAULT_THRESHOLDS,
    raw: RawSignals | None = None,
) -> pd.DataFrame:
    """Every detector over the hours in [start, end), learning from the hours before ``start``.
    The residual family runs only when ``residuals`` (actual and baseline-expected kWh) is
    given, the raw-reading detectors only when ``raw`` is."""
    start, end = as_utc(start), as_utc(end)
    hourly = hourly[hourly["hour_start"] < end]
    parts = [
        detect_rule_anomalies(hourly, start, th),
        detect_multivariate_anomalies(hourly, start, th),
    ]
    if residuals is not None and not residuals.empty:
        parts.append(detect_residual_anomalies(residuals[residuals["hour_start"] < end], start, th))
    if raw is not None:
        parts.append(detect_raw_anomalies(raw, hourly, start, th))
    flags = _strongest(concat_flags(parts))
    inside = (flags["hour_start"] >= start) & (flags["hour_start"] < end)
    return flags[inside].reset_index(drop=True)


def local_days(start, end, timezone: str) -> Iterator[tuple[pd.Timestamp, pd.Timestamp]]:
    """[start, end) of each local day of ``timezone`` that starts in [start, end)."""
    zone = ZoneInfo(timezone)
    day = as_utc(start).tz_convert(zone).date()
    end = as_utc(end)
    while True:
        first = as_utc(dt.datetime.combine(day, dt.time(), zone))
        day += dt.timedelta(days=1)
        if first >= end:
            return
        yield first, min(as_utc(dt.datetime.combine(day, dt.time(), zone)), end)


def detect_anomalies_by_day(
    hourly: pd.DataFrame,
    start,
    end,
    timezone: str,
    residuals: pd.DataFrame | None = None,
    reference_days: int = 28,
    th: Thresholds = DEFAULT_THRESHOLDS,
    raw: RawSignals | None = None,
) -> pd.DataFrame:
    """``detect_anomalies`` one local day at a time, each learning from the ``reference_days``
    before it: a day's flags do not depend on which other days were computed in the same run."""
    out = []
    for first, last in local_days(start, end, timezone):
        since = first - pd.Timedelta(days=reference_days)
        window = hourly[(hourly["hour_start"] >= since) & (hourly["hour_start"] < last)]
        res = None
        if residuals is not None and not residuals.empty:
            res = residuals[(residuals["hour_start"] >= since) & (residuals["hour_start"] < last)]
        day_raw = raw.between(since, first, last) if raw is not None else None
        out.append(detect_anomalies(window, first, last, res, th, day_raw))
    return concat_flags(out)


def with_excess_cost(flags: pd.DataFrame, price_per_kwh: float) -> pd.DataFrame:
    """Add ``excess_cost``: positive excess kWh × price (using less costs nothing extra)."""
    return flags.assign(excess_cost=flags["excess_kwh"].clip(lower=0).fillna(0) * price_per_kwh)
