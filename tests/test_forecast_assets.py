"""The forecast assets on 90 days of simulated history in the real PostgreSQL: a week of day-ahead
forecasts backfilled in one run (a rolling-origin backtest), scored, and a champion chosen per
machine and site."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from enms_dagster.db import connect
from enms_dagster.definitions import defs as load_definitions

pytestmark = pytest.mark.integration  # every test reads the history in PostgreSQL

DEFS = load_definitions()

FIRST, LAST = dt.date(2026, 3, 29), dt.date(2026, 4, 4)  # a week with the clock change, Good Friday
NEXT = LAST + dt.timedelta(days=1)  # the day after the history: no actuals, a live forecast
SCOPES = {"CMP-01", "HVAC-01", "CNV-01", "HYD-01", "IMM-01", "plant-a"}
MODELS = {"seasonal_naive", "prophet", "arimax", "gbm"}


def _materialize(database_url: str, assets, first: dt.date, last: dt.date, run_config=None):
    from enms_dagster.resources import WarehouseResource

    return dg.materialize(
        assets,
        resources={"warehouse": WarehouseResource(database_url=database_url)},
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
        run_config=run_config,
    )


@pytest.fixture(scope="module")
def week(baseline_history):
    """load_forecasts for FIRST..LAST in one run, then forecast_accuracy and forecast_champions
    (the window holds the 7 scored days, the minimum a champion needs)."""
    forecast_accuracy, forecast_champions, load_forecasts = (
        DEFS.get_assets_def(key)
        for key in ("forecast_accuracy", "forecast_champions", "load_forecasts")
    )

    with connect(baseline_history.database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE marts.forecasts, marts.forecast_accuracy, marts.forecast_champions")
    result = _materialize(
        baseline_history.database_url,
        [load_forecasts, forecast_accuracy, forecast_champions],
        FIRST,
        LAST,
    )
    assert result.success
    return result


def _query(database_url: str, query: str, params=()) -> pd.DataFrame:
    with connect(database_url) as conn, conn.cursor() as cur:
        cur.execute(query, params)
        return pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])


def test_every_model_forecasts_every_hour_of_every_machine_and_the_site(week, baseline_history):
    rows = _query(
        baseline_history.database_url,
        "SELECT scope_id, model, local_date, count(*) AS hours, min(horizon_h) AS first_h, "
        "bool_and(origin <= hour_start) AS after_origin, "
        "bool_and(lower_kwh <= forecast_kwh AND forecast_kwh <= upper_kwh) AS ordered "
        "FROM marts.forecasts GROUP BY 1, 2, 3",
    )
    assert set(rows["scope_id"]) == SCOPES and set(rows["model"]) == MODELS
    assert len(rows) == len(SCOPES) * len(MODELS) * 7
    hours = dict(zip(rows["local_date"], rows["hours"], strict=False))
    assert hours[dt.date(2026, 3, 29)] == 23 and hours[dt.date(2026, 3, 30)] == 24
    assert rows["after_origin"].all() and rows["ordered"].all() and (rows["first_h"] == 1).all()
    meta = week.asset_materializations_for_node("load_forecasts")[0].metadata
    assert meta["failed_forecasts"].value == 0
    assert meta["site_forecast_vs_actual"].value.startswith("![plant-a: champion day-ahead")
    assert "persistence" in meta["temperature_assumption"].value


def test_accuracy_is_recorded_per_model_machine_and_day(week, baseline_history):
    accuracy = _query(baseline_history.database_url, "SELECT * FROM marts.forecast_accuracy")
    assert len(accuracy) == len(SCOPES) * len(MODELS) * 7
    naive = accuracy[accuracy["model"] == "seasonal_naive"]
    assert (naive["skill"].dropna() == 0).all()
    site = accuracy[(accuracy["scope_id"] == "plant-a") & (accuracy["model"] == "prophet")]
    assert site.set_index("local_date").loc[dt.date(2026, 3, 29), "hours"] == 23
    assert (site["actual_kwh"] > 0).all() and (site["cv_rmse"] > 0).all()


def test_the_site_champion_beats_seasonal_naive_and_each_machine_type_has_a_score(
    week, baseline_history
):
    """Acceptance 3: per machine type, the champion's day-ahead CV(RMSE) and skill over seasonal
    naive on the week's rolling-origin backtest; the site's champion beats seasonal naive."""
    table = _query(
        baseline_history.database_url,
        "SELECT coalesce(m.machine_type, 'site') AS machine_type, c.scope_id, c.champion, "
        "c.days, c.mae_kwh, c.cv_rmse, c.skill, c.reason FROM marts.forecast_champions c "
        "LEFT JOIN core.machines m ON m.machine_id = c.scope_id ORDER BY c.scope, c.scope_id",
    )
    print("\n" + table.drop(columns="reason").to_string(index=False))
    assert set(table["scope_id"]) == SCOPES and (table["days"] == 7).all()
    assert table["cv_rmse"].notna().all() and table["skill"].notna().all()
    for row in table.itertuples():
        assert row.skill > 0 if row.champion != "seasonal_naive" else row.skill == 0, row
    site = table[table["scope_id"] == "plant-a"].iloc[0]
    assert site.champion != "seasonal_naive"
    assert site.skill > 0.3, site.reason
    assert site.cv_rmse < 0.25, site.reason  # commercial-building day-ahead range: 13-25 %
    meta = week.asset_materializations_for_node("forecast_champions")[0].metadata
    comparison = [r.data for r in meta["model_comparison"].value.records]
    champions = [(r["scope"], r["model"]) for r in comparison if r["champion"]]
    assert ("plant-a", site.champion) in champions
    assert {r["model"] for r in comparison if r["reference"]} == {"seasonal_naive"}
    assert meta["champions_not_reference"].value >= 1


def test_a_live_forecast_for_a_day_without_data_uses_the_champion(week, baseline_history):
    """The day after the history: the calendar comes from the site, the history ends at its
    midnight, and marts.champion_forecasts serves the model chosen for that day."""
    load_forecasts = DEFS.get_assets_def("load_forecasts")

    result = _materialize(baseline_history.database_url, [load_forecasts], NEXT, NEXT)
    assert result.success
    served = _query(
        baseline_history.database_url,
        "SELECT scope_id, model, count(*) AS hours FROM marts.champion_forecasts "
        "WHERE local_date = %s GROUP BY 1, 2",
        (NEXT,),
    )
    champions = _query(
        baseline_history.database_url,
        "SELECT scope_id, champion FROM marts.forecast_champions WHERE valid_from = %s",
        (NEXT,),
    )
    assert dict(zip(served["scope_id"], served["model"], strict=True)) == dict(
        zip(champions["scope_id"], champions["champion"], strict=True)
    )
    assert (served["hours"] == 24).all()


def test_rerunning_a_day_replaces_only_the_models_it_ran(week, baseline_history):
    load_forecasts = DEFS.get_assets_def("load_forecasts")

    count = "SELECT model, count(*) AS n FROM marts.forecasts WHERE local_date = %s GROUP BY 1"
    before = _query(baseline_history.database_url, count, (LAST,)).set_index("model")["n"]
    result = _materialize(
        baseline_history.database_url,
        [load_forecasts],
        LAST,
        LAST,
        run_config={"ops": {"load_forecasts": {"config": {"models": ["seasonal_naive"]}}}},
    )
    assert result.success
    after = _query(baseline_history.database_url, count, (LAST,)).set_index("model")["n"]
    pd.testing.assert_series_equal(before, after)


def test_each_decision_is_kept_with_the_previous_champion(week, baseline_history):
    from enms_dagster.forecasts.store import decide_champions

    with connect(baseline_history.database_url, autocommit=True) as conn:
        first = decide_champions(conn, NEXT)
        again = decide_champions(conn, NEXT)  # the same day: replaced, not duplicated
        later = decide_champions(conn, NEXT + dt.timedelta(days=1))
    assert [r.decision.champion for r in first] == [r.decision.champion for r in again]
    history = _query(
        baseline_history.database_url,
        "SELECT scope_id, valid_from, champion, previous_champion, changed "
        "FROM marts.forecast_champions ORDER BY scope_id, valid_from",
    )
    assert len(history) == 2 * len(SCOPES)
    newest = history[history["valid_from"] == NEXT + dt.timedelta(days=1)]
    assert (newest["previous_champion"] == newest["champion"]).all()
    assert not newest["changed"].any()
    assert {r.decision.scope_id for r in later} == SCOPES


@pytest.mark.parametrize("scope", ["machine", "site"])
def test_the_known_calendar_matches_the_hourly_drivers(baseline_history, scope):
    from enms_dagster.baselines.registry import load_hourly_frame
    from enms_dagster.forecasts.store import load_calendar

    ids = ["CMP-01", "HVAC-01"] if scope == "machine" else ["plant-a"]
    first, last = dt.date(2026, 1, 5), dt.date(2026, 4, 4)
    with connect(baseline_history.database_url) as conn:
        calendar = load_calendar(conn, scope, ids, first, last)
        hourly = load_hourly_frame(conn, scope, ids, first, last)
        future = load_calendar(
            conn, "site", ["plant-a"], dt.date(2026, 10, 25), dt.date(2026, 12, 25)
        )
    columns = ["scope_id", "hour_start", "local_date", "local_hour", "is_working_day", "is_shift"]
    pd.testing.assert_frame_equal(
        calendar[columns].reset_index(drop=True),
        hourly[columns].reset_index(drop=True),
        check_dtype=False,
    )
    per_day = future.groupby("local_date")
    assert per_day.size()[dt.date(2026, 10, 25)] == 25  # autumn clock change
    assert not per_day["is_working_day"].any()[dt.date(2026, 12, 25)]  # a holiday in the file
    assert per_day["is_shift"].sum()[dt.date(2026, 12, 24)] == 16  # a Thursday, 06-22
