"""What every anomaly detector shares: the flag frame it returns (``make_flags``,
``empty_flags``, ``concat_flags``), robust location and scale, and the reference/scoring split of
an hourly frame."""

from __future__ import annotations

import numpy as np
import pandas as pd

from enms_dagster.anomalies.contracts import (
    FLAG_COLUMNS,
    KINDS,
    MAD_TO_SIGMA,
    Thresholds,
    severity_for,
)


def robust_location_scale(values) -> tuple[float, float]:
    """Median and MAD-based standard deviation (1.4826 × MAD) of the finite values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan")
    median = float(np.median(v))
    return median, MAD_TO_SIGMA * float(np.median(np.abs(v - median)))


def empty_flags() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=float) for c in FLAG_COLUMNS})
    for c in ("machine_id", "kind", "method", "severity"):
        frame[c] = frame[c].astype(object)
    frame["hour_start"] = pd.Series(dtype="datetime64[us, UTC]")
    return frame


def make_flags(
    rows: pd.DataFrame,
    kind: str,
    *,
    score,
    threshold,
    ratio,
    expected,
    actual,
    observed=np.nan,
    normal=np.nan,
    th: Thresholds,
) -> pd.DataFrame:
    if rows.empty:
        return empty_flags()
    n = len(rows)

    def col(x):
        return np.broadcast_to(np.asarray(x, dtype=float), (n,)).copy()

    expected, actual = col(expected), col(actual)
    return pd.DataFrame(
        {
            "machine_id": rows["machine_id"].to_numpy(dtype=object),
            "hour_start": rows["hour_start"].to_numpy(),
            "kind": kind,
            "method": KINDS[kind][0],
            "severity": severity_for(col(ratio), th),
            "score": col(score),
            "threshold": col(threshold),
            "expected_kwh": expected,
            "actual_kwh": actual,
            "excess_kwh": actual - expected,
            "observed": col(observed),
            "normal": col(normal),
        }
    )


def as_utc(ts) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def flag_equals(series: pd.Series, value: bool) -> pd.Series:
    """True where the (possibly missing) flag equals ``value``; unknown is never equal."""
    return series.astype("boolean").eq(value).fillna(False).astype(bool)


def usable_hours(frame: pd.DataFrame, th: Thresholds) -> pd.DataFrame:
    """Hours with enough samples to say anything (NULL completeness, where no sample count is
    expected, counts as usable)."""
    completeness = frame["completeness"].astype(float)
    return frame[completeness.isna() | (completeness >= th.min_completeness)]


def split_reference(
    frame: pd.DataFrame, start, th: Thresholds
) -> tuple[pd.DataFrame, pd.DataFrame]:
    start = as_utc(start)
    usable = usable_hours(frame, th)
    return usable[usable["hour_start"] < start], usable[usable["hour_start"] >= start]


def reference_scale(machine_rows: pd.DataFrame, reference: pd.DataFrame) -> float:
    """A machine's size in kWh per hour: rated power, else the reference p95 hourly kWh."""
    rated = machine_rows["rated_power_kw"].astype(float).dropna()
    if len(rated) and rated.iloc[0] > 0:
        return float(rated.iloc[0])
    values = reference["energy_kwh"].astype(float).dropna()
    return max(float(np.quantile(values, 0.95)), 0.1) if len(values) else 1.0


def in_production(frame: pd.DataFrame, min_running_h: float = 0.5) -> pd.Series:
    """Hours with production: the machine or its site made parts; where the site counts no parts
    at all, the machine ran (running state) for at least ``min_running_h``. A weekend shift the
    plant planned has production, so its energy is not out-of-hours waste."""
    parts = frame["parts"].astype(float)
    site_parts = frame["site_parts"].astype(float)
    running = frame["running_h"].astype(float).fillna(0)
    return (
        (parts.fillna(0) > 0)
        | (site_parts.fillna(0) > 0)
        | (site_parts.isna() & parts.isna() & (running >= min_running_h))
    )


def concat_flags(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    if not frames:
        return empty_flags()
    flags = pd.concat(frames, ignore_index=True)
    flags["hour_start"] = pd.to_datetime(flags["hour_start"], utc=True)
    return flags.sort_values(["machine_id", "kind", "hour_start"], ignore_index=True)
