"""Scores of day-ahead forecasts against seasonal naive, and the champion.

Scores (``score_forecasts``) are out of sample, so CV(RMSE) = RMSE / mean actual with p = 0;
skill = 1 − MAE_model / MAE_naive over the same hours (MAE, not MAPE: loads go to zero). The
champion (``choose_champion``) is the model with the best skill above zero; no such model means
seasonal naive stays the champion. The forecasts themselves are in
``enms_dagster.forecasts.models``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from enms_dagster.forecasts.names import REFERENCE_MODEL

SCORE_COLUMNS = (
    "scope_id",
    "model",
    "days",
    "hours",
    "mean_actual_kwh",
    "mae_kwh",
    "rmse_kwh",
    "cv_rmse",
    "bias_kwh",
    "interval_coverage",
    "naive_mae_kwh",
    "skill",
)


def score_forecasts(frame: pd.DataFrame, by: Sequence[str] = ("scope_id", "model")) -> pd.DataFrame:
    """Errors of forecasts against actuals (columns ``FORECAST_COLUMNS`` + ``actual_kwh``), per
    group: MAE, RMSE, CV(RMSE) = RMSE / mean actual (out of sample, p = 0), bias (mean forecast
    − actual), the share of actuals inside the interval, and skill = 1 − MAE / MAE of seasonal
    naive over the same hours (NaN where naive has no forecast for them)."""
    scored = frame.dropna(subset=["actual_kwh", "forecast_kwh"])
    if scored.empty:
        return pd.DataFrame(columns=[*by, *SCORE_COLUMNS[2:]])
    naive = scored[scored["model"] == REFERENCE_MODEL][["scope_id", "hour_start", "forecast_kwh"]]
    naive = naive.rename(columns={"forecast_kwh": "naive_kwh"})
    scored = scored.merge(naive, on=["scope_id", "hour_start"], how="left")
    error = scored["forecast_kwh"] - scored["actual_kwh"]
    scored = scored.assign(
        abs_error=error.abs(),
        sq_error=error**2,
        error=error,
        inside=(scored["actual_kwh"] >= scored["lower_kwh"] - 1e-9)
        & (scored["actual_kwh"] <= scored["upper_kwh"] + 1e-9),
        naive_abs_error=(scored["naive_kwh"] - scored["actual_kwh"]).abs(),
        day=pd.to_datetime(scored["local_date"]).dt.date,
    )
    rows = []
    for key, g in scored.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        mean_actual = float(g["actual_kwh"].mean())
        rmse = math.sqrt(float(g["sq_error"].mean()))
        mae = float(g["abs_error"].mean())
        paired = g.dropna(subset=["naive_abs_error"])
        naive_mae = float(paired["naive_abs_error"].mean()) if len(paired) else math.nan
        model_mae_paired = float(paired["abs_error"].mean()) if len(paired) else math.nan
        skill = 1.0 - model_mae_paired / naive_mae if naive_mae and naive_mae > 0 else math.nan
        rows.append(
            (
                *key,
                int(g["day"].nunique()),
                len(g),
                mean_actual,
                mae,
                rmse,
                rmse / mean_actual if mean_actual > 0 else math.nan,
                float(g["error"].mean()),
                float(g["inside"].mean()),
                naive_mae,
                skill,
            )
        )
    return pd.DataFrame(rows, columns=[*by, *SCORE_COLUMNS[2:]])


def pool_daily_scores(daily: pd.DataFrame) -> pd.DataFrame:
    """Scores over a window from per-day scores (``score_forecasts`` by scope, model and
    ``local_date``, as ``marts.forecast_accuracy`` stores them), weighted by hours: the same
    figures as scoring all the window's hours at once. Skill compares each model with seasonal
    naive on the days both were scored."""
    if daily.empty:
        return pd.DataFrame(columns=SCORE_COLUMNS)
    d = daily.assign(
        w_mae=daily["mae_kwh"] * daily["hours"],
        w_sq=daily["rmse_kwh"] ** 2 * daily["hours"],
        w_bias=daily["bias_kwh"] * daily["hours"],
        w_cover=daily["interval_coverage"] * daily["hours"],
        w_naive=daily["naive_mae_kwh"] * daily["hours"],
        actual_sum=daily["mean_actual_kwh"] * daily["hours"],
    )
    rows = []
    for (scope_id, model), g in d.groupby(["scope_id", "model"], sort=True):
        hours = float(g["hours"].sum())
        mean_actual = float(g["actual_sum"].sum()) / hours
        rmse = math.sqrt(float(g["w_sq"].sum()) / hours)
        paired = g.dropna(subset=["naive_mae_kwh"])
        naive_mae = (
            float(paired["w_naive"].sum()) / float(paired["hours"].sum())
            if len(paired)
            else math.nan
        )
        paired_mae = (
            float(paired["w_mae"].sum()) / float(paired["hours"].sum()) if len(paired) else math.nan
        )
        rows.append(
            (
                scope_id,
                model,
                int(g["local_date"].nunique()),
                int(hours),
                mean_actual,
                float(g["w_mae"].sum()) / hours,
                rmse,
                rmse / mean_actual if mean_actual > 0 else math.nan,
                float(g["w_bias"].sum()) / hours,
                float(g["w_cover"].sum()) / hours,
                naive_mae,
                1.0 - paired_mae / naive_mae if naive_mae > 0 else math.nan,
            )
        )
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


@dataclass(frozen=True)
class ChampionDecision:
    """Which model forecasts a scope from now on, and why."""

    scope_id: str
    champion: str
    previous: str | None
    reason: str
    scores: pd.DataFrame  # SCORE_COLUMNS of every model compared

    @property
    def changed(self) -> bool:
        return self.previous != self.champion


def choose_champion(
    scores: pd.DataFrame,
    incumbent: str | None = None,
    min_days: int = 7,
    switch_margin: float = 0.02,
) -> ChampionDecision:
    """The champion of one scope from its models' scores (``score_forecasts`` over a rolling
    window): the model with the highest skill over seasonal naive, if that skill is above zero
    and the model was scored on at least ``min_days`` days. A challenger replaces a still-skilful
    incumbent only when its skill is higher by more than ``switch_margin``, so the champion does
    not flip on noise. Without a skilful model, seasonal naive is the champion."""
    scope_id = str(scores["scope_id"].iloc[0]) if len(scores) else ""

    def decide(champion: str, reason: str) -> ChampionDecision:
        return ChampionDecision(scope_id, champion, incumbent, reason, scores)

    naive = scores[scores["model"] == REFERENCE_MODEL]
    if naive.empty:
        return decide(REFERENCE_MODEL, "seasonal naive was not scored: nothing to compare with")
    naive_row = naive.iloc[0]
    if not naive_row["mae_kwh"] > 0:
        return decide(REFERENCE_MODEL, "seasonal naive was exact over the window: it stays")
    window = f"{int(naive_row['days'])} days, naive MAE {naive_row['mae_kwh']:.3g} kWh"
    eligible = scores[
        (scores["model"] != REFERENCE_MODEL) & (scores["days"] >= min_days) & (scores["skill"] > 0)
    ].sort_values(["skill", "model"], ascending=[False, True])
    if eligible.empty:
        others = scores[scores["model"] != REFERENCE_MODEL]
        detail = ", ".join(
            f"{r.model} {r.skill:+.1%}" + (f" on {r.days} days" if r.days < min_days else "")
            for r in others.itertuples()
        )
        return decide(
            REFERENCE_MODEL,
            f"no model beats seasonal naive on at least {min_days} days ({detail or 'none'}; "
            f"{window}): seasonal naive is used",
        )
    best = eligible.iloc[0]
    by_model = eligible.set_index("model")
    if (
        incumbent in by_model.index
        and incumbent != best["model"]
        and best["skill"] - by_model.loc[incumbent, "skill"] <= switch_margin
    ):
        kept = by_model.loc[incumbent]
        return decide(
            incumbent,
            f"{incumbent} stays: skill {kept['skill']:+.1%}, MAE {kept['mae_kwh']:.3g} kWh, "
            f"CV(RMSE) {kept['cv_rmse']:.1%}; {best['model']} ({best['skill']:+.1%}) is not "
            f"better by more than {switch_margin:.0%} ({window})",
        )
    runner_up = eligible.iloc[1]["model"] if len(eligible) > 1 else REFERENCE_MODEL
    return decide(
        str(best["model"]),
        f"{best['model']}: best skill over seasonal naive {best['skill']:+.1%} "
        f"(MAE {best['mae_kwh']:.3g} kWh, CV(RMSE) {best['cv_rmse']:.1%}, "
        f"interval coverage {best['interval_coverage']:.0%}); next {runner_up} ({window})",
    )
