"""Energy baselines (ISO 50006 regression EnBs) with the statistics an auditor checks.

A baseline is an ordinary least-squares model of energy on relevant variables (drivers) over a
baseline period, at daily or hourly resolution. The input is one row per hour (``hourly_frame``
columns below); daily models aggregate it by local date. Driver selection keeps the candidates
that are statistically significant and physically signed; every model reports n, p, R²,
adjusted R², CV(RMSE) and NMBE with (n − p), the overall F-test, each coefficient with t and p,
the driver ranges, data sufficiency and pass/fail against ASHRAE Guideline 14 and the DOE SEP
validity tests. A model serializes to JSON and predicts the same numbers
after loading.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

RESOLUTIONS = ("daily", "hourly")
MIN_CANDIDATES = 3

# Columns of the frame a baseline is fitted on (one row per scope and hour: a machine or a whole
# site; not the per-machine hourly frame of ``enms_dagster.hourly.frame``).
FIT_FRAME_COLUMNS = (
    "hour_start",  # UTC, start of the hour
    "local_date",
    "local_hour",
    "is_working_day",  # a shift weekday that is not a holiday
    "is_shift",  # the hour starts inside the shift on a working day
    "energy_kwh",
    "outdoor_temperature_c",
    "parts",  # parts the machine (or site) made
    "site_parts",  # parts the whole site made
    "running_h",
    "idle_h",
)


@dataclass(frozen=True)
class DriverSpec:
    """A candidate relevant variable: how it is computed and which sign physics allows."""

    name: str
    description: str
    unit_daily: str
    unit_hourly: str
    non_negative_slope: bool = True  # more of it cannot mean less energy


DRIVERS: dict[str, DriverSpec] = {
    spec.name: spec
    for spec in (
        DriverSpec("parts", "parts this machine (or site) produced", "parts", "parts"),
        DriverSpec("site_parts", "parts the whole site produced", "parts", "parts"),
        DriverSpec("running_h", "hours running (producing, loaded)", "h", "h"),
        DriverSpec("idle_h", "hours powered but idle", "h", "h"),
        DriverSpec("operating_h", "hours running or idle", "h", "h"),
        DriverSpec(
            "heating_degrees",
            "heating degree-days (daily) or -hours (hourly) at a searched balance point",
            "K·d",
            "K·h",
        ),
        DriverSpec(
            "cooling_degrees",
            "cooling degree-days (daily) or -hours (hourly) at a searched balance point",
            "K·d",
            "K·h",
        ),
        DriverSpec(
            "shift_hours", "hours inside the shift (daily) or 1 in shift (hourly)", "h", "h"
        ),
        DriverSpec(
            "working_day", "1 on a working day, 0 at weekends and holidays", "-", "-", False
        ),
    )
}
DEGREE_DRIVERS = {"heating_degrees": +1, "cooling_degrees": -1}  # sign of (base − temperature)
BALANCE_POINTS_C = tuple(float(b) for b in np.arange(10.0, 30.01, 1.0))  # ≤ 1.5 °C steps

# Validity gates: ASHRAE Guideline 14 and DOE SEP
ASHRAE14 = {"daily": (0.15, 0.05), "hourly": (0.30, 0.10)}  # CV(RMSE), |NMBE|
SEP_F_P, SEP_DRIVER_P, SEP_ONE_DRIVER_P, SEP_R2 = 0.10, 0.20, 0.10, 0.50
SELECTION_P = 0.10  # backward elimination keeps drivers below this p-value
MIN_DAY_COVERAGE = 0.90  # CalTRACK: at most 10 % of days missing
MIN_HOUR_COVERAGE = 0.90  # CalTRACK hourly: ≥ 90 % of hours in each month
FULL_YEAR_DAYS = 365
ENPI_MIN_SHARE = 0.05  # EnPI is left out where expected energy is below 5 % of the mean


class BaselineRequestError(ValueError):
    """A training request that cannot be fitted: the message says what is missing."""


@dataclass(frozen=True)
class BaselineRequest:
    """What to fit: whose energy, at which resolution, on which candidate drivers, over when."""

    scope_id: str
    resolution: str
    candidates: tuple[str, ...]
    period_start: dt.date | None = None  # local dates, inclusive; None = from the first data
    period_end: dt.date | None = None  # None = the first full year or all the history


def validate_request(request: BaselineRequest) -> None:
    """Reject a request with fewer than three candidate drivers, unknown drivers or an unknown
    resolution, naming what is missing and what is available."""
    available = ", ".join(DRIVERS)
    if request.resolution not in RESOLUTIONS:
        raise BaselineRequestError(
            f"{request.scope_id}: resolution {request.resolution!r} is not one of {RESOLUTIONS}"
        )
    unknown = [c for c in request.candidates if c not in DRIVERS]
    if unknown:
        raise BaselineRequestError(
            f"{request.scope_id}: unknown candidate drivers {unknown}; available: {available}"
        )
    distinct = list(dict.fromkeys(request.candidates))
    if len(distinct) < MIN_CANDIDATES:
        missing = MIN_CANDIDATES - len(distinct)
        raise BaselineRequestError(
            f"{request.scope_id}: a baseline needs at least {MIN_CANDIDATES} candidate drivers, "
            f"got {len(distinct)} ({', '.join(distinct) or 'none'}); name {missing} more "
            f"from the available drivers: {available}"
        )
    if request.period_start and request.period_end and request.period_end < request.period_start:
        raise BaselineRequestError(
            f"{request.scope_id}: baseline period ends ({request.period_end}) before it starts "
            f"({request.period_start})"
        )


# --- design matrices -------------------------------------------------------------------------


def daily_frame(hourly: pd.DataFrame) -> pd.DataFrame:
    """One row per local date: sums of energy and activity, hours present, mean temperature."""
    h = hourly.assign(
        operating_h=hourly["running_h"] + hourly["idle_h"],
        shift_hours=hourly["is_shift"].astype(float),
        working_day=hourly["is_working_day"].astype(float),
    )
    grouped = h.groupby("local_date", sort=True)
    out = grouped.agg(
        energy_kwh=("energy_kwh", "sum"),
        parts=("parts", lambda s: s.sum(min_count=1)),
        site_parts=("site_parts", lambda s: s.sum(min_count=1)),
        running_h=("running_h", "sum"),
        idle_h=("idle_h", "sum"),
        operating_h=("operating_h", "sum"),
        shift_hours=("shift_hours", "sum"),
        working_day=("working_day", "max"),
        outdoor_temperature_c=("outdoor_temperature_c", "mean"),
        hours=("energy_kwh", "size"),
    )
    return out


def _hours_per_day(hourly: pd.DataFrame) -> pd.Series:
    return hourly.groupby("local_date")["energy_kwh"].transform("size")


@dataclass(frozen=True)
class _Design:
    x: np.ndarray
    names: list[str]


def _tow_levels(frame: pd.DataFrame) -> pd.Series:
    """Time-of-week term for hourly models: hour of day on working days and on other days."""
    return np.where(frame["is_working_day"], "w", "o") + frame["local_hour"].astype(int).map(
        "{:02d}".format
    )


def _degrees(frame: pd.DataFrame, driver: str, base_c: float, resolution: str) -> np.ndarray:
    """Degree-hours per row (hourly) or degree-days per local date from hourly temperatures."""
    sign = DEGREE_DRIVERS[driver]
    t = frame["outdoor_temperature_c"].to_numpy(float)
    return np.clip(sign * (base_c - t), 0.0, None) / (24.0 if resolution == "daily" else 1.0)


def driver_column(
    frame: pd.DataFrame, driver: str, resolution: str, base_c: float | None = None
) -> np.ndarray:
    """The values of one driver on ``frame`` (an hourly frame or a ``daily_frame``)."""
    if driver in DEGREE_DRIVERS:
        if resolution == "daily":
            return frame[f"_{driver}_{base_c}"].to_numpy(float)
        return _degrees(frame, driver, base_c, resolution)
    if driver == "operating_h" and "operating_h" not in frame:
        return (frame["running_h"] + frame["idle_h"]).to_numpy(float)
    if driver == "shift_hours" and resolution == "hourly":
        return frame["is_shift"].to_numpy(float)
    if driver == "working_day" and resolution == "hourly":
        return frame["is_working_day"].to_numpy(float)
    return frame[driver].to_numpy(float)


def _with_daily_degrees(hourly: pd.DataFrame, daily: pd.DataFrame, bases: dict) -> pd.DataFrame:
    """Add degree-day columns for the given bases (summed from hourly temperatures)."""
    extra = {}
    for driver, base_values in bases.items():
        for base in base_values:
            col = f"_{driver}_{base}"
            if col in daily:
                continue
            per_hour = pd.Series(_degrees(hourly, driver, base, "daily"), index=hourly.index)
            extra[col] = per_hour.groupby(hourly["local_date"]).sum()
    return daily.assign(**extra) if extra else daily


def _design(
    frame: pd.DataFrame,
    resolution: str,
    drivers: Sequence[str],
    bases: dict[str, float],
    tow_levels: Sequence[str] | None,
) -> _Design:
    columns = [np.ones(len(frame))]
    names = ["intercept"]
    if resolution == "hourly":
        levels = _tow_levels(frame)
        for level in (tow_levels or [])[1:]:  # the first level is the intercept
            columns.append((levels == level).astype(float))
            names.append(f"tow_{level}")
    for driver in drivers:
        columns.append(driver_column(frame, driver, resolution, bases.get(driver)))
        names.append(driver)
    return _Design(np.column_stack(columns), names)


# --- fitting ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coefficient:
    name: str
    value: float
    std_error: float
    t: float
    p: float


@dataclass(frozen=True)
class Gate:
    source: str
    test: str
    passed: bool
    detail: str


@dataclass
class FitStatistics:
    n: int
    p: int
    r2: float
    adj_r2: float
    cv_rmse: float
    nmbe: float
    rmse: float
    f_statistic: float
    f_pvalue: float
    mean_energy_kwh: float
    residual_autocorrelation: float
    coefficients: list[Coefficient]


def ols_statistics(x: np.ndarray, y: np.ndarray, names: Sequence[str]) -> FitStatistics:
    """OLS with an intercept in the first column of ``x``: the ASHRAE 14 / DOE SEP figures."""
    from scipy import stats

    n, p = x.shape
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    fitted = x @ beta
    resid = y - fitted
    dof = n - p
    sse = float(resid @ resid)
    sst = float(((y - y.mean()) ** 2).sum())
    sigma2 = sse / dof if dof > 0 else math.nan
    try:
        cov = sigma2 * np.linalg.inv(x.T @ x)
        se = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:
        se = np.full(p, math.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = beta / se
    p_values = 2 * stats.t.sf(np.abs(t), dof) if dof > 0 else np.full(p, math.nan)
    r2 = 1 - sse / sst if sst > 0 else math.nan
    adj_r2 = 1 - (1 - r2) * (n - 1) / dof if dof > 0 else math.nan
    if p > 1 and dof > 0 and sse > 0:
        f_stat = ((sst - sse) / (p - 1)) / (sse / dof)
        f_p = float(stats.f.sf(f_stat, p - 1, dof))
    else:
        f_stat, f_p = math.nan, math.nan
    mean_y = float(y.mean())
    rmse = math.sqrt(sigma2) if dof > 0 else math.nan
    rho = float(np.corrcoef(resid[:-1], resid[1:])[0, 1]) if n > 2 and resid.std() > 0 else 0.0
    return FitStatistics(
        n=n,
        p=p,
        r2=r2,
        adj_r2=adj_r2,
        cv_rmse=rmse / mean_y if mean_y else math.nan,
        nmbe=float(resid.sum()) / (dof * mean_y) if dof > 0 and mean_y else math.nan,
        rmse=rmse,
        f_statistic=f_stat,
        f_pvalue=f_p,
        mean_energy_kwh=mean_y,
        residual_autocorrelation=rho,
        coefficients=[
            Coefficient(name, float(b), float(s), float(tt), float(pp))
            for name, b, s, tt, pp in zip(names, beta, se, t, p_values, strict=True)
        ],
    )


@dataclass
class BaselineModel:
    """A fitted baseline: enough to predict again, and everything an auditor reads."""

    scope_id: str
    resolution: str
    period_start: dt.date
    period_end: dt.date
    candidates: list[str]
    drivers: list[str]
    balance_points_c: dict[str, float]
    tow_levels: list[str] | None
    coefficients: dict[str, float]
    statistics: FitStatistics
    driver_ranges: dict[str, dict[str, float]]
    sufficiency: dict[str, Any]
    gates: list[Gate]
    selection_log: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def failures(self) -> list[str]:
        return [f"{g.source}: {g.detail}" for g in self.gates if not g.passed]

    def predict(self, hourly: pd.DataFrame) -> pd.Series:
        """Expected kWh per hour (hourly model) or per local date (daily model)."""
        frame = self.frame(hourly)
        design = _design(
            frame, self.resolution, self.drivers, self.balance_points_c, self.tow_levels
        )
        beta = np.array([self.coefficients[name] for name in design.names])
        index = frame.index if self.resolution == "daily" else frame["hour_start"]
        return pd.Series(design.x @ beta, index=index, name="expected_kwh")

    def outside_range(self, frame: pd.DataFrame) -> list[list[str]]:
        """Per row of ``frame`` (from ``self.frame``), the drivers outside the range seen in the
        baseline period: there the expectation is an extrapolation (ASHRAE 14, IPMVP)."""
        outside: list[list[str]] = [[] for _ in range(len(frame))]
        for d, r in self.driver_ranges.items():
            values = driver_column(frame, d, self.resolution, self.balance_points_c.get(d))
            for i in np.flatnonzero((values < r["min"] - 1e-9) | (values > r["max"] + 1e-9)):
                outside[i].append(d)
        return outside

    def frame(self, hourly: pd.DataFrame) -> pd.DataFrame:
        """The rows this model is fitted on or predicts for: hours or local dates."""
        if self.resolution == "hourly":
            return hourly.reset_index(drop=True)
        bases = {d: [b] for d, b in self.balance_points_c.items()}
        return _with_daily_degrees(hourly, daily_frame(hourly), bases)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["period_start"] = self.period_start.isoformat()
        out["period_end"] = self.period_end.isoformat()
        out["valid"] = self.valid
        return _json_safe(out)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> BaselineModel:
        data = dict(data)
        data.pop("valid", None)
        s = dict(data["statistics"])
        s["coefficients"] = [Coefficient(**c) for c in s["coefficients"]]
        return BaselineModel(
            **{
                **data,
                "period_start": dt.date.fromisoformat(data["period_start"]),
                "period_end": dt.date.fromisoformat(data["period_end"]),
                "statistics": FitStatistics(**{k: _from_json(v) for k, v in s.items()}),
                "gates": [Gate(**g) for g in data["gates"]],
            }
        )


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _from_json(value):
    return math.nan if value is None else value


def baseline_period(
    hourly: pd.DataFrame, request: BaselineRequest
) -> tuple[dt.date, dt.date] | None:
    """The requested period, or from the first complete local day for a full year (or up to the
    last complete day, when there is less than a year of history)."""
    hours = hourly.groupby("local_date")["energy_kwh"].count()
    complete = [pd.Timestamp(d).date() for d in hours.index[hours >= 23]]
    if not complete:
        return None
    first = request.period_start or min(complete)
    last = request.period_end or min(max(complete), first + dt.timedelta(days=FULL_YEAR_DAYS - 1))
    return first, last


def fit_baseline(hourly: pd.DataFrame, request: BaselineRequest) -> BaselineModel:
    """Fit ``request`` on a fit frame (FIT_FRAME_COLUMNS) restricted to the baseline period.

    Raises BaselineRequestError for requests that cannot be fitted (fewer than three
    candidates, no data in the period)."""
    validate_request(request)
    period = baseline_period(hourly, request)
    if period is None:
        raise BaselineRequestError(f"{request.scope_id}: no hourly energy to fit a baseline on")
    first, last = period
    dates = pd.to_datetime(hourly["local_date"]).dt.date
    in_period = hourly[(dates >= first) & (dates <= last)]
    in_period = in_period.dropna(subset=["energy_kwh"]).sort_values("hour_start")
    if in_period.empty:
        raise BaselineRequestError(
            f"{request.scope_id}: no hourly energy between {first} and {last}"
        )
    log: list[str] = []
    candidates = list(dict.fromkeys(request.candidates))
    resolution = request.resolution

    if "outdoor_temperature_c" in in_period and in_period["outdoor_temperature_c"].isna().any():
        needs_weather = [c for c in candidates if c in DEGREE_DRIVERS]
        if needs_weather:
            missing = int(in_period["outdoor_temperature_c"].isna().sum())
            log.append(f"dropped {missing} hours without outdoor temperature")
            in_period = in_period.dropna(subset=["outdoor_temperature_c"])

    if resolution == "daily":
        full = _hours_per_day(in_period) >= 23  # 23 on the spring daylight-saving day
        dropped = in_period.loc[~full, "local_date"].nunique()
        if dropped:
            log.append(f"left out {dropped} local days with fewer than 23 hours of data")
        in_period = in_period[full]
        search = {d: list(BALANCE_POINTS_C) for d in candidates if d in DEGREE_DRIVERS}
        frame = _with_daily_degrees(in_period, daily_frame(in_period), search)
        tow = None
    else:
        frame = in_period.reset_index(drop=True)
        tow = sorted(set(_tow_levels(frame)))
    if len(frame) < 10:
        raise BaselineRequestError(
            f"{request.scope_id}: only {len(frame)} {resolution} rows with data between "
            f"{first} and {last}; a baseline needs more"
        )
    y = frame["energy_kwh"].to_numpy(float)

    drivers = [d for d in candidates if not _parts_missing(frame, d)]
    for d in set(candidates) - set(drivers):
        log.append(f"{d}: no data in the period, not a usable driver")
    bases: dict[str, float] = {}
    drivers, bases = _select(frame, y, resolution, drivers, tow, log)

    design = _design(frame, resolution, drivers, bases, tow)
    statistics = ols_statistics(design.x, y, design.names)
    coefficients = {c.name: c.value for c in statistics.coefficients}
    ranges = {}
    for d in drivers:
        values = driver_column(frame, d, resolution, bases.get(d))
        ranges[d] = {
            "min": float(values.min()),
            "max": float(values.max()),
            "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        }
    sufficiency = _sufficiency(in_period, first, last, resolution)
    model = BaselineModel(
        scope_id=request.scope_id,
        resolution=resolution,
        period_start=first,
        period_end=last,
        candidates=candidates,
        drivers=drivers,
        balance_points_c=bases,
        tow_levels=tow,
        coefficients=coefficients,
        statistics=statistics,
        driver_ranges=ranges,
        sufficiency=sufficiency,
        gates=[],
        selection_log=log,
    )
    model.gates = evaluate_gates(model)
    return model


def _parts_missing(frame: pd.DataFrame, driver: str) -> bool:
    if driver in ("parts", "site_parts"):
        return frame[driver].isna().all()
    return False


class _Columns:
    """The design matrix pieces of one fit, computed once: the structural part (intercept and
    time of week) and each driver column (per balance point)."""

    def __init__(self, frame: pd.DataFrame, resolution: str, tow: list[str] | None):
        self.frame, self.resolution = frame, resolution
        self.structural = _design(frame, resolution, [], {}, tow).x
        self._cache: dict[tuple[str, float | None], np.ndarray] = {}

    def column(self, driver: str, base: float | None) -> np.ndarray:
        key = (driver, base if driver in DEGREE_DRIVERS else None)
        if key not in self._cache:
            self._cache[key] = driver_column(self.frame, driver, self.resolution, key[1])
        return self._cache[key]

    def x(self, drivers: Sequence[str], bases: dict[str, float]) -> np.ndarray:
        return np.column_stack([self.structural, *(self.column(d, bases.get(d)) for d in drivers)])


def _select(
    frame: pd.DataFrame,
    y: np.ndarray,
    resolution: str,
    candidates: list[str],
    tow: list[str] | None,
    log: list[str],
) -> tuple[list[str], dict[str, float]]:
    """Backward elimination: drop collinear or constant candidates, search balance points,
    then remove wrongly signed drivers and the least significant one until all are kept at
    p < SELECTION_P. Every decision is logged."""
    drivers = []
    bases: dict[str, float] = {}
    for d in candidates:  # defaults for the rank check; searched below
        if d in DEGREE_DRIVERS:
            bases[d] = 18.0
    cols = _Columns(frame, resolution, tow)
    rank = np.linalg.matrix_rank(cols.structural)
    for d in candidates:
        column = cols.column(d, bases.get(d))
        if np.isnan(column).any() or np.std(column) == 0:
            log.append(f"{d}: constant or missing in the period, not a usable driver")
            continue
        new_rank = np.linalg.matrix_rank(cols.x([*drivers, d], bases))
        if new_rank <= rank:
            what = "the time-of-week term" if resolution == "hourly" else "the other drivers"
            log.append(f"{d}: a linear combination of {what}, left out")
            continue
        drivers.append(d)
        rank = new_rank
    while True:
        bases = _search_balance_points(cols, y, drivers, bases, log)
        names = [*_design(frame.iloc[:1], resolution, [], {}, tow).names, *drivers]
        fit = ols_statistics(cols.x(drivers, bases), y, names)
        by_name = {c.name: c for c in fit.coefficients}
        wrong = [d for d in drivers if DRIVERS[d].non_negative_slope and by_name[d].value < 0]
        if wrong:
            worst = min(wrong, key=lambda d: by_name[d].t)
            log.append(f"{worst}: slope {by_name[worst].value:.4g} < 0 is not physical, removed")
            drivers.remove(worst)
            continue
        weak = [d for d in drivers if not by_name[d].p < SELECTION_P]
        if weak:
            worst = max(weak, key=lambda d: by_name[d].p)
            log.append(f"{worst}: p = {by_name[worst].p:.3g} ≥ {SELECTION_P}, removed")
            drivers.remove(worst)
            continue
        break
    return drivers, {d: b for d, b in bases.items() if d in drivers}


def _search_balance_points(
    cols: _Columns,
    y: np.ndarray,
    drivers: list[str],
    bases: dict[str, float],
    log: list[str],
) -> dict[str, float]:
    """Grid-search the balance point of each degree driver (the others held) for the least
    squared error; heating's base is kept at or below cooling's."""
    bases = dict(bases)
    for d in [d for d in drivers if d in DEGREE_DRIVERS]:
        best = (math.inf, bases[d])
        for base in BALANCE_POINTS_C:
            other = bases.get("cooling_degrees" if d == "heating_degrees" else "heating_degrees")
            if other is not None and (
                (d == "heating_degrees" and base > other and "cooling_degrees" in drivers)
                or (d == "cooling_degrees" and base < other and "heating_degrees" in drivers)
            ):
                continue
            if np.std(cols.column(d, base)) == 0:
                continue
            x = cols.x(drivers, {**bases, d: base})
            beta, *_ = np.linalg.lstsq(x, y, rcond=None)
            sse = float(((y - x @ beta) ** 2).sum())
            if sse < best[0]:
                best = (sse, base)
        if best[1] != bases[d]:
            log.append(f"{d}: balance point {best[1]:g} °C (searched {BALANCE_POINTS_C[0]:g}–"
                       f"{BALANCE_POINTS_C[-1]:g} °C)")  # fmt: skip
        bases[d] = best[1]
    return bases


def _sufficiency(
    in_period: pd.DataFrame, first: dt.date, last: dt.date, resolution: str
) -> dict[str, Any]:
    days_in_period = (last - first).days + 1
    dates = pd.to_datetime(in_period["local_date"])
    days_with_data = int(dates.dt.date.nunique())
    out: dict[str, Any] = {
        "days_in_period": days_in_period,
        "days_with_data": days_with_data,
        "day_coverage": days_with_data / days_in_period,
        "full_year": days_in_period >= FULL_YEAR_DAYS,
    }
    if resolution == "hourly":
        hours = in_period.groupby(dates.dt.to_period("M")).size()
        expected = pd.Series(
            {
                month: 24
                * (min(last, month.end_time.date()) - max(first, month.start_time.date())).days
                + 24
                for month in hours.index
            }
        )
        coverage = (hours / expected).clip(upper=1.0)
        out["min_month_hour_coverage"] = float(coverage.min()) if len(coverage) else 0.0
    return out


def evaluate_gates(model: BaselineModel) -> list[Gate]:
    """Pass/fail with the reason, against ASHRAE Guideline 14, DOE SEP and CalTRACK."""
    s = model.statistics
    cv_max, nmbe_max = ASHRAE14[model.resolution]
    gates = [
        Gate(
            "ASHRAE 14",
            "CV(RMSE)",
            s.cv_rmse <= cv_max,
            f"CV(RMSE) {s.cv_rmse:.1%} {'≤' if s.cv_rmse <= cv_max else '>'} {cv_max:.0%}",
        ),
        Gate(
            "ASHRAE 14",
            "NMBE",
            abs(s.nmbe) <= nmbe_max,
            f"|NMBE| {abs(s.nmbe):.2%} {'≤' if abs(s.nmbe) <= nmbe_max else '>'} {nmbe_max:.0%}",
        ),
        Gate(
            "DOE SEP",
            "F-test",
            s.f_pvalue < SEP_F_P,
            f"F-test p = {s.f_pvalue:.3g} {'<' if s.f_pvalue < SEP_F_P else '≥'} {SEP_F_P}",
        ),
        Gate(
            "DOE SEP",
            "R²",
            s.r2 >= SEP_R2,
            f"R² = {s.r2:.3f} {'≥' if s.r2 >= SEP_R2 else '<'} {SEP_R2}",
        ),
    ]
    by_name = {c.name: c for c in s.coefficients}
    kept = [by_name[d] for d in model.drivers]
    if not kept:
        gates.append(Gate("DOE SEP", "drivers", False, "no driver is significant"))
    else:
        weak = [c.name for c in kept if not c.p < SEP_DRIVER_P]
        strong = [c.name for c in kept if c.p < SEP_ONE_DRIVER_P]
        ok = not weak and bool(strong)
        detail = (
            f"every driver p < {SEP_DRIVER_P}, {len(strong)} below {SEP_ONE_DRIVER_P}"
            if ok
            else f"drivers with p ≥ {SEP_DRIVER_P}: {weak}; below {SEP_ONE_DRIVER_P}: {strong}"
        )
        gates.append(Gate("DOE SEP", "drivers", ok, detail))
    suff = model.sufficiency
    day_ok = suff["day_coverage"] >= MIN_DAY_COVERAGE
    gates.append(
        Gate(
            "CalTRACK",
            "days",
            day_ok,
            f"{suff['days_with_data']} of {suff['days_in_period']} days with data "
            f"({suff['day_coverage']:.0%}; at least {MIN_DAY_COVERAGE:.0%})",
        )
    )
    if model.resolution == "hourly":
        cov = suff["min_month_hour_coverage"]
        gates.append(
            Gate(
                "CalTRACK",
                "hours",
                cov >= MIN_HOUR_COVERAGE,
                f"lowest monthly hour coverage {cov:.0%} (at least {MIN_HOUR_COVERAGE:.0%})",
            )
        )
    return gates


# --- performance against the baseline -------------------------------------------------------


@dataclass(frozen=True)
class SavingsUncertainty:
    """ASHRAE 14 savings uncertainty for ``m`` reporting points (absolute, kWh)."""

    confidence: float
    kwh: float


def savings_uncertainty(
    statistics: FitStatistics, m: int, confidence: float = 0.68
) -> SavingsUncertainty:
    """ASHRAE Guideline 14 (Annex B): U = t · 1.26 · CV · Ē · m · sqrt((n/n')(1 + 2/n')/m), with
    n' = n(1 − ρ)/(1 + ρ) the effective sample size under lag-1 autocorrelation ρ of the
    baseline residuals; Ē · CV is the RMSE, so U = t · 1.26 · RMSE · sqrt(m (n/n')(1 + 2/n'))."""
    from scipy import stats

    if m <= 0:
        return SavingsUncertainty(confidence, 0.0)
    n, p = statistics.n, statistics.p
    rho = max(statistics.residual_autocorrelation, 0.0)
    n_eff = max(n * (1 - rho) / (1 + rho), p + 1.0)
    t = float(stats.t.ppf(0.5 + confidence / 2, max(n_eff - p, 1.0)))
    u = t * 1.26 * statistics.rmse * math.sqrt(m * (n / n_eff) * (1 + 2 / n_eff))
    return SavingsUncertainty(confidence, u)


def performance(model: BaselineModel, hourly: pd.DataFrame) -> pd.DataFrame:
    """Per row of the model's resolution from the start of the baseline period: actual and
    expected kWh, normalized EnPI (actual ÷ expected, where the model expects at least
    ENPI_MIN_SHARE of its mean), savings (expected − actual), the CUSUM
    of savings after the baseline period with its 68 % and 95 % uncertainty, and the drivers
    outside the range seen in the baseline (extrapolation)."""
    frame = model.frame(hourly)
    if model.resolution == "daily":
        frame = frame[frame["hours"] >= 23]
        when = pd.Series(frame.index, index=frame.index)
        dates = when
    else:
        when = frame["hour_start"]
        dates = pd.to_datetime(frame["local_date"]).dt.date
    keep = (dates >= model.period_start).to_numpy()
    frame = frame[keep]
    if frame.empty:
        return pd.DataFrame(
            columns=["at", "actual_kwh", "expected_kwh", "enpi", "savings_kwh",
                     "in_baseline_period", "cusum_savings_kwh", "uncertainty_68_kwh",
                     "uncertainty_95_kwh", "extrapolated_drivers"]
        )  # fmt: skip
    design = _design(
        frame, model.resolution, model.drivers, model.balance_points_c, model.tow_levels
    )
    beta = np.array([model.coefficients[name] for name in design.names])
    expected = design.x @ beta
    actual = frame["energy_kwh"].to_numpy(float)
    at = frame.index if model.resolution == "daily" else frame["hour_start"]
    period_dates = pd.Series(dates[keep].to_numpy())
    in_period = (period_dates <= model.period_end).to_numpy()
    savings = expected - actual
    after = np.where(in_period, 0.0, savings)
    cusum = np.where(in_period, np.nan, np.cumsum(after))
    m = np.cumsum(~in_period)
    u68 = [savings_uncertainty(model.statistics, int(k), 0.68).kwh if k else np.nan for k in m]
    u95 = [savings_uncertainty(model.statistics, int(k), 0.95).kwh if k else np.nan for k in m]
    outside = model.outside_range(frame)
    # EnPI only where the model expects real consumption: a closed day expecting 0.3 kWh
    # against 0 measured is not "100 % better".
    meaningful = expected > ENPI_MIN_SHARE * model.statistics.mean_energy_kwh
    with np.errstate(divide="ignore", invalid="ignore"):
        enpi = np.where(meaningful, actual / expected, np.nan)
    return pd.DataFrame(
        {
            "at": list(at),
            "actual_kwh": actual,
            "expected_kwh": expected,
            "enpi": enpi,
            "savings_kwh": savings,
            "in_baseline_period": in_period,
            "cusum_savings_kwh": cusum,
            "uncertainty_68_kwh": u68,
            "uncertainty_95_kwh": u95,
            "extrapolated_drivers": outside,
        }
    )
