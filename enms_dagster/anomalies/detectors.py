"""Anomaly detectors over hourly energy: residuals against the baseline, multivariate outliers
(Isolation Forest) and the rules an energy manager would write by hand.

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
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from enms_dagster.anomalies.contracts import (
    COUNTER_STEP_COLUMNS,
    DEFAULT_THRESHOLDS,
    FLAG_COLUMNS,
    FROZEN_RUN_COLUMNS,
    KINDS,
    MAD_TO_SIGMA,
    PRESSURE_METRIC,
    SIGNAL_NOISE_COLUMNS,
    Thresholds,
    severity_for,
)

# ---------------------------------------------------------------------------------------------
# helpers


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


def _flags(
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


def _as_utc(ts) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _bool(series: pd.Series, value: bool) -> pd.Series:
    """True where the (possibly missing) flag equals ``value``; unknown is never equal."""
    return series.astype("boolean").eq(value).fillna(False).astype(bool)


def _usable(frame: pd.DataFrame, th: Thresholds) -> pd.DataFrame:
    """Hours with enough samples to say anything (NULL completeness, where no sample count is
    expected, counts as usable)."""
    completeness = frame["completeness"].astype(float)
    return frame[completeness.isna() | (completeness >= th.min_completeness)]


def _split(frame: pd.DataFrame, start, th: Thresholds) -> tuple[pd.DataFrame, pd.DataFrame]:
    start = _as_utc(start)
    usable = _usable(frame, th)
    return usable[usable["hour_start"] < start], usable[usable["hour_start"] >= start]


def _scale(machine_rows: pd.DataFrame, reference: pd.DataFrame) -> float:
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


# ---------------------------------------------------------------------------------------------
# (a) residuals against the baseline


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
    start = _as_utc(start)
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
            _bool(rows["is_shift"], True) if "is_shift" in rows else pd.Series(False, rows.index)
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
    return _flags(
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
    start = _as_utc(start)
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
            _flags(
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
    return _concat(out)


def detect_residual_anomalies(
    residuals: pd.DataFrame, start, th: Thresholds = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """Both residual detectors: hourly robust z-scores and the daily CUSUM for slow drifts."""
    return _concat(
        [detect_residual_zscores(residuals, start, th), detect_residual_drift(residuals, start, th)]
    )


# ---------------------------------------------------------------------------------------------
# (b) multivariate outliers


def _typical_kwh(rows: pd.DataFrame, ref: pd.DataFrame) -> pd.Series:
    """The machine's median kWh in the reference for the same shift status and local hour."""
    overall = float(ref["energy_kwh"].median()) if len(ref) else np.nan
    profile = ref.groupby([_bool(ref["is_shift"], True), ref["local_hour"]])["energy_kwh"].median()
    keys = list(zip(_bool(rows["is_shift"], True), rows["local_hour"], strict=True))
    return pd.Series([profile.get(k, overall) for k in keys], index=rows.index, dtype=float)


def _features(group: pd.DataFrame, start: pd.Timestamp) -> pd.DataFrame:
    """Load (and how far it is from the machine's usual load at that shift status and hour),
    state hours, site production, outdoor temperature and time of week (shift, weekend, hour of
    day); each machine's load divided by its size, so that machines of one type share a model."""
    parts = []
    for _, rows in group.groupby("machine_id", sort=True):
        ref = rows[rows["hour_start"] < start]
        scale = _scale(rows, ref)
        energy = rows["energy_kwh"].astype(float)
        f = pd.DataFrame(index=rows.index)
        f["energy"] = energy / scale
        f["vs_usual"] = ((energy - _typical_kwh(rows, ref)) / scale).fillna(0)
        for column in ("running_h", "idle_h", "off_h"):
            f[column] = rows[column].astype(float).fillna(0)
        site_parts = rows["site_parts"].astype(float)
        top = ref["site_parts"].astype(float).quantile(0.95) if len(ref) else np.nan
        f["site_parts"] = (site_parts / top if top and top > 0 else site_parts * 0).fillna(0)
        f["is_shift"] = _bool(rows["is_shift"], True).astype(float)
        f["temperature"] = rows["outdoor_temperature_c"].astype(float)
        f["weekend"] = (rows["iso_weekday"].astype(float) >= 6).astype(float)
        hod = rows["local_hour"].astype(float)
        f["day_sin"], f["day_cos"] = np.sin(2 * np.pi * hod / 24), np.cos(2 * np.pi * hod / 24)
        parts.append(f)
    features = pd.concat(parts)
    train = group.loc[features.index, "hour_start"] < start
    mean_temperature = features.loc[train, "temperature"].mean()
    features["temperature"] = features["temperature"].fillna(
        10.0 if np.isnan(mean_temperature) else mean_temperature
    )
    return features.fillna(0)


def detect_multivariate_anomalies(
    hourly: pd.DataFrame, start, th: Thresholds = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """Isolation Forest per machine type on load (and its distance from the machine's usual load
    at that shift status and hour), state hours, site production, outdoor temperature and time
    of week, with a deterministic ``random_state``. The forest is fitted on the training window:
    the reference hours together with the hours being scored, because a forest fitted without an
    hour has no split beyond the training range and cannot isolate it. Scored hours above the
    ``forest_quantile`` of the reference hours' scores are flagged; expected kWh is the
    machine's usual kWh for that hour, and an hour is flagged only where its kWh exceeds it by
    ``forest_min_deviation`` of the machine's size (an unusual hour that wastes nothing is not
    an energy anomaly)."""
    from sklearn.ensemble import IsolationForest

    start = _as_utc(start)
    frame = _usable(hourly, th).dropna(subset=["energy_kwh"])
    frame = frame.sort_values(["machine_type", "machine_id", "hour_start"])
    out = []
    for _, group in frame.groupby("machine_type", sort=True):
        train_mask = group["hour_start"] < start
        if train_mask.sum() < th.min_training_hours or train_mask.all():
            continue
        features = _features(group, start)
        forest = IsolationForest(
            n_estimators=th.forest_trees, max_samples=1.0, random_state=th.random_state
        )
        forest.fit(features.to_numpy())
        all_scores = -forest.score_samples(features.to_numpy())
        train_scores = all_scores[train_mask.to_numpy()]
        cur = group[~train_mask]
        scores = all_scores[~train_mask.to_numpy()]
        threshold = float(np.quantile(train_scores, th.forest_quantile))
        typical = float(np.median(train_scores))
        deviation = features.loc[cur.index, "vs_usual"].to_numpy()
        hit = (scores > threshold) & (deviation >= th.forest_min_deviation)
        if not hit.any():
            continue
        ratio = (scores - typical) / max(threshold - typical, 1e-9)
        flagged = cur[hit]
        expected = pd.concat(
            [
                _typical_kwh(rows, group[train_mask & (group["machine_id"] == m)])
                for m, rows in flagged.groupby("machine_id", sort=False)
            ]
        ).reindex(flagged.index)
        out.append(
            _flags(
                flagged,
                "unusual_load",
                score=scores[hit],
                threshold=threshold,
                ratio=ratio[hit],
                expected=expected,
                actual=flagged["energy_kwh"],
                observed=flagged["energy_kwh"],
                normal=expected,
                th=th,
            )
        )
    return _concat(out)


# ---------------------------------------------------------------------------------------------
# (c) rules


def _working_day(frame: pd.DataFrame) -> pd.Series:
    """Whether the hour's local day has shift hours at all (a working day)."""
    shift = _bool(frame["is_shift"], True)
    return shift.groupby([frame["machine_id"], frame["local_date"]]).transform("any")


def _usual(rows: pd.DataFrame, ref: pd.DataFrame, column: str, th: Thresholds) -> pd.Series:
    """The reference median of ``column`` for each row's kind of day (working or not) and local
    hour; where the reference has under ``min_profile_hours`` such hours, for its local hour;
    else overall."""

    def medians(keys):
        table = ref.groupby(keys)[column].agg(["median", "size"])
        return table.loc[table["size"] >= th.min_profile_hours, "median"].to_dict()

    both, hourly, overall = (
        medians(["working", "local_hour"]),
        medians("local_hour"),
        ref[column].median(),
    )
    values = [
        both.get((w, h), hourly.get(h, overall))
        for w, h in zip(rows["working"], rows["local_hour"], strict=True)
    ]
    return pd.Series(values, index=rows.index, dtype=float)


def detect_out_of_hours(
    hourly: pd.DataFrame, start, th: Thresholds = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """Energy outside the shift, without production, above what the machine usually draws out
    of hours at that local hour on that kind of day (working or not; for a machine normally off
    then, about zero; before the shift it may be heating up). The margin is the largest of
    ``mad_k`` robust deviations from that usual level, ``out_of_hours_share`` of its median
    in-shift kWh and ``out_of_hours_min_kwh``. A planned weekend or holiday shift with
    production is not out of hours."""
    ref, cur = _split(hourly, start, th)
    ref, cur = ref.assign(working=_working_day(ref)), cur.assign(working=_working_day(cur))
    ooh_ref = ref[_bool(ref["is_shift"], False)]
    shift_ref = ref[_bool(ref["is_shift"], True)]
    cur = cur[_bool(cur["is_shift"], False) & ~in_production(cur)]
    out = []
    for machine, rows in cur.groupby("machine_id", sort=True):
        r = ooh_ref[ooh_ref["machine_id"] == machine]
        if len(r) < th.min_reference_hours:
            continue
        _, spread = robust_location_scale(r["energy_kwh"] - _usual(r, r, "energy_kwh", th))
        in_shift = shift_ref.loc[shift_ref["machine_id"] == machine, "energy_kwh"]
        shift_level = float(in_shift.median()) if len(in_shift) else 0.0
        margin = max(
            th.mad_k * spread, th.out_of_hours_share * shift_level, th.out_of_hours_min_kwh
        )
        normal = _usual(rows, r, "energy_kwh", th).clip(lower=0)
        excess = rows["energy_kwh"] - normal
        hit = excess > margin
        if not hit.any():
            continue
        flagged = rows[hit]
        out.append(
            _flags(
                flagged,
                "out_of_hours",
                score=excess[hit] / margin,
                threshold=1.0,
                ratio=excess[hit] / margin,
                expected=normal[hit],
                actual=flagged["energy_kwh"],
                observed=flagged["energy_kwh"],
                normal=normal[hit],
                th=th,
            )
        )
    return _concat(out)


def detect_idle_power(
    hourly: pd.DataFrame, start, th: Thresholds = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """Idle power (idle kWh ÷ idle hours, over hours idle at least ``idle_min_h``) above the
    machine's reference median for the same shift status and local hour by more than
    ``idle_rise``, ``mad_k`` robust deviations and ``min_kw``; the excess is the extra idle kW
    times the idle hours."""
    ref, cur = _split(hourly, start, th)

    def idle(frame):
        frame = frame[(frame["idle_h"].astype(float) >= th.idle_min_h) & frame["idle_kwh"].notna()]
        return frame.assign(idle_kw=frame["idle_kwh"].astype(float) / frame["idle_h"].astype(float))

    ref, cur = idle(ref), idle(cur)
    out = []
    for machine, rows in cur.groupby("machine_id", sort=True):
        r = ref[ref["machine_id"] == machine]
        if len(r) < th.min_reference_hours // 2:
            continue
        # idle differs by context: waiting for the line in the shift, heating up before it,
        # standby out of it; the normal level is the median of the same shift status and local
        # hour where the reference has enough such hours, else of the same shift status
        normal, margin = pd.Series(np.nan, rows.index), pd.Series(np.nan, rows.index)
        for in_shift in (True, False):
            same = _bool(r["is_shift"], True) == in_shift
            context = r[same] if same.sum() >= th.min_reference_hours // 2 else r
            where = _bool(rows["is_shift"], True) == in_shift  # unknown: out of the shift
            for hour, at in rows[where].groupby("local_hour"):
                ref_kw = context.loc[context["local_hour"] == hour, "idle_kw"]
                if len(ref_kw) < th.min_profile_hours:
                    ref_kw = context["idle_kw"]
                level, spread = robust_location_scale(ref_kw)
                normal[at.index] = level
                margin[at.index] = max(th.mad_k * spread, th.idle_rise * level, th.min_kw)
        rise = rows["idle_kw"] - normal
        hit = rise > margin
        if not hit.any():
            continue
        flagged = rows[hit]
        excess = rise[hit] * flagged["idle_h"].astype(float)
        out.append(
            _flags(
                flagged,
                "idle_power_high",
                score=rise[hit] / margin[hit],
                threshold=1.0,
                ratio=rise[hit] / margin[hit],
                expected=flagged["energy_kwh"] - excess,
                actual=flagged["energy_kwh"],
                observed=flagged["idle_kw"],
                normal=normal[hit],
                th=th,
            )
        )
    return _concat(out)


def detect_base_load_creep(
    hourly: pd.DataFrame, start, th: Thresholds = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """A day whose base load (the ``base_load_quantile`` of its hourly kW) is above the median
    base load of the reference days by more than ``base_load_rise``, ``mad_k`` robust deviations
    and ``min_kw``, after taking off the rise the machine's type shares that day (a cold day
    raises every air handler's base load: ``shared_deviation``). Every hour of the day is
    flagged: the extra base load is drawn in each."""
    ref, cur = _split(hourly, start, th)
    q = th.base_load_quantile

    def daily(frame):
        days = frame.groupby(["machine_id", "local_date"])["energy_kwh"].agg(
            base_kw=lambda s: float(np.quantile(s.astype(float), q)), hours="size"
        )
        return days[days["hours"] >= th.min_day_hours].reset_index()

    ref_days, cur_days = daily(ref), daily(cur)
    scored = []
    for machine, days in cur_days.groupby("machine_id", sort=True):
        r = ref_days[ref_days["machine_id"] == machine]
        if len(r) < th.min_reference_days:
            continue
        normal, spread = robust_location_scale(r["base_kw"])
        margin = max(th.mad_k * spread, th.base_load_rise * normal, th.min_kw)
        scored.append(days.assign(normal=normal, rise=(days["base_kw"] - normal) / margin))
    if not scored:
        return empty_flags()
    days = pd.concat(scored, ignore_index=True)
    if "machine_type" in cur:
        types = cur.drop_duplicates("machine_id").set_index("machine_id")["machine_type"]
        days["machine_type"] = days["machine_id"].map(types)
    days["rise"] -= shared_deviation(days, "rise", "local_date", th)
    high = days[days["rise"] > 1.0]
    if high.empty:
        return empty_flags()
    rows = cur.merge(high[["machine_id", "local_date", "base_kw", "normal", "rise"]])
    base, normal = rows["base_kw"].astype(float), rows["normal"].astype(float)
    excess = np.minimum(base - normal, rows["energy_kwh"].astype(float))
    return _flags(
        rows,
        "base_load_creep",
        score=rows["rise"],
        threshold=1.0,
        ratio=rows["rise"],
        expected=rows["energy_kwh"] - excess,
        actual=rows["energy_kwh"],
        observed=base,
        normal=normal,
        th=th,
    )


def detect_power_while_off(
    hourly: pd.DataFrame, start, th: Thresholds = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """Hours the machine reports ``off`` (at least ``off_min_h`` of the hour) yet draws more than
    its normal off-hour kWh (reference median, else 0) by max(``off_min_kwh``, ``off_share`` of
    its rated power)."""
    ref, cur = _split(hourly, start, th)
    off_ref = ref[ref["off_h"].astype(float) >= th.off_min_h]
    cur = cur[cur["off_h"].astype(float) >= th.off_min_h]
    out = []
    for machine, rows in cur.groupby("machine_id", sort=True):
        r = off_ref[off_ref["machine_id"] == machine]
        normal = max(float(r["energy_kwh"].median()), 0.0) if len(r) >= 3 else 0.0
        allowed = max(
            th.off_min_kwh, th.off_share * _scale(rows, ref[ref["machine_id"] == machine])
        )
        excess = rows["energy_kwh"].astype(float) - normal
        hit = excess > allowed
        if not hit.any():
            continue
        flagged = rows[hit]
        out.append(
            _flags(
                flagged,
                "power_while_off",
                score=excess[hit] / allowed,
                threshold=1.0,
                ratio=excess[hit] / allowed,
                expected=normal,
                actual=flagged["energy_kwh"],
                observed=flagged["energy_kwh"],
                normal=normal,
                th=th,
            )
        )
    return _concat(out)


def _flat(frame: pd.DataFrame, th: Thresholds, min_kw: float) -> pd.Series:
    avg = frame["avg_kw"].astype(float)
    tolerance = th.flat_tolerance * avg.abs() + 1e-6
    return (
        (avg >= min_kw)
        & ((frame["max_kw"].astype(float) - avg).abs() <= tolerance)
        & ((frame["peak_15min_kw"].astype(float) - avg).abs() <= tolerance)
    )


def detect_stuck_signal(
    hourly: pd.DataFrame, start, th: Thresholds = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """A power reading that looks frozen: (1) a flat hour (max_kw and peak_15min_kw within
    ``flat_tolerance`` of avg_kw while the machine is on) for a machine whose on-hours normally
    vary (under ``flat_share_normal`` of them flat in the reference; without a reference, an hour
    that mixes states); or (2) power integrated over the hour (power_kwh) disagreeing with the
    energy counter (energy_kwh) by more than ``mismatch_share`` and ``mismatch_min_kwh`` in a
    complete hour. No excess energy: the meter, not the machine, is at fault."""
    ref, cur = _split(hourly, start, th)
    out = []
    for machine, rows in cur.groupby("machine_id", sort=True):
        r = ref[ref["machine_id"] == machine]
        min_kw = max(th.min_kw, 0.01 * _scale(rows, r))
        on_ref = r[r["avg_kw"].astype(float) >= min_kw]
        if len(on_ref) >= th.min_reference_hours:
            varies = pd.Series(_flat(on_ref, th, min_kw).mean() < th.flat_share_normal, rows.index)
        else:
            states = (rows[["running_h", "idle_h", "off_h"]].astype(float) >= 0.05).sum(axis=1)
            varies = states >= 2
        flat = _flat(rows, th, min_kw) & varies
        power, counter = rows["power_kwh"].astype(float), rows["energy_kwh"].astype(float)
        gap = (power - counter).abs()
        allowed = np.maximum(th.mismatch_min_kwh, th.mismatch_share * np.maximum(power, counter))
        complete = rows["completeness"].astype(float).fillna(1.0) >= th.mismatch_completeness
        mismatch = complete & power.notna() & (gap > allowed)
        hit = flat | mismatch
        if not hit.any():
            continue
        flagged = rows[hit]
        score = np.maximum(flat[hit].astype(float), (gap / allowed)[hit].fillna(0))
        out.append(
            _flags(
                flagged,
                "stuck_signal",
                score=score,
                threshold=1.0,
                ratio=score,
                expected=flagged["energy_kwh"],
                actual=flagged["energy_kwh"],
                observed=flagged["avg_kw"],
                normal=np.nan,
                th=th,
            )
        )
    return _concat(out)


def detect_rule_anomalies(
    hourly: pd.DataFrame, start, th: Thresholds = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """All rules: out of hours, idle power, base load, power while off, stuck signal."""
    return _concat(
        [
            detect(hourly, start, th)
            for detect in (
                detect_out_of_hours,
                detect_idle_power,
                detect_base_load_creep,
                detect_power_while_off,
                detect_stuck_signal,
            )
        ]
    )


# ---------------------------------------------------------------------------------------------
# (d) raw readings


def _empty(columns, timestamps=()) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
    for c in columns:
        if c in ("machine_id", "metric"):
            frame[c] = frame[c].astype(object)
    for c in timestamps:
        frame[c] = pd.Series(dtype="datetime64[us, UTC]")
    return frame


@dataclass(frozen=True)
class RawSignals:
    """What the raw-reading detectors read: counter readings that stepped back
    (``COUNTER_STEP_COLUMNS``) and runs of identical power readings (``FROZEN_RUN_COLUMNS``) of
    the scored window, and the hourly noise of gauge metrics (``SIGNAL_NOISE_COLUMNS``) of the
    scored window and its reference."""

    counter_steps: pd.DataFrame
    frozen_runs: pd.DataFrame
    signal_noise: pd.DataFrame

    @classmethod
    def empty(cls) -> RawSignals:
        return cls(
            _empty(COUNTER_STEP_COLUMNS, ("ts", "prev_ts")),
            _empty(FROZEN_RUN_COLUMNS, ("first_ts", "last_ts")),
            _empty(SIGNAL_NOISE_COLUMNS, ("hour_start",)),
        )

    def between(self, since, start, end) -> RawSignals:
        """The part one scored window [start, end) with its reference from ``since`` needs."""
        since, start, end = _as_utc(since), _as_utc(start), _as_utc(end)
        steps, runs, noise = self.counter_steps, self.frozen_runs, self.signal_noise
        return RawSignals(
            steps[(steps["ts"] >= start) & (steps["ts"] < end)],
            runs[(runs["last_ts"] > start) & (runs["first_ts"] < end)],
            noise[(noise["hour_start"] >= since) & (noise["hour_start"] < end)],
        )


def _hour_energy(rows: pd.DataFrame, hourly: pd.DataFrame) -> pd.Series:
    """kWh of each row's machine-hour (NaN where the hourly frame has none)."""
    energy = hourly.set_index(["machine_id", "hour_start"])["energy_kwh"]
    energy = energy[~energy.index.duplicated()]
    keys = pd.MultiIndex.from_arrays([rows["machine_id"], rows["hour_start"]])
    return pd.Series(energy.reindex(keys).to_numpy(dtype=float), index=rows.index)


def detect_meter_resets(
    counter_steps: pd.DataFrame, hourly: pd.DataFrame, start, th: Thresholds = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """Energy counters that stepped back with no reset recorded for them (core.counter_resets
    holds the expected ones; rollovers are not returned by the query): the meter was replaced or
    its controller restarted, which someone should know and record. The hour holding the reading
    is flagged, medium; no energy is lost (hourly energy integrates power over that step)."""
    start = _as_utc(start)
    steps = counter_steps[counter_steps["ts"] >= start]
    if steps.empty:
        return empty_flags()
    steps = steps.assign(
        hour_start=steps["ts"].dt.floor("h"),
        drop_kwh=steps["prev_value"].astype(float) - steps["value"].astype(float),
    )
    # one flag per machine-hour: its largest step back
    steps = steps.sort_values("drop_kwh", ascending=False).drop_duplicates(
        ["machine_id", "hour_start"]
    )
    energy = _hour_energy(steps, hourly)
    return _concat(
        [
            _flags(
                steps,
                "meter_reset",
                score=steps["drop_kwh"],
                threshold=0.0,
                ratio=th.medium_at,
                expected=energy,
                actual=energy,
                observed=steps["value"],
                normal=steps["prev_value"],
                th=th,
            )
        ]
    )


def detect_frozen_power(
    frozen_runs: pd.DataFrame, hourly: pd.DataFrame, start, th: Thresholds = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """A power reading frozen at one value: a run of identical readings (``frozen_min_samples``
    and ``frozen_min_minutes`` at least; 0 kW while the machine reports off never counts) that
    no steady load explains: the machine reported running for part of it, reported two states
    (a sensor that shows the same kW while the machine starts or stops is stuck), reported no
    state at all, or reported being on at exactly 0 kW. Identical readings while the machine
    only idles are a constant standby load, not a stuck sensor. Machines whose power is often
    flat (a meter with a coarse display, see ``detect_stuck_signal``) are left out. Every hour
    the run touches is flagged as ``stuck_signal``, the score being its length in units of
    ``frozen_min_minutes`` (medium from twice that: a data fault, never high); no excess
    energy."""
    start = _as_utc(start)
    out = []
    for machine, runs in frozen_runs.groupby("machine_id", sort=True):
        rows = hourly[hourly["machine_id"] == machine]
        ref, _ = _split(rows, start, th)
        min_kw = max(th.min_kw, 0.01 * _scale(rows, ref)) if len(rows) else th.min_kw
        on_ref = ref[ref["avg_kw"].astype(float) >= min_kw]
        if len(on_ref) >= th.min_reference_hours and (
            _flat(on_ref, th, min_kw).mean() >= th.flat_share_normal
        ):
            continue
        counts = runs[["running_samples", "idle_samples", "off_samples"]].astype(float)
        states_seen = (counts >= th.frozen_min_samples).sum(axis=1)
        unexplained = (
            (counts["running_samples"] >= th.frozen_min_samples)
            | (states_seen >= 2)
            | (counts.sum(axis=1) == 0)
            | (runs["power_kw"].astype(float) == 0)
        )
        for run in runs[unexplained].itertuples(index=False):
            first, last = _as_utc(run.first_ts), _as_utc(run.last_ts)
            minutes = (last - first) / pd.Timedelta(minutes=1)
            # a reading at ts covers the interval that ends at ts: hours of [first, last)
            hours = pd.date_range(
                first.floor("h"), (last - pd.Timedelta(microseconds=1)).floor("h"), freq="h"
            )
            hours = hours[hours >= start]
            if not len(hours):
                continue
            flagged = pd.DataFrame({"machine_id": machine, "hour_start": hours})
            energy = _hour_energy(flagged, rows)
            score = minutes / th.frozen_min_minutes
            out.append(
                _flags(
                    flagged,
                    "stuck_signal",
                    score=score,
                    threshold=1.0,
                    ratio=min(score, th.medium_at),  # a data fault: medium at most
                    expected=energy,
                    actual=energy,
                    observed=float(run.power_kw),
                    normal=np.nan,
                    th=th,
                )
            )
    return _concat(out)


def _dominant_state(frame: pd.DataFrame) -> pd.Series:
    """running, idle or off: the state the machine reported for most of the hour (unknown where
    under half the hour has a state)."""
    hours = frame[["running_h", "idle_h", "off_h"]].astype(float).fillna(0)
    state = hours.idxmax(axis=1).str.removesuffix("_h")
    return state.where(hours.sum(axis=1) >= 0.5, "unknown")


def detect_unsteady_pressure(
    signal_noise: pd.DataFrame, hourly: pd.DataFrame, start, th: Thresholds = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """Hours whose pressure moved much further from one reading to the next than usual (the
    noise of ``core.hourly_signal_noise``): cavitation in a pump, air in the oil, or a failing
    pressure sensor. The usual noise is the reference median for the same machine, the state it
    reported for most of the hour and shift status (``noise_min_reference_hours`` such hours at
    least: a compressor's pressure cycles differently when it mostly idles); an hour is flagged
    above ``noise_ratio`` times that, ``mad_k`` robust deviations above it and
    ``noise_floor_share`` of the machine's usual pressure (a pump that is off shows none). No
    excess energy is attributed: the residual and rule detectors weigh the energy."""
    start = _as_utc(start)
    noise = signal_noise[
        (signal_noise["metric"] == PRESSURE_METRIC)
        & (signal_noise["samples"].astype(float) >= th.noise_min_samples)
        & signal_noise["noise"].notna()
    ]
    if noise.empty:
        return empty_flags()
    context = hourly[["machine_id", "hour_start", "energy_kwh"]].assign(
        state=_dominant_state(hourly), shift=_bool(hourly["is_shift"], True)
    )
    frame = noise.merge(context, on=["machine_id", "hour_start"])
    ref, cur = frame[frame["hour_start"] < start], frame[frame["hour_start"] >= start]
    out = []
    for machine, rows in cur.groupby("machine_id", sort=True):
        r = ref[ref["machine_id"] == machine]
        level = float(r["mean_value"].astype(float).quantile(0.95)) if len(r) else np.nan
        if not level > 0:
            continue
        floor = th.noise_floor_share * level
        for (state, shift), at in rows.groupby(["state", "shift"]):
            basis = r.loc[(r["state"] == state) & (r["shift"] == shift), "noise"].astype(float)
            if len(basis) < th.noise_min_reference_hours:
                continue
            usual, spread = robust_location_scale(basis)
            limit = max(th.noise_ratio * usual, usual + th.mad_k * spread, floor)
            observed = at["noise"].astype(float)
            hit = observed > limit
            if not hit.any():
                continue
            flagged = at[hit]
            out.append(
                _flags(
                    flagged,
                    "unsteady_pressure",
                    score=observed[hit] / limit,
                    threshold=1.0,
                    ratio=observed[hit] / limit,
                    expected=flagged["energy_kwh"],
                    actual=flagged["energy_kwh"],
                    observed=observed[hit],
                    normal=usual,
                    th=th,
                )
            )
    return _concat(out)


def detect_raw_anomalies(
    raw: RawSignals, hourly: pd.DataFrame, start, th: Thresholds = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """The raw-reading detectors: meter resets, frozen power readings, unsteady pressure."""
    return _concat(
        [
            detect_meter_resets(raw.counter_steps, hourly, start, th),
            detect_frozen_power(raw.frozen_runs, hourly, start, th),
            detect_unsteady_pressure(raw.signal_noise, hourly, start, th),
        ]
    )


# ---------------------------------------------------------------------------------------------
# all detectors over a window


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    if not frames:
        return empty_flags()
    flags = pd.concat(frames, ignore_index=True)
    flags["hour_start"] = pd.to_datetime(flags["hour_start"], utc=True)
    return flags.sort_values(["machine_id", "kind", "hour_start"], ignore_index=True)


def _strongest(flags: pd.DataFrame) -> pd.DataFrame:
    """One flag per machine, hour and kind (two rules may raise the same kind): the highest
    score."""
    flags = flags.sort_values("score", ascending=False, kind="stable")
    return _concat([flags.drop_duplicates(["machine_id", "hour_start", "kind"])])


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
    start, end = _as_utc(start), _as_utc(end)
    hourly = hourly[hourly["hour_start"] < end]
    parts = [
        detect_rule_anomalies(hourly, start, th),
        detect_multivariate_anomalies(hourly, start, th),
    ]
    if residuals is not None and not residuals.empty:
        parts.append(detect_residual_anomalies(residuals[residuals["hour_start"] < end], start, th))
    if raw is not None:
        parts.append(detect_raw_anomalies(raw, hourly, start, th))
    flags = _strongest(_concat(parts))
    inside = (flags["hour_start"] >= start) & (flags["hour_start"] < end)
    return flags[inside].reset_index(drop=True)


def local_days(start, end, timezone: str) -> Iterator[tuple[pd.Timestamp, pd.Timestamp]]:
    """[start, end) of each local day of ``timezone`` that starts in [start, end)."""
    zone = ZoneInfo(timezone)
    day = _as_utc(start).tz_convert(zone).date()
    end = _as_utc(end)
    while True:
        first = _as_utc(dt.datetime.combine(day, dt.time(), zone))
        day += dt.timedelta(days=1)
        if first >= end:
            return
        yield first, min(_as_utc(dt.datetime.combine(day, dt.time(), zone)), end)


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
    return _concat(out)


def with_excess_cost(flags: pd.DataFrame, price_per_kwh: float) -> pd.DataFrame:
    """Add ``excess_cost``: positive excess kWh × price (using less costs nothing extra)."""
    return flags.assign(excess_cost=flags["excess_kwh"].clip(lower=0).fillna(0) * price_per_kwh)
