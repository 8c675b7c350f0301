"""The production calendar that drives every machine: shifts, weekends, holidays, changeovers.

Everything here is a function of absolute time and the seed (never of where a simulation window
starts), so the same instant always gets the same schedule.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from enms_dagster.plant import Site

PREHEAT_S = 45 * 60  # moulding barrels heat up before the shift
PRECONDITION_S = 60 * 60  # HVAC switches to occupied an hour before the shift


def stable_id(text: str) -> int:
    return zlib.crc32(text.encode())


def local_clock(site: Site, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local seconds since midnight, local day number (days since 1970-01-01 in local time) and
    whether that local day is a working day (shift weekday, not a holiday)."""
    local = pd.DatetimeIndex(pd.to_datetime(ts, unit="s", utc=True)).tz_convert(site.timezone)
    seconds = (local.hour * 3600 + local.minute * 60 + local.second).to_numpy(dtype=float)
    wall = local.tz_localize(None).to_numpy().astype("datetime64[s]").astype(np.int64)
    local_day = wall // 86400  # days since 1970-01-01 on the local calendar
    holidays = np.array(
        [(d - pd.Timestamp("1970-01-01").date()).days for d in site.holidays], dtype=np.int64
    )
    weekday = (local_day + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    working = np.isin(weekday, site.shift.weekdays) & ~np.isin(local_day, holidays)
    return seconds, local_day, working


def shift_bounds_s(site: Site) -> tuple[int, int]:
    start = site.shift.start.hour * 3600 + site.shift.start.minute * 60
    end = site.shift.end.hour * 3600 + site.shift.end.minute * 60
    return start, end


def line_schedule(
    site: Site, line: str, seconds: np.ndarray, local_day: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Changeovers and product rates of one line: per local day one to three changeovers of
    20–50 minutes inside the shift (the line stops), and between them products that run at
    0.75–1.25 of nominal speed. Returns (in_changeover, product_rate) per sample."""
    start_s, end_s = shift_bounds_s(site)
    changeover = np.zeros(len(seconds), dtype=bool)
    rate = np.ones(len(seconds))
    for day in np.unique(local_day):
        rng = np.random.default_rng([seed, stable_id(site.site_id), stable_id(line), int(day), 3])
        count = int(rng.integers(1, 4))
        starts = np.sort(rng.uniform(start_s + 1800, end_s - 3600, count))
        lengths = rng.uniform(1200, 3000, count)
        rates = rng.uniform(0.75, 1.25, count + 1)
        mask = local_day == day
        secs = seconds[mask]
        segment = np.searchsorted(starts, secs, side="right")
        in_co = np.zeros(len(secs), dtype=bool)
        for s, length in zip(starts, lengths, strict=True):
            in_co |= (secs >= s) & (secs < s + length)
        changeover[mask] = in_co
        rate[mask] = rates[segment]
    return changeover, rate


def demand_wave(site: Site, ts: np.ndarray, seed: int) -> np.ndarray:
    """Slow variation (±~20 %) of the plant's compressed-air use: a few incommensurate waves
    with seeded phases, continuous in absolute time."""
    rng = np.random.default_rng([seed, stable_id(site.site_id), 11])
    periods = np.array([37 * 60, 2.3 * 3600, 5.1 * 3600])
    phases = rng.uniform(0, 2 * np.pi, 3)
    t = ts.astype(float)
    wave = sum(0.08 * np.sin(2 * np.pi * t / p + ph) for p, ph in zip(periods, phases, strict=True))
    return 1.0 + wave


def synoptic_anomaly(site: Site, ts: np.ndarray, seed: int) -> np.ndarray:
    """Multi-day weather (fronts, warm and cold spells): ±~5 K waves of 2.7–9.5 days."""
    rng = np.random.default_rng([seed, stable_id(site.site_id), 13])
    periods = np.array([2.7, 4.3, 6.1, 9.5]) * 86400
    amplitudes = np.array([1.2, 1.6, 2.0, 2.4])
    phases = rng.uniform(0, 2 * np.pi, 4)
    t = ts.astype(float)
    return sum(
        a * np.sin(2 * np.pi * t / p + ph)
        for a, p, ph in zip(amplitudes, periods, phases, strict=True)
    )
