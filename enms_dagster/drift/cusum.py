"""Drift of a machine's energy away from its baseline: a two-sided CUSUM of daily residuals.

The residual of a day is actual − expected kWh from the machine's active daily baseline, for the
days after the baseline period. Standardized by the baseline's own residual spread σ, a tabular
CUSUM accumulates what exceeds an allowance k on either side (S⁺ for more energy than expected,
S⁻ for less) and raises an alarm when a side passes the threshold h. A sudden step of d·σ is
found after about h / (d − k) days (a 2σ step in about 6 days, 3σ in 4); a slow drift once
its accumulated excess passes h. On independent noise the defaults (k = 0.5, h = 8) give one
false alarm per side in about 19,000 days (Siegmund's approximation): 20 machines see roughly
one false drift a year.

An alarm is an **event**: the excursion of one side from the day after it last stood at zero
(the estimated start of the change) to the day it crossed h. While that side stays above zero
the same drift raises no second event; a new one needs the CUSUM to return to zero first. The
event id is built from the machine, the side and the start day, so finding the same drift again
(after a re-fit on the same period, or a re-run) yields the same id.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

METHOD = "cusum"


@dataclass(frozen=True)
class DriftSettings:
    allowance: float = 0.5  # k, in σ: shifts smaller than this are not accumulated
    threshold: float = 8.0  # h, in σ
    min_sigma_share: float = 0.02  # σ is at least this share of the mean expected daily energy


@dataclass(frozen=True)
class CusumAlarm:
    """One excursion of one CUSUM side past the threshold (positions in the input series)."""

    direction: str  # "up" (S⁺: more energy than expected) or "down" (S⁻)
    start: int  # first position of the excursion
    detected: int  # position where the statistic first exceeded the threshold
    statistic: float


def cusum_alarms(z: np.ndarray, allowance: float, threshold: float) -> list[CusumAlarm]:
    """Two-sided tabular CUSUM of standardized values ``z``: one alarm per excursion of a side
    above ``threshold`` (an excursion ends when the side returns to zero)."""
    alarms = []
    for direction, sign in (("up", 1.0), ("down", -1.0)):
        s, start, alarmed = 0.0, 0, False
        for i, value in enumerate(np.asarray(z, dtype=float)):
            if math.isnan(value):
                continue  # a missing day neither adds nor resets
            s = max(0.0, s + sign * value - allowance)
            if s == 0.0:
                start, alarmed = i + 1, False
            elif s > threshold and not alarmed:
                alarms.append(CusumAlarm(direction, start, i, s))
                alarmed = True
    return sorted(alarms, key=lambda a: (a.detected, a.direction))


def cusum_path(z: np.ndarray, allowance: float) -> tuple[np.ndarray, np.ndarray]:
    """S⁺ and S⁻ after each value (for charts and evidence)."""
    up, down = np.zeros(len(z)), np.zeros(len(z))
    s_up = s_down = 0.0
    for i, value in enumerate(np.asarray(z, dtype=float)):
        if not math.isnan(value):
            s_up = max(0.0, s_up + value - allowance)
            s_down = max(0.0, s_down - value - allowance)
        up[i], down[i] = s_up, s_down
    return up, down


def residual_sigma(
    rmse_kwh: float, autocorrelation: float, mean_kwh: float, settings: DriftSettings
) -> float:
    """The CUSUM's unit: the baseline's daily RMSE, widened for positive lag-1 autocorrelation ρ
    of its residuals to the long-run spread sqrt((1 + ρ) / (1 − ρ)) (correlated days otherwise
    accumulate like a drift), and at least ``min_sigma_share`` of the mean daily energy."""
    rho = min(max(autocorrelation if math.isfinite(autocorrelation) else 0.0, 0.0), 0.9)
    sigma = rmse_kwh * math.sqrt((1 + rho) / (1 - rho)) if math.isfinite(rmse_kwh) else 0.0
    return max(sigma, settings.min_sigma_share * abs(mean_kwh), 1e-9)


@dataclass(frozen=True)
class DriftEvent:
    """A drift found on one machine, with what proves it."""

    event_id: str
    machine_id: str
    model_id: int
    direction: str
    change_start: dt.date
    detected_on: dt.date
    statistic: float
    threshold: float
    allowance: float
    sigma_kwh: float
    mean_residual_kwh: float
    mean_residual_share: float | None
    residuals: list[dict]  # per day of the excursion: date, actual, expected, residual, cusum

    @property
    def delay_days(self) -> int:
        return (self.detected_on - self.change_start).days

    @property
    def evidence(self) -> str:
        share = (
            f" ({self.mean_residual_share:+.1%} of expected)"
            if self.mean_residual_share is not None
            else ""
        )
        more = "more" if self.direction == "up" else "less"
        return (
            f"{self.machine_id} uses {more} energy than its baseline (model {self.model_id}) "
            f"since {self.change_start}: {self.mean_residual_kwh:+,.1f} kWh/day{share}; CUSUM "
            f"{self.statistic:.1f}σ > {self.threshold:g}σ on {self.detected_on} "
            f"(σ = {self.sigma_kwh:,.1f} kWh/day, k = {self.allowance:g}σ)"
        )


def drift_event_id(machine_id: str, direction: str, change_start: dt.date) -> str:
    return f"drift-{machine_id}-{direction}-{change_start.isoformat()}"


def detect_drift(
    residuals: pd.DataFrame,
    machine_id: str,
    model_id: int,
    sigma_kwh: float,
    settings: DriftSettings = DriftSettings(),
) -> list[DriftEvent]:
    """Drift events in one machine's daily residuals (columns ``local_date``, ``actual_kwh``,
    ``expected_kwh``; the days after the baseline period, in order), with σ from
    ``residual_sigma``."""
    frame = residuals.sort_values("local_date").reset_index(drop=True)
    if frame.empty:
        return []
    residual = (frame["actual_kwh"] - frame["expected_kwh"]).to_numpy(float)
    z = residual / sigma_kwh
    up, down = cusum_path(z, settings.allowance)
    days = [pd.Timestamp(d).date() for d in frame["local_date"]]
    events = []
    for alarm in cusum_alarms(z, settings.allowance, settings.threshold):
        span = slice(alarm.start, alarm.detected + 1)
        expected = float(frame["expected_kwh"].iloc[span].sum())
        path = up if alarm.direction == "up" else down
        mean = float(np.nanmean(residual[span]))
        events.append(
            DriftEvent(
                event_id=drift_event_id(machine_id, alarm.direction, days[alarm.start]),
                machine_id=machine_id,
                model_id=int(model_id),
                direction=alarm.direction,
                change_start=days[alarm.start],
                detected_on=days[alarm.detected],
                statistic=float(alarm.statistic),
                threshold=settings.threshold,
                allowance=settings.allowance,
                sigma_kwh=float(sigma_kwh),
                mean_residual_kwh=mean,
                mean_residual_share=(
                    float(np.nansum(residual[span])) / expected if expected > 0 else None
                ),
                residuals=[
                    {
                        "local_date": days[i].isoformat(),
                        "actual_kwh": round(float(frame["actual_kwh"].iloc[i]), 3),
                        "expected_kwh": round(float(frame["expected_kwh"].iloc[i]), 3),
                        "residual_kwh": round(float(residual[i]), 3),
                        "cusum": round(float(path[i]), 3),
                    }
                    for i in range(alarm.start, alarm.detected + 1)
                ],
            )
        )
    return events
