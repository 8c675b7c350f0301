"""Day-ahead load forecasts: every model's forecast per machine and site, their accuracy as the
actuals land, and the champion model of each machine and site."""

import datetime as dt

import dagster as dg

from enms_dagster.assets.metadata import native_table, plottable
from enms_dagster.charts import forecast_markdown
from enms_dagster.forecasts.names import MODELS, REFERENCE_MODEL
from enms_dagster.resources import WarehouseResource

# The forecast models and stores (pandas, and Prophet, statsmodels, scikit-learn when a model
# runs) are imported in the asset bodies: every run's step process imports this module.

CHART_DAYS = 7


class ForecastConfig(dg.Config):
    """Which models forecast which machines and sites, and how many processes run them."""

    models: list[str] = list(MODELS)
    scope_ids: list[str] = []  # empty: every machine with energy and every site
    train_days: int = 56
    max_workers: int = 0  # 0: one process per CPU


def build_load_forecasts(partitions: dg.DailyPartitionsDefinition) -> dg.AssetsDefinition:
    """The load_forecasts asset over the plant's daily partitions."""

    @dg.asset(
        group_name="analytics",
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=["hourly_energy", "hourly_drivers"],
        kinds={"python", "prophet", "statsmodels", "scikitlearn", "postgres"},
    )
    def load_forecasts(
        context: dg.AssetExecutionContext, config: ForecastConfig, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """marts.forecasts: hourly energy of each target day (the partition) per machine and site,
        from seasonal naive, Prophet, ARIMAX and gradient boosting, each with an 80 % interval.
        Every forecast uses only the hours before the day's local midnight; the calendar of the day
        is known, its temperature is the persistence forecast (24 h earlier). A backfill of past
        days is a rolling-origin backtest; the machines and days run in a process pool."""
        import pandas as pd

        from enms_dagster.forecasts.models import ForecastSettings, run_forecasts
        from enms_dagster.forecasts.store import (
            champion_forecasts,
            load_forecast_tasks,
            write_forecasts,
        )

        window = context.partition_time_window
        first: dt.date = window.start.date()
        last: dt.date = (window.end - dt.timedelta(seconds=1)).date()
        days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
        settings = ForecastSettings(train_days=config.train_days)
        with warehouse.connect() as conn:
            tasks, scope_of = load_forecast_tasks(conn, days, settings, config.scope_ids)
        context.log.info(f"forecasting {len(tasks)} machine- and site-days with {config.models}")
        run = run_forecasts(tasks, config.models, settings, config.max_workers or None)
        with warehouse.connect() as conn:
            rows = write_forecasts(conn, run.forecasts, scope_of, days, config.models, settings)
            sites = sorted(s for s, scope in scope_of.items() if scope == "site")
            chart = (
                champion_forecasts(conn, sites[0], last - dt.timedelta(days=CHART_DAYS - 1), last)
                if sites
                else pd.DataFrame()
            )
        for scope_id, day, model, why in run.failures:
            context.log.warning(f"{scope_id} {day} {model}: no forecast ({why})")
        metadata: dict[str, object] = {
            "dagster/row_count": rows,
            "rows": rows,
            "days": f"{first} .. {last}",
            "scopes": len(scope_of),
            "models_count": len(config.models),
            "models": ", ".join(config.models),
            "failed_forecasts": len(run.failures),
            "temperature_assumption": "persistence: the outdoor temperature observed 24 h earlier",
            "interval": f"{settings.interval:.0%} central prediction interval",
        }
        if not run.forecasts.empty:
            totals = (
                run.forecasts[run.forecasts["local_date"] == last]
                .groupby(["scope_id", "model"])["forecast_kwh"]
                .sum()
                .unstack("model")
            )
            metadata["day_totals_kwh"] = native_table(
                ["scope", *totals.columns],
                [(scope_id, *(float(v) for v in row)) for scope_id, row in totals.iterrows()],
            )
        if not chart.empty:
            metadata["site_forecast_vs_actual"] = dg.MetadataValue.md(
                forecast_markdown(
                    list(chart["hour_start"]),
                    [None if pd.isna(a) else float(a) for a in chart["actual_kwh"]],
                    list(chart["forecast_kwh"]),
                    list(chart["lower_kwh"]),
                    list(chart["upper_kwh"]),
                    f"{sites[0]}: champion day-ahead forecast and actual, "
                    f"{chart['local_date'].min()} .. {last}",
                )
            )
        return dg.MaterializeResult(metadata=metadata)

    return load_forecasts


class AccuracyConfig(dg.Config):
    """How far back forecasts are (re)scored: late actuals change the score of their day."""

    rescore_days: int = 35


@dg.asset(
    group_name="analytics",
    deps=["load_forecasts", "hourly_energy", "hourly_drivers"],
    kinds={"python", "postgres"},
)
def forecast_accuracy(
    context: dg.AssetExecutionContext, config: AccuracyConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """marts.forecast_accuracy: MAE, RMSE, CV(RMSE), bias, interval coverage and skill over
    seasonal naive of each model per machine, site and day, for the forecast days whose hours
    all have actuals (the last ``rescore_days`` days with forecasts are rescored)."""
    from enms_dagster.forecasts.store import forecast_day_range, score_forecast_days

    with warehouse.connect() as conn:
        first, last = forecast_day_range(conn)
        if last is None:
            context.log.info("no forecasts yet: nothing to score")
            return dg.MaterializeResult(metadata={"rows": 0})
        daily = score_forecast_days(
            conn, max(first, last - dt.timedelta(days=config.rescore_days)), last
        )
    if daily.empty:
        return dg.MaterializeResult(metadata={"rows": 0, "note": "no forecast day is complete"})
    newest = daily["local_date"].max()
    latest = daily[daily["local_date"] == newest].sort_values(["scope_id", "model"])
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(daily),
            "rows": len(daily),
            "days": f"{daily['local_date'].min()} .. {newest}",
            # the newest scored day over every scope and model, one point per materialization
            "latest_mean_cv_rmse_pct": _pct(latest["cv_rmse"].mean()),
            "latest_mean_skill_pct": _pct(latest["skill"].mean()),
            "latest_interval_coverage_pct": _pct(latest["interval_coverage"].mean()),
            "latest_day": native_table(
                ["scope", "model", "MAE kWh", "CV(RMSE) %", "skill %", "in interval %"],
                [
                    (
                        r.scope_id,
                        r.model,
                        plottable(r.mae_kwh, 3),
                        _pct(r.cv_rmse),
                        _pct(r.skill),
                        _pct(r.interval_coverage),
                    )
                    for r in latest.itertuples()
                ],
            ),
        }
    )


class ChampionConfig(dg.Config):
    """The rolling window the champion is chosen on, and how much better a challenger must be."""

    window_days: int = 14
    min_days: int = 7
    switch_margin: float = 0.02


@dg.asset(group_name="analytics", deps=["forecast_accuracy"], kinds={"python", "postgres"})
def forecast_champions(
    context: dg.AssetExecutionContext, config: ChampionConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """marts.forecast_champions: per machine and site, the model with the best skill over
    seasonal naive on the last ``window_days`` scored days, valid from the day after them. A
    model that does not beat seasonal naive is never champion (naive is then); challengers keep
    forecasting, and every decision is kept with its reason."""
    from enms_dagster.forecasts.store import current_champions, decide_champions

    with warehouse.connect() as conn:
        (last_scored,) = conn.execute(
            "SELECT max(local_date) FROM marts.forecast_accuracy"
        ).fetchone()
        if last_scored is None:
            context.log.info("no scored forecasts yet: no champion to choose")
            return dg.MaterializeResult(metadata={"decisions": 0})
        valid_from = last_scored + dt.timedelta(days=1)
        records = decide_champions(
            conn, valid_from, config.window_days, config.min_days, config.switch_margin
        )
        champions = current_champions(conn)
    changed = [r.decision for r in records if r.decision.changed]
    for d in changed:
        context.log.info(f"{d.scope_id}: champion {d.previous or '—'} → {d.champion}: {d.reason}")
    rows = []
    for r in records:
        d = r.decision
        for s in d.scores.sort_values("skill", ascending=False).itertuples():
            rows.append(
                (
                    d.scope_id, s.model, s.model == d.champion, s.model == REFERENCE_MODEL,
                    int(s.days), plottable(s.mae_kwh, 3), _pct(s.cv_rmse), _pct(s.skill),
                    _pct(s.interval_coverage),
                )
            )  # fmt: skip
    return dg.MaterializeResult(
        metadata={
            "decisions": len(records),
            "valid_from": str(valid_from),
            "champions_changed": len(changed),
            "champions_not_reference": sum(
                r.champion != REFERENCE_MODEL for r in champions.itertuples()
            ),
            "champions": ", ".join(f"{r.scope_id}: {r.champion}" for r in champions.itertuples()),
            "model_comparison": native_table(
                [
                    "scope",
                    "model",
                    "champion",
                    "reference",
                    "days",
                    "MAE kWh",
                    "CV(RMSE) %",
                    "skill vs naive %",
                    "in 80 % interval %",
                ],
                rows,
            ),
            "reasons": dg.MetadataValue.md(
                "\n".join(f"- **{r.decision.scope_id}**: {r.decision.reason}" for r in records)
            ),
        }
    )


def _pct(value) -> float | None:
    """A fraction as a percentage with one decimal (``None`` where undefined)."""
    import pandas as pd

    return None if value is None or pd.isna(value) else round(100 * float(value), 1)
