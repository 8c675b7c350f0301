"""Detector family (a): residuals against the baseline, hourly z-scores and daily CUSUM, with
the deviation a machine type shares in an hour taken off each machine."""

from __future__ import annotations

import numpy as np
import pandas as pd

from enms_dagster.anomalies.contracts import (
    DEFAULT_THRESHOLDS,
    Thresholds,
)
from enms_dagster.anomalies.flags import (
    as_utc,
    concat_flags,
    empty_flags,
    flag_equals,
    make_flags,
    robust_location_scale,
)


def _within_baseline_range(residuals: pd.DataFrame) -> pd.DataFrame:
    """The hours whose drivers lie inside the range the baseline was fitted on (an
    ``extrapolated`` column; without it, all). Outside it the expectation is a guess: an HVAC
    model fitted on an autumn month cannot say what a colder night should cost, and a night
    colder than any it saw is not a fault of the machine."""
    if "extrapolated" not in residuals:
        return residuals
    return residuals[~residuals["extrapolated"].fillna(False).astype(bool)]


def shared_deviation(frame: pd.DataFrame, column: str, when: str, th: Thresholds) -> pd.Series:
    """Per row, the part of ``column`` its machine type shares at the same ``when``: the median
    over the type's machines (needs a ``machine_type`` column and ``peer_min_machines`` of
    them), never below 0; 0 where there are too few peers. One machine's fault leaves the
    median where it was; weather or a plant-wide schedule moves it."""
    if "machine_type" not in frame or frame.empty:
        return pd.Series(0.0, frame.index)
    keys = [frame["machine_type"], frame[when]]
    peers = frame.groupby(keys)[column].transform("count")
    median = frame.groupby(keys)[column].transform("median").clip(lower=0)
    return median.where(peers >= th.peer_min_machines, 0.0).astype(float)


def detect_residual_zscores(
    residuals: pd.DataFrame, start, th: Thresholds = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """Hours whose residual (actual − expected kWh) lies ``z_threshold`` robust standard
    deviations (1.4826 × MAD) above the median residual of the reference hours (those before
    ``start``) of the same shift status (an ``is_shift`` column; without it, all hours), after
    taking off what the machine's type shares that hour (``shared_deviation``). Only excess is
    flagged: using less than the baseline is a saving, not a fault. Hours where the baseline
    extrapolates are neither judged nor used as reference."""
    start = as_utc(start)
    scored = []
    for _, rows in _within_baseline_range(residuals).groupby("machine_id", sort=True):
        rows = rows.dropna(subset=["actual_kwh", "expected_kwh"])
        resid = rows["actual_kwh"] - rows["expected_kwh"]
        ref = rows["hour_start"] < start
        if ref.sum() < th.min_reference_hours:
            continue
        # residuals in the shift and out of it spread differently (a machine that is off has
        # none): each is scaled by the reference hours of its own shift status
        shift = (
            flag_equals(rows["is_shift"], True)
            if "is_shift" in rows
            else pd.Series(False, rows.index)
        )
        z = pd.Series(np.nan, rows.index)
        for status in (True, False):
            same = shift == status
            basis = ref & same if (ref & same).sum() >= th.min_reference_hours else ref
            median, sigma = robust_location_scale(resid[basis])
            expected_mean = float(rows.loc[basis, "expected_kwh"].abs().mean())
            sigma = max(sigma, th.min_sigma_kwh, th.min_sigma_share * expected_mean)
            z[same] = (resid[same] - median) / sigma
        scored.append(rows.assign(z=z, reference=ref))
    if not scored:
        return empty_flags()
    frame = pd.concat(scored)
    z = frame["z"] - shared_deviation(frame, "z", "hour_start", th)
    hit = ~frame["reference"] & (z >= th.z_threshold)
    cur = frame[hit]
    return make_flags(
        cur,
        "above_baseline",
        score=z[hit],
        threshold=th.z_threshold,
        ratio=z[hit] / th.z_threshold,
        expected=cur["expected_kwh"],
        actual=cur["actual_kwh"],
        observed=cur["actual_kwh"],
        normal=cur["expected_kwh"],
        th=th,
    )


def detect_residual_drift(
    residuals: pd.DataFrame, start, th: Thresholds = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """Slow drifts: a one-sided tabular CUSUM of the daily mean residual, standardized by the
    median and MAD of the reference days (hourly residuals are autocorrelated; days much less),
    after taking off what the machine's type shares that day (``shared_deviation``). The sum
    starts at the first day of the frame; every hour of a scored day whose CUSUM exceeds
    ``cusum_h`` is flagged. Hours where the baseline extrapolates still count: leaving the
    cold nights out of a day's mean biases it (on the reference plant that raised three false
    drifts in a month)."""
    start = as_utc(start)
    frame = residuals.dropna(subset=["actual_kwh", "expected_kwh"])
    if "local_date" not in frame:
        frame = frame.assign(local_date=frame["hour_start"].dt.date)
    frame = frame.assign(resid=frame["actual_kwh"] - frame["expected_kwh"])
    scored = []
    for machine, rows in frame.groupby("machine_id", sort=True):
        days = rows.groupby("local_date").agg(
            mean=("resid", "mean"), hours=("resid", "size"), first=("hour_start", "min")
        )
        days = days[days["hours"] >= th.min_day_hours].sort_index()
        ref = days["first"] < start
        if ref.sum() < th.min_reference_days or (~ref).sum() == 0:
            continue
        median, sigma = robust_location_scale(days.loc[ref, "mean"])
        _, hourly_sigma = robust_location_scale(rows.loc[rows["hour_start"] < start, "resid"])
        expected_mean = float(rows.loc[rows["hour_start"] < start, "expected_kwh"].abs().mean())
        floor = max(
            th.min_sigma_kwh, th.min_sigma_share * expected_mean, hourly_sigma / np.sqrt(24)
        )
        sigma = max(sigma, floor)
        days = days.assign(machine_id=machine, z=(days["mean"] - median) / sigma, median=median)
        if "machine_type" in rows:
            days["machine_type"] = rows["machine_type"].iloc[0]
        scored.append(days.assign(reference=ref).reset_index())
    if not scored:
        return empty_flags()
    all_days = pd.concat(scored, ignore_index=True)
    all_days["z"] -= shared_deviation(all_days, "z", "local_date", th)
    out = []
    for machine, days in all_days.groupby("machine_id", sort=True):
        cusum, s = [], 0.0
        for value in days["z"]:
            s = max(0.0, s + value - th.cusum_k)
            cusum.append(s)
        days = days.assign(cusum=cusum).set_index("local_date")
        alarmed = days[~days["reference"] & (days["cusum"] > th.cusum_h)]
        if alarmed.empty:
            continue
        rows = frame[frame["machine_id"] == machine]
        cur = rows[rows["local_date"].isin(alarmed.index) & (rows["hour_start"] >= start)]
        score = cur["local_date"].map(alarmed["cusum"]).astype(float)
        out.append(
            make_flags(
                cur,
                "baseline_drift",
                score=score,
                threshold=th.cusum_h,
                ratio=score / th.cusum_h,
                expected=cur["expected_kwh"],
                actual=cur["actual_kwh"],
                observed=cur["local_date"].map(alarmed["mean"]).astype(float),
                normal=float(days["median"].iloc[0]),
                th=th,
            )
        )
    return concat_flags(out)


def detect_residual_anomalies(
    residuals: pd.DataFrame, start, th: Thresholds = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """Both residual detectors: hourly robust z-scores and the daily CUSUM for slow drifts."""
    return concat_flags(
        [detect_residual_zscores(residuals, start, th), detect_residual_drift(residuals, start, th)]
    )
