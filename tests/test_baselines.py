"""Baseline maths on hand-built frames: request validation, statistics against statsmodels,
driver selection, gates, serialization, savings uncertainty."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from enms_dagster.baselines.model import (
    DRIVERS,
    BaselineModel,
    BaselineRequest,
    BaselineRequestError,
    FitStatistics,
    fit_baseline,
    ols_statistics,
    performance,
    savings_uncertainty,
)

START = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)  # a Monday


def synthetic_hours(days: int = 60, seed: int = 1, heating_base: float = 15.0) -> pd.DataFrame:
    """A machine whose energy is 2 kWh per part plus 0.8 kWh per heating degree-hour below
    ``heating_base`` °C, plus noise; it runs 06–22 on weekdays."""
    rng = np.random.default_rng(seed)
    hours = pd.date_range(START, periods=24 * days, freq="h")
    local_hour = hours.hour
    working = hours.day_of_week < 5
    shift = working & (local_hour >= 6) & (local_hour < 22)
    parts = np.where(shift, rng.uniform(20, 40, len(hours)), 0.0)
    temp = 8 + 6 * np.sin(np.arange(len(hours)) / 24 / 9) + rng.normal(0, 2, len(hours))
    energy = (
        2.0 * parts + 0.8 * np.clip(heating_base - temp, 0, None) + rng.normal(0, 3, len(hours))
    )
    return pd.DataFrame(
        {
            "hour_start": hours,
            "local_date": hours.date,
            "local_hour": local_hour,
            "is_working_day": working,
            "is_shift": shift,
            "energy_kwh": energy,
            "outdoor_temperature_c": temp,
            "parts": parts,
            "site_parts": parts * 3 + rng.normal(0, 5, len(hours)),
            "running_h": shift * 0.9,
            "idle_h": shift * 0.1,
        }
    )


def test_two_candidate_drivers_are_rejected_naming_the_count_and_what_is_available():
    request = BaselineRequest("CMP-01", "daily", ("parts", "heating_degrees"))
    with pytest.raises(BaselineRequestError) as err:
        fit_baseline(synthetic_hours(), request)
    message = str(err.value)
    assert "at least 3 candidate drivers, got 2 (parts, heating_degrees)" in message
    assert "name 1 more" in message
    for name in DRIVERS:
        assert name in message


def test_unknown_driver_is_rejected_with_the_available_ones():
    request = BaselineRequest("CMP-01", "daily", ("parts", "heating_degrees", "moon_phase"))
    with pytest.raises(BaselineRequestError, match="unknown candidate drivers \\['moon_phase'\\]"):
        fit_baseline(synthetic_hours(), request)


def test_three_candidates_fit_and_keep_only_the_real_drivers():
    request = BaselineRequest("CMP-01", "daily", ("parts", "heating_degrees", "cooling_degrees"))
    model = fit_baseline(synthetic_hours(), request)
    assert model.drivers == ["parts", "heating_degrees"]
    assert model.coefficients["parts"] == pytest.approx(2.0, rel=0.05)
    # degree-days (K·d) at 15 °C: 0.8 kWh per degree-hour is 19.2 kWh per degree-day
    assert model.coefficients["heating_degrees"] == pytest.approx(19.2, rel=0.1)
    assert abs(model.balance_points_c["heating_degrees"] - 15.0) <= 1.0
    assert any("cooling_degrees" in line for line in model.selection_log)
    assert model.valid, model.failures


@pytest.mark.parametrize("resolution", ["daily", "hourly"])
def test_statistics_match_statsmodels_ols_on_the_same_design(resolution):
    hours = synthetic_hours()
    model = fit_baseline(
        hours, BaselineRequest("X", resolution, ("parts", "heating_degrees", "site_parts"))
    )
    from enms_dagster.baselines.model import _design

    frame = model.frame(hours)
    if resolution == "daily":
        frame = frame[frame["hours"] >= 23]
    design = _design(frame, resolution, model.drivers, model.balance_points_c, model.tow_levels)
    y = frame["energy_kwh"].to_numpy(float)
    ours = ols_statistics(design.x, y, design.names)
    ref = sm.OLS(y, design.x).fit()
    assert ours.n == int(ref.nobs) and ours.p == design.x.shape[1]
    assert ours.r2 == pytest.approx(ref.rsquared, abs=1e-6)
    assert ours.adj_r2 == pytest.approx(ref.rsquared_adj, abs=1e-6)
    assert ours.f_statistic == pytest.approx(ref.fvalue, rel=1e-6)
    assert ours.f_pvalue == pytest.approx(ref.f_pvalue, abs=1e-6)
    np.testing.assert_allclose(
        [c.value for c in ours.coefficients], ref.params, rtol=1e-6, atol=1e-9
    )
    np.testing.assert_allclose([c.std_error for c in ours.coefficients], ref.bse, rtol=1e-6)
    np.testing.assert_allclose([c.t for c in ours.coefficients], ref.tvalues, rtol=1e-6)
    np.testing.assert_allclose([c.p for c in ours.coefficients], ref.pvalues, atol=1e-6)
    # ASHRAE 14 with (n - p): CV(RMSE) = sqrt(SSE / (n - p)) / mean, NMBE likewise
    dof = ref.nobs - ref.df_model - 1
    assert ours.cv_rmse == pytest.approx(np.sqrt(ref.ssr / dof) / y.mean(), rel=1e-9)
    assert ours.nmbe == pytest.approx(ref.resid.sum() / (dof * y.mean()), abs=1e-9)
    # and the model's own statistics are these
    assert model.statistics.r2 == pytest.approx(ref.rsquared, abs=1e-6)


def test_a_negative_production_slope_is_removed_as_unphysical():
    hours = synthetic_hours()
    hours["site_parts"] = -hours["energy_kwh"] + np.random.default_rng(2).normal(0, 1, len(hours))
    model = fit_baseline(
        hours, BaselineRequest("X", "daily", ("parts", "heating_degrees", "site_parts"))
    )
    assert "site_parts" not in model.drivers
    assert any(
        "site_parts: slope" in line and "not physical" in line for line in model.selection_log
    )


def test_a_model_on_noise_fails_and_says_why():
    hours = synthetic_hours()
    hours["energy_kwh"] = np.random.default_rng(3).normal(50, 10, len(hours))
    model = fit_baseline(
        hours, BaselineRequest("X", "daily", ("parts", "site_parts", "working_day"))
    )
    assert not model.valid
    assert any("DOE SEP" in f for f in model.failures)


def test_missing_days_fail_data_sufficiency():
    hours = synthetic_hours(days=60)
    dates = pd.Series(hours["local_date"])
    gap = (dates >= dt.date(2026, 1, 20)) & (dates < dt.date(2026, 1, 30))
    model = fit_baseline(
        hours[~gap.to_numpy()],
        BaselineRequest("X", "daily", ("parts", "heating_degrees", "site_parts")),
    )
    assert "CalTRACK: 50 of 60 days with data (83%; at least 90%)" in model.failures


def test_a_loaded_model_predicts_the_same_numbers():
    hours = synthetic_hours()
    for resolution in ("daily", "hourly"):
        model = fit_baseline(
            hours, BaselineRequest("X", resolution, ("parts", "heating_degrees", "site_parts"))
        )
        loaded = BaselineModel.from_dict(json.loads(json.dumps(model.to_dict())))
        pd.testing.assert_series_equal(loaded.predict(hours), model.predict(hours))
        assert loaded.statistics == model.statistics
        assert loaded.valid == model.valid


def test_savings_uncertainty_grows_with_autocorrelation_and_reporting_length():
    base = FitStatistics(
        n=90, p=3, r2=0.9, adj_r2=0.9, cv_rmse=0.1, nmbe=0.0, rmse=10.0, f_statistic=100.0,
        f_pvalue=1e-9, mean_energy_kwh=100.0, residual_autocorrelation=0.0, coefficients=[],
    )  # fmt: skip
    u30 = savings_uncertainty(base, 30).kwh
    # t(68 %) ≈ 1, so about 1.26 · RMSE · sqrt(30 · (1 + 2/90))
    assert u30 == pytest.approx(1.26 * 10.0 * np.sqrt(30 * (1 + 2 / 90)), rel=0.03)
    assert savings_uncertainty(base, 60).kwh > u30
    correlated = FitStatistics(**{**base.__dict__, "residual_autocorrelation": 0.5})
    assert savings_uncertainty(correlated, 30).kwh > 1.7 * u30
    assert savings_uncertainty(base, 30, confidence=0.95).kwh > 1.9 * u30


def test_performance_reports_cusum_only_after_the_baseline_period():
    hours = synthetic_hours(days=60)
    request = BaselineRequest(
        "X", "daily", ("parts", "heating_degrees", "site_parts"), period_end=dt.date(2026, 2, 15)
    )
    model = fit_baseline(hours, request)
    after = pd.Series(hours["local_date"]) > dt.date(2026, 2, 15)
    hours.loc[after.to_numpy(), "energy_kwh"] *= 0.9  # a 10 % saving from Feb 16
    perf = performance(model, hours)
    inside = perf[perf["in_baseline_period"]]
    outside = perf[~perf["in_baseline_period"]]
    assert inside["cusum_savings_kwh"].isna().all()
    assert len(outside) == 18
    true_saving = (hours.loc[after.to_numpy(), "energy_kwh"] / 0.9 * 0.1).sum()
    final = outside.iloc[-1]
    assert abs(final["cusum_savings_kwh"] - true_saving) <= final["uncertainty_95_kwh"]
    assert final["cusum_savings_kwh"] > 0.5 * true_saving
