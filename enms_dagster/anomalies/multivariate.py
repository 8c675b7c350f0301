"""Detector family (b): multivariate outliers of a machine's hours (Isolation Forest)."""

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
    flag_equals,
    make_flags,
    reference_scale,
    usable_hours,
)


def _typical_kwh(rows: pd.DataFrame, ref: pd.DataFrame) -> pd.Series:
    """The machine's median kWh in the reference for the same shift status and local hour."""
    overall = float(ref["energy_kwh"].median()) if len(ref) else np.nan
    profile = ref.groupby([flag_equals(ref["is_shift"], True), ref["local_hour"]])[
        "energy_kwh"
    ].median()
    keys = list(zip(flag_equals(rows["is_shift"], True), rows["local_hour"], strict=True))
    return pd.Series([profile.get(k, overall) for k in keys], index=rows.index, dtype=float)


def _features(group: pd.DataFrame, start: pd.Timestamp) -> pd.DataFrame:
    """Load (and how far it is from the machine's usual load at that shift status and hour),
    state hours, site production, outdoor temperature and time of week (shift, weekend, hour of
    day); each machine's load divided by its size, so that machines of one type share a model."""
    parts = []
    for _, rows in group.groupby("machine_id", sort=True):
        ref = rows[rows["hour_start"] < start]
        scale = reference_scale(rows, ref)
        energy = rows["energy_kwh"].astype(float)
        f = pd.DataFrame(index=rows.index)
        f["energy"] = energy / scale
        f["vs_usual"] = ((energy - _typical_kwh(rows, ref)) / scale).fillna(0)
        for column in ("running_h", "idle_h", "off_h"):
            f[column] = rows[column].astype(float).fillna(0)
        site_parts = rows["site_parts"].astype(float)
        top = ref["site_parts"].astype(float).quantile(0.95) if len(ref) else np.nan
        f["site_parts"] = (site_parts / top if top and top > 0 else site_parts * 0).fillna(0)
        f["is_shift"] = flag_equals(rows["is_shift"], True).astype(float)
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

    start = as_utc(start)
    frame = usable_hours(hourly, th).dropna(subset=["energy_kwh"])
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
            make_flags(
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
    return concat_flags(out)
