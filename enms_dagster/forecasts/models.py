"""Day-ahead hourly energy forecasts.

A forecast is issued at an **origin**, the local midnight that starts the target day, and covers
that day's hours (23, 24 or 25 of them). It sees only hours that start before the origin:
``forecast_day`` drops everything else before any model runs, so the same function serves live
forecasts and rolling-origin backtests. What is known about the target day in advance is its
calendar (``CALENDAR_COLUMNS``: hour, working day, shift); its outdoor temperature is not. The
models take the **persistence forecast** instead — the temperature observed 24 h earlier — in
training, in live forecasts and in backtests alike, so a backtest's skill is what a live forecast
achieves (assuming the later observed temperature, a "perfect weather forecast", would overstate
it; a real weather forecast could replace persistence in ``_prepare``).

Models (``MODELS``), each with a central ``interval`` prediction interval (80 % by default):

- ``seasonal_naive``: the same local hour a week earlier; the reference every other model must
  beat. Interval: quantiles of its own errors in the training window, in
  and out of shift.
- ``prophet``: Prophet on local wall time with the shift and working day, heating and cooling
  degree-hours as regressors, a daily profile per working / non-working day and a weekly one.
- ``arimax``: linear regression with AR(2) errors (statsmodels ARIMA with exogenous regressors,
  feasible GLS) on the same calendar and weather terms plus three daily Fourier harmonics per
  working / non-working day: the daily seasonality of a SARIMA without its 24-lag state.
- ``gbm``: scikit-learn ``HistGradientBoostingRegressor`` on lags 24, 48 and 168 h (every lag is
  at least a day back, so all are known at the origin), the mean of the day before, calendar and
  temperature; the interval is split-conformal (quantiles of its errors on the last training
  days, predicted by a fit without them).

Their scores against seasonal naive and the champion are in ``enms_dagster.forecasts.scoring``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from multiprocessing.context import BaseContext

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from enms_dagster.forecasts.names import MODELS

CALENDAR_COLUMNS = ("hour_start", "local_date", "local_hour", "is_working_day", "is_shift")
FORECAST_COLUMNS = (
    "scope_id",
    "model",
    "hour_start",
    "local_date",
    "origin",
    "horizon_h",
    "forecast_kwh",
    "lower_kwh",
    "upper_kwh",
    "temperature_c",
)
LAGS_H = (24, 48, 168)
WEEK_H = 168


class ForecastError(ValueError):
    """A forecast that cannot be made (too little history): the message says what is missing."""


@dataclass(frozen=True)
class ForecastSettings:
    """How every model is trained; the defaults are the platform's."""

    train_days: int = 56  # days before the origin the models learn from (lags reach 7 more)
    interval: float = 0.80  # central prediction interval
    heating_base_c: float = 16.0  # degree-hour bases of the weather regressors
    cooling_base_c: float = 22.0
    min_history_days: int = 14  # fewer days of history before the origin: no forecast

    @property
    def quantiles(self) -> tuple[float, float]:
        tail = (1.0 - self.interval) / 2
        return tail, 1.0 - tail


# --- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Inputs:
    """A regular hourly grid around one origin: ``train`` (before the origin, energy present)
    and ``future`` (the target hours), both with calendar, weather and lag columns."""

    origin: pd.Timestamp
    train: pd.DataFrame
    future: pd.DataFrame
    history: pd.DataFrame  # the raw history rows in the training window (for seasonal naive)


def _prepare(history: pd.DataFrame, target: pd.DataFrame, settings: ForecastSettings) -> _Inputs:
    origin = pd.Timestamp(target["hour_start"].min())
    first = origin - pd.Timedelta(days=settings.train_days + WEEK_H // 24 + 1)
    history = history[(history["hour_start"] >= first) & (history["hour_start"] < origin)]
    days = pd.to_datetime(history["local_date"]).dt.date.nunique()
    if days < settings.min_history_days:
        raise ForecastError(
            f"{days} days of history before {origin.isoformat()}; "
            f"a forecast needs at least {settings.min_history_days}"
        )
    last = pd.Timestamp(target["hour_start"].max())
    grid = pd.DataFrame(
        {"hour_start": pd.date_range(first, last, freq="h", tz=origin.tz).as_unit("us")}
    )
    observed = history[[*CALENDAR_COLUMNS, "energy_kwh", "outdoor_temperature_c"]]
    future_rows = target[list(CALENDAR_COLUMNS)].assign(energy_kwh=np.nan)
    rows = pd.concat([observed, future_rows], ignore_index=True).drop_duplicates("hour_start")
    rows["hour_start"] = rows["hour_start"].astype(grid["hour_start"].dtype)
    frame = grid.merge(rows, on="hour_start", how="left")
    frame["known"] = frame["local_date"].notna()
    before = (frame["hour_start"] < origin).to_numpy()

    # Weather: the persistence forecast, the temperature observed 24 h earlier (48 h where that
    # is missing). Training rows get the same, so the models learn how far yesterday's weather
    # explains today's load, and their intervals include the weather-forecast error.
    observed_t = frame["outdoor_temperature_c"].where(before)
    if observed_t.notna().any():
        observed_t = observed_t.interpolate(limit_direction="both")
    persisted = observed_t.shift(24).fillna(observed_t.shift(48)).ffill().bfill()
    frame["temperature_c"] = persisted.fillna(10.0)
    frame["heating_degrees"] = np.clip(settings.heating_base_c - frame["temperature_c"], 0, None)
    frame["cooling_degrees"] = np.clip(frame["temperature_c"] - settings.cooling_base_c, 0, None)

    y = frame["energy_kwh"].where(before)  # nothing from the origin on, whatever was passed
    for lag in LAGS_H:
        frame[f"lag{lag}"] = y.shift(lag)
    frame["mean24_lag24"] = y.shift(24).rolling(24, min_periods=12).mean()
    working = frame["is_working_day"].astype(float)
    frame["working_lag24"] = working.shift(24)
    frame["working_lag168"] = working.shift(WEEK_H)
    frame["weekday"] = pd.to_datetime(frame["local_date"]).dt.day_of_week.astype(float)
    for column in ("local_hour", "is_working_day", "is_shift"):
        frame[column] = frame[column].astype(float)

    train_start = origin - pd.Timedelta(days=settings.train_days)
    in_train = before & (frame["hour_start"] >= train_start).to_numpy()
    train = frame[in_train & frame["known"].to_numpy() & y.notna().to_numpy()]
    future = frame[frame["hour_start"].isin(target["hour_start"])].reset_index(drop=True)
    if len(train) < 24 * settings.min_history_days:
        raise ForecastError(
            f"{len(train)} hours of energy in the {settings.train_days} days before "
            f"{origin.isoformat()}; a forecast needs at least {24 * settings.min_history_days}"
        )
    return _Inputs(origin, train.reset_index(drop=True), future, history)


# --- models -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prediction:
    value: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def _residual_interval(
    errors: pd.Series, groups: pd.Series, future_groups: pd.Series, settings: ForecastSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (low, high) per future row from the quantiles of past errors in the same group
    (all errors pooled where a group has fewer than 24)."""
    q_lo, q_hi = settings.quantiles
    errors = errors.dropna()
    groups = groups.loc[errors.index]
    pooled = (errors.quantile(q_lo), errors.quantile(q_hi)) if len(errors) else (0.0, 0.0)
    low = np.full(len(future_groups), pooled[0], dtype=float)
    high = np.full(len(future_groups), pooled[1], dtype=float)
    for group in future_groups.unique():
        in_group = errors[groups == group]
        if len(in_group) >= 24:
            mask = (future_groups == group).to_numpy()
            low[mask], high[mask] = in_group.quantile(q_lo), in_group.quantile(q_hi)
    return low, high


def _same_hour_last_week(frame: pd.DataFrame, observed: pd.DataFrame) -> np.ndarray:
    """Energy at the same local hour seven local days earlier; on the days that follow a
    daylight-saving change and lack that hour, the value 168 h earlier."""
    by_local = observed.groupby(["local_date", "local_hour"])["energy_kwh"].mean()
    keys = pd.MultiIndex.from_arrays(
        [
            pd.to_datetime(frame["local_date"]).dt.date - dt.timedelta(days=7),
            frame["local_hour"].astype(int),
        ]
    )
    value = by_local.reindex(keys).to_numpy()
    by_time = observed.set_index("hour_start")["energy_kwh"]
    by_time = by_time[~by_time.index.duplicated()]
    week_ago = by_time.reindex(frame["hour_start"] - pd.Timedelta(hours=WEEK_H)).to_numpy()
    return np.where(np.isnan(value), week_ago, value)


def _seasonal_naive(inputs: _Inputs, settings: ForecastSettings) -> _Prediction:
    observed = inputs.history.dropna(subset=["energy_kwh"])
    observed = observed.assign(local_date=pd.to_datetime(observed["local_date"]).dt.date)
    value = _same_hour_last_week(inputs.future, observed)
    if np.isnan(value).any():
        raise ForecastError(
            f"no energy a week before {int(np.isnan(value).sum())} target hours; "
            "seasonal naive needs the same hours of last week"
        )
    train = inputs.train
    fitted = pd.Series(_same_hour_last_week(train, observed), index=train.index)
    errors = train["energy_kwh"] - fitted
    low, high = _residual_interval(errors, train["is_shift"], inputs.future["is_shift"], settings)
    return _Prediction(value, value + low, value + high)


GBM_HOLDOUT_DAYS = 14
GBM_FEATURES = (
    "local_hour",
    "weekday",
    "is_working_day",
    "is_shift",
    "temperature_c",
    "lag24",
    "lag48",
    "lag168",
    "mean24_lag24",
    "working_lag24",
    "working_lag168",
)


def _gbm(inputs: _Inputs, settings: ForecastSettings) -> _Prediction:
    """Boosted trees; the interval is split-conformal: quantiles of the errors a model fitted
    without the last ``GBM_HOLDOUT_DAYS`` days (a quarter of a shorter window) makes on them
    (day-ahead errors, since every feature is at least 24 h old), added to the forecast of the
    model fitted on everything."""
    train = inputs.train
    span_days = (inputs.origin - train["hour_start"].min()).days
    holdout_start = inputs.origin - pd.Timedelta(days=min(GBM_HOLDOUT_DAYS, span_days // 4))
    early = (train["hour_start"] < holdout_start).to_numpy()

    from sklearn.ensemble import HistGradientBoostingRegressor

    def fit(rows: pd.DataFrame) -> HistGradientBoostingRegressor:
        model = HistGradientBoostingRegressor(
            max_iter=150,
            learning_rate=0.06,
            max_leaf_nodes=15,
            min_samples_leaf=20,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=0,
        )
        return model.fit(rows[list(GBM_FEATURES)].to_numpy(float), rows["energy_kwh"].to_numpy())

    def predict(model: HistGradientBoostingRegressor, rows: pd.DataFrame) -> np.ndarray:
        return model.predict(rows[list(GBM_FEATURES)].to_numpy(float))

    value = predict(fit(train), inputs.future)
    late = train[~early]
    errors = late["energy_kwh"] - predict(fit(train[early]), late)
    low, high = _residual_interval(errors, late["is_shift"], inputs.future["is_shift"], settings)
    return _Prediction(value, value + low, value + high)


def _fourier(frame: pd.DataFrame, harmonics: int = 3) -> pd.DataFrame:
    """Daily Fourier terms of the local hour, separately on working and non-working days."""
    angle = 2 * np.pi * frame["local_hour"].to_numpy(float) / 24.0
    working = frame["is_working_day"].to_numpy(float)
    columns = {}
    for k in range(1, harmonics + 1):
        for name, wave in (("sin", np.sin(k * angle)), ("cos", np.cos(k * angle))):
            columns[f"{name}{k}_work"] = wave * working
            columns[f"{name}{k}_off"] = wave * (1 - working)
    return pd.DataFrame(columns, index=frame.index)


def _arimax(inputs: _Inputs, settings: ForecastSettings) -> _Prediction:
    from statsmodels.tsa.arima.model import ARIMA

    # A regular hourly grid over the training window; the calendar of a missing hour is taken
    # from its neighbours (its energy stays missing).
    grid = inputs.train.set_index("hour_start").sort_index()
    full = pd.date_range(grid.index.min(), inputs.origin - pd.Timedelta(hours=1), freq="h")
    train = grid.reindex(full.as_unit(grid.index.unit))
    future = inputs.future.set_index("hour_start")

    def exog(frame: pd.DataFrame) -> pd.DataFrame:
        base = frame[["is_shift", "is_working_day", "heating_degrees", "cooling_degrees"]]
        return pd.concat([base, _fourier(frame)], axis=1).astype(float)

    x_train = exog(train.ffill().bfill())
    usable = [c for c in x_train if x_train[c].std() > 1e-9]
    y = train["energy_kwh"].to_numpy(float)
    model = ARIMA(y, exog=x_train[usable].to_numpy(), order=(2, 0, 0), trend="c")
    if np.isnan(y).any():  # gaps: maximum likelihood through the Kalman filter
        fit = model.fit(method="statespace", method_kwargs={"maxiter": 100, "disp": False})
    else:  # feasible GLS with AR(2) errors by Burg's method: ~20x faster, same forecasts
        fit = model.fit(method="burg", gls=True)
    forecast = fit.get_forecast(len(future), exog=exog(future)[usable].to_numpy())
    value = np.asarray(forecast.predicted_mean, dtype=float)
    bounds = np.asarray(forecast.conf_int(alpha=1.0 - settings.interval), dtype=float)
    return _Prediction(value, bounds[:, 0], bounds[:, 1])


def _prophet_ds(frame: pd.DataFrame) -> pd.Series:
    """Local wall time; the repeated hour of the autumn clock change gets +30 min so every
    timestamp is unique."""
    ds = pd.to_datetime(frame["local_date"]) + pd.to_timedelta(frame["local_hour"], unit="h")
    repeated = ds.duplicated()
    return ds + pd.to_timedelta(np.where(repeated, 30, 0), unit="min")


PROPHET_REGRESSORS = ("is_shift", "is_working_day", "heating_degrees", "cooling_degrees")


def _prophet(inputs: _Inputs, settings: ForecastSettings) -> _Prediction:
    from prophet import Prophet

    _quiet_logs()

    train = inputs.train.assign(ds=_prophet_ds(inputs.train), y=inputs.train["energy_kwh"])
    future = inputs.future.assign(ds=_prophet_ds(inputs.future))
    for frame in (train, future):
        frame["working"] = frame["is_working_day"] > 0
        frame["off"] = ~frame["working"]
    model = Prophet(
        growth="linear",
        yearly_seasonality=False,
        weekly_seasonality=3,
        daily_seasonality=False,
        interval_width=settings.interval,
        uncertainty_samples=200,
        changepoint_prior_scale=0.05,
    )
    model.add_seasonality("daily_working", period=1, fourier_order=6, condition_name="working")
    model.add_seasonality("daily_off", period=1, fourier_order=4, condition_name="off")
    regressors = [r for r in PROPHET_REGRESSORS if train[r].std() > 1e-9]
    for regressor in regressors:
        model.add_regressor(regressor, standardize=True)
    columns = ["ds", *regressors, "working", "off"]
    model.fit(train[[*columns, "y"]], seed=0)
    predicted = model.predict(future[columns]).set_index("ds")
    predicted = predicted.loc[future["ds"]]
    return _Prediction(
        predicted["yhat"].to_numpy(float),
        predicted["yhat_lower"].to_numpy(float),
        predicted["yhat_upper"].to_numpy(float),
    )


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """NumPy's global generator seeded for one model (Prophet samples its interval from it), so
    a forecast is reproducible; the caller's generator state is restored afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


_MODEL_FUNCTIONS: dict[str, Callable[[_Inputs, ForecastSettings], _Prediction]] = {
    "seasonal_naive": _seasonal_naive,
    "prophet": _prophet,
    "arimax": _arimax,
    "gbm": _gbm,
}


def forecast_day(
    history: pd.DataFrame,
    target: pd.DataFrame,
    models: Sequence[str] = MODELS,
    settings: ForecastSettings = ForecastSettings(),
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Forecast the hours of ``target`` (one scope, one local day: ``CALENDAR_COLUMNS``) from
    ``history`` (the hourly frame of ``baselines.registry.load_hourly_frame``) with each model.
    Only history rows that start before the first target hour (the origin) are used.
    Returns the forecasts (``FORECAST_COLUMNS``, clipped at 0 kWh) and, per model that could not
    forecast, the reason."""
    unknown = [m for m in models if m not in _MODEL_FUNCTIONS]
    if unknown:
        raise ValueError(f"unknown forecast models {unknown}; available: {list(MODELS)}")
    target = target.sort_values("hour_start").reset_index(drop=True)
    scope_ids = (
        target["scope_id"].unique() if "scope_id" in target else history["scope_id"].unique()
    )
    scope_id = str(scope_ids[0]) if len(scope_ids) else ""
    history = history[history["hour_start"] < target["hour_start"].min()]
    if "scope_id" in history:
        history = history[history["scope_id"] == scope_id]
    try:
        inputs = _prepare(history, target, settings)
    except ForecastError as exc:
        return pd.DataFrame(columns=FORECAST_COLUMNS), {m: str(exc) for m in models}
    parts, failures = [], {}
    for model in models:
        seed = zlib.crc32(f"{scope_id}|{inputs.origin.isoformat()}|{model}".encode())
        try:
            # One thread per forecast: the parallelism is across forecasts (run_forecasts), and
            # OpenMP threads fighting over shared cores make a boosting fit ten times slower.
            with threadpool_limits(1), _seeded(seed):
                prediction = _MODEL_FUNCTIONS[model](inputs, settings)
        except Exception as exc:  # one model failing must not stop the others
            failures[model] = f"{type(exc).__name__}: {exc}"
            continue
        value = np.clip(prediction.value, 0.0, None)
        parts.append(
            pd.DataFrame(
                {
                    "scope_id": scope_id,
                    "model": model,
                    "hour_start": inputs.future["hour_start"].to_numpy(),
                    "local_date": pd.to_datetime(inputs.future["local_date"]).dt.date.to_numpy(),
                    "origin": inputs.origin,
                    "horizon_h": np.arange(1, len(value) + 1),
                    "forecast_kwh": value,
                    "lower_kwh": np.clip(np.minimum(prediction.lower, value), 0.0, None),
                    "upper_kwh": np.maximum(prediction.upper, value),
                    "temperature_c": inputs.future["temperature_c"].to_numpy(float),
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=FORECAST_COLUMNS)
    return frame, failures


# --- many scopes and days, in parallel --------------------------------------------------------


@dataclass(frozen=True)
class ForecastTask:
    """One scope and one target day: its history window and its target calendar."""

    scope_id: str
    day: dt.date
    history: pd.DataFrame
    target: pd.DataFrame


@dataclass
class ForecastRun:
    """The forecasts of many tasks, and what could not be forecast (scope, day, model, why)."""

    forecasts: pd.DataFrame
    failures: list[tuple[str, dt.date, str, str]] = field(default_factory=list)


def forecast_tasks(
    history: pd.DataFrame,
    calendar: pd.DataFrame,
    days: Iterable[dt.date],
    settings: ForecastSettings = ForecastSettings(),
) -> list[ForecastTask]:
    """A task per scope in ``calendar`` and target day: the history rows a forecast for that
    day may use (strictly before the day) and the day's calendar rows."""
    history_dates = pd.to_datetime(history["local_date"]).dt.date
    calendar_dates = pd.to_datetime(calendar["local_date"]).dt.date
    reach = dt.timedelta(days=settings.train_days + WEEK_H // 24 + 2)
    tasks = []
    for scope_id in sorted(calendar["scope_id"].unique()):
        mine = history["scope_id"] == scope_id
        for day in sorted(set(days)):
            target = calendar[(calendar["scope_id"] == scope_id) & (calendar_dates == day)]
            if target.empty:
                continue
            window = mine & (history_dates < day) & (history_dates >= day - reach)
            tasks.append(ForecastTask(str(scope_id), day, history[window], target))
    return tasks


def _run_task(task: ForecastTask, models: Sequence[str], settings: ForecastSettings):
    frame, failures = forecast_day(task.history, task.target, models, settings)
    return frame, [(task.scope_id, task.day, m, why) for m, why in failures.items()]


def run_forecasts(
    tasks: Sequence[ForecastTask],
    models: Sequence[str] = MODELS,
    settings: ForecastSettings = ForecastSettings(),
    max_workers: int | None = None,
) -> ForecastRun:
    """Run ``tasks`` in a process pool of ``max_workers`` (default: the CPU count; 1 runs in
    this process)."""
    workers = max_workers or os.cpu_count() or 1
    workers = min(workers, len(tasks)) if tasks else 1
    results = []
    if workers <= 1:
        _quiet_logs()
        results = [_run_task(task, models, settings) for task in tasks]
    else:
        with ProcessPoolExecutor(
            workers, mp_context=_pool_context(), initializer=_quiet_logs
        ) as pool:
            futures = [pool.submit(_run_task, task, models, settings) for task in tasks]
            results = [f.result() for f in futures]
    frames = [frame for frame, _ in results if not frame.empty]
    forecasts = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=FORECAST_COLUMNS)
    )
    return ForecastRun(forecasts, [f for _, failures in results for f in failures])


def _pool_context() -> BaseContext:
    """Fork on Linux, after importing every model library here: a forked worker starts at once,
    while a spawned one re-imports pandas, scikit-learn, Prophet and statsmodels (5-15 s each
    on a busy 2-core machine, longer than forecasting a day of 20 machines). Forking is safe
    here because this process never runs a multi-threaded OpenMP section (every fit runs under
    ``threadpool_limits(1)``) and the workers touch nothing inherited but the task they get.
    Elsewhere (macOS, Windows) workers are spawned."""
    if sys.platform != "linux":
        return get_context("spawn")
    _quiet_logs()
    import prophet  # noqa: F401
    from statsmodels.tsa.arima.model import ARIMA  # noqa: F401

    return get_context("fork")


def _quiet_logs() -> None:
    for name in ("cmdstanpy", "prophet"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # "Importing plotly failed": Prophet's optional interactive plots, never used here
    logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)


def backtest(
    hourly: pd.DataFrame,
    days: Iterable[dt.date],
    models: Sequence[str] = MODELS,
    settings: ForecastSettings = ForecastSettings(),
    max_workers: int | None = None,
) -> ForecastRun:
    """Rolling-origin backtest: for each scope and each day, forecast the day from the hours
    before its local midnight, exactly as a live forecast would be made, with the actual energy
    of the day alongside (``actual_kwh``)."""
    tasks = forecast_tasks(hourly, hourly[["scope_id", *CALENDAR_COLUMNS]], days, settings)
    run = run_forecasts(tasks, models, settings, max_workers)
    actual = hourly[["scope_id", "hour_start", "energy_kwh"]].rename(
        columns={"energy_kwh": "actual_kwh"}
    )
    run.forecasts = run.forecasts.merge(actual, on=["scope_id", "hour_start"], how="left")
    return run
