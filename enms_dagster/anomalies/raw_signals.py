"""Detector family (d): faults that show only in the raw readings (meter resets, frozen power,
unsteady pressure), read from ``RawSignals``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from enms_dagster.anomalies.contracts import (
    COUNTER_STEP_COLUMNS,
    DEFAULT_THRESHOLDS,
    FROZEN_RUN_COLUMNS,
    PRESSURE_METRIC,
    SIGNAL_NOISE_COLUMNS,
    Thresholds,
)
from enms_dagster.anomalies.flags import (
    as_utc,
    concat_flags,
    empty_flags,
    flag_equals,
    make_flags,
    reference_scale,
    robust_location_scale,
    split_reference,
)
from enms_dagster.anomalies.rules import flat_hours


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
        since, start, end = as_utc(since), as_utc(start), as_utc(end)
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
    start = as_utc(start)
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
    return concat_flags(
        [
            make_flags(
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
    start = as_utc(start)
    out = []
    for machine, runs in frozen_runs.groupby("machine_id", sort=True):
        rows = hourly[hourly["machine_id"] == machine]
        ref, _ = split_reference(rows, start, th)
        min_kw = max(th.min_kw, 0.01 * reference_scale(rows, ref)) if len(rows) else th.min_kw
        on_ref = ref[ref["avg_kw"].astype(float) >= min_kw]
        if len(on_ref) >= th.min_reference_hours and (
            flat_hours(on_ref, th, min_kw).mean() >= th.flat_share_normal
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
            first, last = as_utc(run.first_ts), as_utc(run.last_ts)
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
                make_flags(
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
    return concat_flags(out)


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
    start = as_utc(start)
    noise = signal_noise[
        (signal_noise["metric"] == PRESSURE_METRIC)
        & (signal_noise["samples"].astype(float) >= th.noise_min_samples)
        & signal_noise["noise"].notna()
    ]
    if noise.empty:
        return empty_flags()
    context = hourly[["machine_id", "hour_start", "energy_kwh"]].assign(
        state=_dominant_state(hourly), shift=flag_equals(hourly["is_shift"], True)
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
                make_flags(
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
    return concat_flags(out)


def detect_raw_anomalies(
    raw: RawSignals, hourly: pd.DataFrame, start, th: Thresholds = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """The raw-reading detectors: meter resets, frozen power readings, unsteady pressure."""
    return concat_flags(
        [
            detect_meter_resets(raw.counter_steps, hourly, start, th),
            detect_frozen_power(raw.frozen_runs, hourly, start, th),
            detect_unsteady_pressure(raw.signal_noise, hourly, start, th),
        ]
    )
