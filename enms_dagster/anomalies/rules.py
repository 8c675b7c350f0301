"""Detector family (c): the rules an energy manager would write by hand (out of hours, idle
power, base-load creep, power while off, stuck signal)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from enms_dagster.anomalies.contracts import (
    DEFAULT_THRESHOLDS,
    Thresholds,
)
from enms_dagster.anomalies.flags import (
    concat_flags,
    empty_flags,
    flag_equals,
    in_production,
    make_flags,
    reference_scale,
    robust_location_scale,
    split_reference,
)
from enms_dagster.anomalies.residuals import shared_deviation


def _working_day(frame: pd.DataFrame) -> pd.Series:
    """Whether the hour's local day has shift hours at all (a working day)."""
    shift = flag_equals(frame["is_shift"], True)
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
    ref, cur = split_reference(hourly, start, th)
    ref, cur = ref.assign(working=_working_day(ref)), cur.assign(working=_working_day(cur))
    ooh_ref = ref[flag_equals(ref["is_shift"], False)]
    shift_ref = ref[flag_equals(ref["is_shift"], True)]
    cur = cur[flag_equals(cur["is_shift"], False) & ~in_production(cur)]
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
            make_flags(
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
    return concat_flags(out)


def detect_idle_power(
    hourly: pd.DataFrame, start, th: Thresholds = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """Idle power (idle kWh ÷ idle hours, over hours idle at least ``idle_min_h``) above the
    machine's reference median for the same shift status and local hour by more than
    ``idle_rise``, ``mad_k`` robust deviations and ``min_kw``; the excess is the extra idle kW
    times the idle hours."""
    ref, cur = split_reference(hourly, start, th)

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
            same = flag_equals(r["is_shift"], True) == in_shift
            context = r[same] if same.sum() >= th.min_reference_hours // 2 else r
            where = flag_equals(rows["is_shift"], True) == in_shift  # unknown: out of the shift
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
            make_flags(
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
    return concat_flags(out)


def detect_base_load_creep(
    hourly: pd.DataFrame, start, th: Thresholds = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """A day whose base load (the ``base_load_quantile`` of its hourly kW) is above the median
    base load of the reference days by more than ``base_load_rise``, ``mad_k`` robust deviations
    and ``min_kw``, after taking off the rise the machine's type shares that day (a cold day
    raises every air handler's base load: ``shared_deviation``). Every hour of the day is
    flagged: the extra base load is drawn in each."""
    ref, cur = split_reference(hourly, start, th)
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
    return make_flags(
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
    ref, cur = split_reference(hourly, start, th)
    off_ref = ref[ref["off_h"].astype(float) >= th.off_min_h]
    cur = cur[cur["off_h"].astype(float) >= th.off_min_h]
    out = []
    for machine, rows in cur.groupby("machine_id", sort=True):
        r = off_ref[off_ref["machine_id"] == machine]
        normal = max(float(r["energy_kwh"].median()), 0.0) if len(r) >= 3 else 0.0
        allowed = max(
            th.off_min_kwh, th.off_share * reference_scale(rows, ref[ref["machine_id"] == machine])
        )
        excess = rows["energy_kwh"].astype(float) - normal
        hit = excess > allowed
        if not hit.any():
            continue
        flagged = rows[hit]
        out.append(
            make_flags(
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
    return concat_flags(out)


def flat_hours(frame: pd.DataFrame, th: Thresholds, min_kw: float) -> pd.Series:
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
    ref, cur = split_reference(hourly, start, th)
    out = []
    for machine, rows in cur.groupby("machine_id", sort=True):
        r = ref[ref["machine_id"] == machine]
        min_kw = max(th.min_kw, 0.01 * reference_scale(rows, r))
        on_ref = r[r["avg_kw"].astype(float) >= min_kw]
        if len(on_ref) >= th.min_reference_hours:
            varies = pd.Series(
                flat_hours(on_ref, th, min_kw).mean() < th.flat_share_normal, rows.index
            )
        else:
            states = (rows[["running_h", "idle_h", "off_h"]].astype(float) >= 0.05).sum(axis=1)
            varies = states >= 2
        flat = flat_hours(rows, th, min_kw) & varies
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
            make_flags(
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
    return concat_flags(out)


def detect_rule_anomalies(
    hourly: pd.DataFrame, start, th: Thresholds = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """All rules: out of hours, idle power, base load, power while off, stuck signal."""
    return concat_flags(
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
