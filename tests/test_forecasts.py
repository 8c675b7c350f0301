"""Day-ahead forecasts on plain DataFrames: what a forecast may see, the shape of what it
returns, how it is scored and how the champion is chosen."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enms_dagster.forecasts.models import ForecastSettings, backtest, forecast_day
from enms_dagster.forecasts.names import MODELS, REFERENCE_MODEL
from enms_dagster.forecasts.scoring import choose_champion, pool_daily_scores, score_forecasts

BERLIN = ZoneInfo("Europe/Berlin")
FAST = ForecastSettings(train_days=28)


def synthetic_hourly(
    first: dt.date = dt.date(2026, 1, 5),
    days: int = 60,
    scope_id: str = "M-1",
    holidays: tuple[dt.date, ...] = (),
    seed: int = 0,
) -> pd.DataFrame:
    """An hourly frame like ``load_hourly_frame``'s: a machine that draws 20 kWh an hour in
    shift (06–22 on working days), 2 kWh otherwise, plus heating below 16 °C and noise."""
    rng = np.random.default_rng(seed)
    start = dt.datetime.combine(first, dt.time(), BERLIN).astimezone(dt.UTC)
    end = dt.datetime.combine(first + dt.timedelta(days=days), dt.time(), BERLIN)
    hours = pd.date_range(start, end.astimezone(dt.UTC), freq="h", inclusive="left").as_unit("us")
    local = hours.tz_convert(BERLIN)
    local_date = np.array(local.date)
    working = (local.day_of_week < 5) & ~np.isin(local_date, list(holidays))
    shift = working & (local.hour >= 6) & (local.hour < 22)
    t = np.arange(len(hours))
    temperature = (
        4 + 5 * np.sin(2 * np.pi * (local.hour - 9) / 24) + t / 300 + rng.normal(0, 1, len(t))
    )
    energy = 2 + 18 * shift + 0.4 * np.clip(16 - temperature, 0, None) + rng.normal(0, 1, len(t))
    return pd.DataFrame(
        {
            "scope_id": scope_id,
            "hour_start": hours,
            "local_date": local_date,
            "local_hour": local.hour.astype(int),
            "is_working_day": working,
            "is_shift": shift,
            "energy_kwh": np.clip(energy, 0, None),
            "outdoor_temperature_c": temperature,
            "parts": np.where(shift, 100.0, 0.0),
            "site_parts": np.where(shift, 400.0, 0.0),
            "running_h": shift.astype(float),
            "idle_h": 0.0,
        }
    )


def _split(frame: pd.DataFrame, day: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    dates = pd.to_datetime(frame["local_date"]).dt.date
    return frame, frame[dates == day]


def _tamper_from(frame: pd.DataFrame, origin: pd.Timestamp, seed: int = 1) -> pd.DataFrame:
    """Random energy, weather and production for every hour from ``origin`` on."""
    tampered = frame.copy()
    later = tampered["hour_start"] >= origin
    rng = np.random.default_rng(seed)
    for column in ("energy_kwh", "outdoor_temperature_c", "parts", "site_parts", "running_h"):
        tampered.loc[later, column] = rng.uniform(0, 500, int(later.sum()))
    return tampered


@pytest.mark.parametrize("day", [dt.date(2026, 2, 10), dt.date(2026, 2, 14)])  # Tue, Sat
def test_a_forecast_does_not_change_when_data_after_its_origin_changes(day):
    """Acceptance 1: a backtest uses only data available at each origin."""
    frame = synthetic_hourly(days=45)
    before = backtest(frame, [day], MODELS, FAST, max_workers=2).forecasts
    origin = before["origin"].iloc[0]
    tampered = _tamper_from(frame, origin)
    after = backtest(tampered, [day], MODELS, FAST, max_workers=2).forecasts

    assert set(before["model"]) == set(MODELS)
    assert len(before) == 24 * len(MODELS)
    pd.testing.assert_frame_equal(
        before.drop(columns="actual_kwh"), after.drop(columns="actual_kwh")
    )
    # the actuals it is scored on did change, and a forecast from one day later sees the change
    assert not np.allclose(before["actual_kwh"], after["actual_kwh"])
    next_day = day + dt.timedelta(days=1)
    honest = backtest(frame, [next_day], ["gbm", "arimax"], FAST, max_workers=1).forecasts
    later = backtest(tampered, [next_day], ["gbm", "arimax"], FAST, max_workers=1).forecasts
    assert not np.allclose(later["forecast_kwh"], honest["forecast_kwh"])


def test_forecast_day_drops_history_passed_from_the_origin_on():
    frame = synthetic_hourly(days=40)
    day = dt.date(2026, 2, 11)
    history, target = _split(frame, day)  # history includes the target day itself
    trimmed = history[pd.to_datetime(history["local_date"]).dt.date < day]
    leaky, _ = forecast_day(history, target, ["gbm", REFERENCE_MODEL], FAST)
    clean, _ = forecast_day(trimmed, target, ["gbm", REFERENCE_MODEL], FAST)
    pd.testing.assert_frame_equal(leaky, clean)


def test_seasonal_naive_is_the_same_local_hour_a_week_earlier_across_a_clock_change():
    frame = synthetic_hourly(first=dt.date(2026, 3, 2), days=30)
    day = dt.date(2026, 3, 30)  # the Monday after the spring change (Mar 29)
    history, target = _split(frame, day)
    forecasts, failures = forecast_day(history, target, [REFERENCE_MODEL], FAST)
    assert failures == {}
    week_ago = frame[pd.to_datetime(frame["local_date"]).dt.date == dt.date(2026, 3, 23)]
    assert forecasts["forecast_kwh"].to_numpy() == pytest.approx(week_ago["energy_kwh"].to_numpy())
    assert list(forecasts["horizon_h"]) == list(range(1, 25))


@pytest.mark.parametrize(
    ("day", "hours"), [(dt.date(2026, 3, 29), 23), (dt.date(2025, 10, 26), 25)]
)
def test_every_model_forecasts_each_hour_of_a_daylight_saving_day(day, hours):
    frame = synthetic_hourly(first=day - dt.timedelta(days=36), days=37)
    history, target = _split(frame, day)
    assert len(target) == hours
    forecasts, failures = forecast_day(history, target, MODELS, FAST)
    assert failures == {}
    for _, rows in forecasts.groupby("model"):
        assert list(rows["hour_start"]) == list(target["hour_start"])
        assert (rows["lower_kwh"] <= rows["forecast_kwh"]).all()
        assert (rows["forecast_kwh"] <= rows["upper_kwh"]).all()
        assert (rows["lower_kwh"] >= 0).all()
        assert (rows["origin"] == target["hour_start"].min()).all()


def test_too_little_history_is_reported_per_model_not_raised():
    frame = synthetic_hourly(days=10)
    history, target = _split(frame, dt.date(2026, 1, 14))
    forecasts, failures = forecast_day(history, target, MODELS, FAST)
    assert forecasts.empty
    assert set(failures) == set(MODELS)
    assert "days of history" in failures["prophet"]


def test_the_models_beat_seasonal_naive_on_a_holiday_that_naive_cannot_know():
    holiday = dt.date(2026, 2, 18)  # a Wednesday off: last Wednesday was a working day
    frame = synthetic_hourly(days=50, holidays=(holiday,))
    run = backtest(frame, [holiday], ["gbm", "arimax", REFERENCE_MODEL], FAST, max_workers=1)
    scores = score_forecasts(run.forecasts).set_index("model")
    assert scores.loc[REFERENCE_MODEL, "skill"] == 0
    assert scores.loc["gbm", "skill"] > 0.5
    assert scores.loc["arimax", "skill"] > 0.5


def test_the_interval_covers_roughly_its_level_on_ordinary_days():
    frame = synthetic_hourly(days=60)
    days = [dt.date(2026, 2, 23) + dt.timedelta(days=i) for i in range(5)]  # Mon .. Fri
    run = backtest(frame, days, ["gbm", "arimax", REFERENCE_MODEL], FAST, max_workers=2)
    coverage = score_forecasts(run.forecasts).set_index("model")["interval_coverage"]
    assert (coverage > 0.6).all(), coverage


# --- scores and champions ---------------------------------------------------------------------


def _scores(skills: dict[str, float], days: int = 14, naive_mae: float = 10.0) -> pd.DataFrame:
    rows = []
    for model, skill in {REFERENCE_MODEL: 0.0, **skills}.items():
        mae = naive_mae * (1 - skill)
        rows.append(
            {
                "scope_id": "M-1", "model": model, "days": days, "hours": 24 * days,
                "mean_actual_kwh": 50.0, "mae_kwh": mae, "rmse_kwh": mae * 1.3,
                "cv_rmse": mae * 1.3 / 50, "bias_kwh": 0.0, "interval_coverage": 0.8,
                "naive_mae_kwh": naive_mae, "skill": skill,
            }
        )  # fmt: skip
    return pd.DataFrame(rows)


def test_the_champion_is_the_model_with_the_best_skill_over_naive():
    decision = choose_champion(_scores({"prophet": 0.30, "gbm": 0.42, "arimax": 0.10}))
    assert decision.champion == "gbm"
    assert "gbm: best skill over seasonal naive +42.0%" in decision.reason
    assert decision.changed


def test_a_model_that_does_not_beat_naive_is_never_champion():
    decision = choose_champion(_scores({"prophet": -0.05, "gbm": 0.0, "arimax": -0.3}), "gbm")
    assert decision.champion == REFERENCE_MODEL
    assert decision.previous == "gbm" and decision.changed
    assert "no model beats seasonal naive" in decision.reason


def test_a_model_scored_on_too_few_days_is_not_eligible():
    decision = choose_champion(_scores({"gbm": 0.5}, days=3), min_days=7)
    assert decision.champion == REFERENCE_MODEL
    assert "gbm +50.0% on 3 days" in decision.reason


def test_the_incumbent_stays_unless_a_challenger_is_clearly_better():
    close = choose_champion(_scores({"prophet": 0.40, "gbm": 0.41}), incumbent="prophet")
    assert close.champion == "prophet" and not close.changed
    assert "prophet stays" in close.reason
    clear = choose_champion(_scores({"prophet": 0.40, "gbm": 0.45}), incumbent="prophet")
    assert clear.champion == "gbm" and clear.changed


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(0, 100), min_size=72, max_size=72),
    st.lists(st.floats(0, 100), min_size=72, max_size=72),
    st.lists(st.floats(0, 100), min_size=72, max_size=72),
)
def test_pooled_daily_scores_equal_scores_over_all_the_hours(actual, model, naive):
    hours = pd.date_range("2026-03-02", periods=72, freq="h", tz="UTC")
    base = pd.DataFrame(
        {
            "scope_id": "M-1",
            "hour_start": hours,
            "local_date": hours.date,
            "actual_kwh": actual,
        }
    )
    frame = pd.concat(
        [
            base.assign(model="gbm", forecast_kwh=model, lower_kwh=0.0, upper_kwh=50.0),
            base.assign(model=REFERENCE_MODEL, forecast_kwh=naive, lower_kwh=0.0, upper_kwh=50.0),
        ]
    )
    whole = score_forecasts(frame).set_index("model")
    daily = score_forecasts(frame, by=("scope_id", "model", "local_date"))
    pooled = pool_daily_scores(daily).set_index("model")
    for column in ("mae_kwh", "rmse_kwh", "bias_kwh", "interval_coverage", "naive_mae_kwh"):
        assert pooled[column].to_numpy() == pytest.approx(whole[column].to_numpy(), abs=1e-9)
    if whole.loc[REFERENCE_MODEL, "mae_kwh"] > 0:
        assert pooled.loc["gbm", "skill"] == pytest.approx(whole.loc["gbm", "skill"], abs=1e-9)
