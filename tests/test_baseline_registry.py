"""Baselines on 90 days of simulated history in the real PostgreSQL: model quality per machine,
savings recovered by the CUSUM, the model registry."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd
import pytest

from enms_dagster.baselines.registry import (
    active_models,
    expected_energy,
    fit_and_register,
    load_hourly_frame,
    load_model,
    rebuild_energy_performance,
)
from enms_dagster.db import connect
from enms_dagster.plant import BaselineSettings

MEASURE_DAY = dt.date(2026, 3, 6)  # IMM-01 saves 10 % from day 61 (local) on
DRIVEN_MACHINES = ("CMP-01", "HVAC-01", "CNV-01", "HYD-01", "IMM-01")


def _plant_with_imm_baseline_before_the_measure(plant):
    machines = dict(plant.machines)
    machines["IMM-01"] = dataclasses.replace(
        machines["IMM-01"], baseline=BaselineSettings(end=MEASURE_DAY - dt.timedelta(days=1))
    )
    return dataclasses.replace(plant, machines=machines)


@pytest.fixture(scope="module")
def registered(baseline_history):
    """Every machine and the site fitted once, daily and hourly (IMM-01 on its 60 days before
    the measure, the others on all 90 days)."""
    plant = _plant_with_imm_baseline_before_the_measure(baseline_history.plant)
    with connect(baseline_history.database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE marts.baseline_models CASCADE")
        models = fit_and_register(conn, plant, reason="first fit")
        rebuild_energy_performance(conn)
    return plant, models


@pytest.mark.integration
def test_every_driven_machine_gets_models_within_ashrae_14(registered):
    _, models = registered
    table = {(r.model.scope_id, r.model.resolution): r for r in models}
    for machine_id in DRIVEN_MACHINES:
        daily = table[(machine_id, "daily")].model.statistics
        hourly = table[(machine_id, "hourly")].model.statistics
        assert daily.cv_rmse <= 0.15 and abs(daily.nmbe) <= 0.05, (machine_id, daily)
        assert hourly.cv_rmse <= 0.30 and abs(hourly.nmbe) <= 0.10, (machine_id, hourly)
        assert table[(machine_id, "daily")].status == "active"
        assert table[(machine_id, "hourly")].status == "active"
    assert table[("plant-a", "daily")].status == "active"


@pytest.mark.integration
def test_cusum_recovers_a_known_ten_percent_saving_within_its_uncertainty(
    registered, baseline_history
):
    with connect(baseline_history.database_url) as conn:
        rows = pd.DataFrame(
            conn.execute(
                "SELECT local_date, actual_kwh, savings_kwh, cusum_savings_kwh, "
                "uncertainty_68_kwh, uncertainty_95_kwh FROM marts.energy_performance_daily "
                "WHERE scope_id = 'IMM-01' AND NOT in_baseline_period ORDER BY local_date"
            ).fetchall(),
            columns=["day", "actual", "savings", "cusum", "u68", "u95"],
        )
    assert rows["day"].iloc[0] == MEASURE_DAY
    reporting = rows[rows["day"] < MEASURE_DAY + dt.timedelta(days=30)]
    assert len(reporting) == 30  # Mar 6 .. Apr 4; the 1-hour Apr 5 is left out
    # power × 0.9 from the measure on: what the machine would have drawn is actual / 0.9
    true_saving = reporting["actual"].sum() / 0.9 * 0.1
    final = reporting.iloc[-1]
    print(
        f"IMM-01, 30 days after a 10 % measure: CUSUM {final['cusum']:.1f} kWh, true saving "
        f"{true_saving:.1f} kWh, uncertainty ±{final['u68']:.1f} (68 %) ±{final['u95']:.1f} (95 %)"
    )
    assert abs(final["cusum"] - true_saving) <= final["u68"], (final, true_saving)
    assert final["u68"] < 0.5 * true_saving  # ASHRAE 14: uncertainty under half the savings


@pytest.mark.integration
def test_refit_adds_a_version_keeps_the_old_and_activates_only_a_valid_one(
    registered, baseline_history
):
    plant, _ = registered
    with connect(baseline_history.database_url, autocommit=True) as conn:
        (first_id,) = conn.execute(
            "SELECT model_id FROM marts.baseline_models WHERE scope_id = 'CNV-01' "
            "AND resolution = 'daily' AND status = 'active'"
        ).fetchone()
        [refit] = fit_and_register(conn, plant, ["daily"], ["CNV-01"], reason="weekly re-fit")
        assert refit.version == 2 and refit.status == "active"
        statuses = dict(
            conn.execute(
                "SELECT version, status FROM marts.baseline_models "
                "WHERE scope_id = 'CNV-01' AND resolution = 'daily'"
            ).fetchall()
        )
        assert statuses == {1: "retired", 2: "active"}

        # a period reaching months past the history lacks data: stored as invalid, not used
        short = dataclasses.replace(
            plant.machines["CNV-01"],
            baseline=BaselineSettings(start=dt.date(2026, 3, 20), end=dt.date(2026, 6, 30)),
        )
        bad_plant = dataclasses.replace(plant, machines={**plant.machines, "CNV-01": short})
        [bad] = fit_and_register(conn, bad_plant, ["daily"], ["CNV-01"], reason="test")
        assert bad.status == "invalid" and bad.version == 3
        assert bad.model.failures == ["CalTRACK: 16 of 103 days with data (16%; at least 90%)"]
        (active_id, reason) = conn.execute(
            "SELECT model_id, reason FROM marts.baseline_models WHERE scope_id = 'CNV-01' "
            "AND resolution = 'daily' AND status = 'active'"
        ).fetchone()
        assert active_id == refit.model_id != first_id
        assert reason == "weekly re-fit"


@pytest.mark.integration
@pytest.mark.parametrize("resolution", ["daily", "hourly"])
def test_a_loaded_model_reproduces_its_stored_predictions(registered, baseline_history, resolution):
    with connect(baseline_history.database_url) as conn:
        for model_id, scope, _ in active_models(conn, resolution):
            model = load_model(conn, model_id)
            stored = pd.DataFrame(
                conn.execute(
                    "SELECT period, expected_kwh FROM marts.baseline_fitted "
                    "WHERE model_id = %s ORDER BY period",
                    (model_id,),
                ).fetchall(),
                columns=["period", "expected"],
            )
            hourly = load_hourly_frame(
                conn, scope, [model.scope_id], model.period_start, model.period_end
            )
            predicted = model.predict(hourly)
            if resolution == "daily":
                predicted = predicted.loc[[p.date() for p in stored["period"]]]
            else:
                predicted = predicted.loc[stored["period"]]
            assert len(stored) > 50
            assert predicted.to_numpy() == pytest.approx(stored["expected"].to_numpy(), abs=1e-9)


@pytest.mark.integration
def test_expected_energy_per_machine_hour_for_the_anomaly_detectors(registered, baseline_history):
    start = dt.datetime(2026, 2, 2, tzinfo=dt.UTC)
    with connect(baseline_history.database_url) as conn:
        frame = expected_energy(conn, start, start + dt.timedelta(days=1))
    assert set(frame["scope_id"]) == set(DRIVEN_MACHINES)
    assert len(frame) == 24 * len(DRIVEN_MACHINES)
    working_day = frame[frame["actual_kwh"] > 1]
    ratio = working_day["actual_kwh"].sum() / working_day["expected_kwh"].sum()
    assert ratio == pytest.approx(1.0, abs=0.1)


@pytest.mark.integration
def test_expected_energy_says_where_a_driver_lies_outside_the_fitted_range(
    registered, baseline_history
):
    start = dt.datetime(2026, 2, 2, tzinfo=dt.UTC)
    cold = start + dt.timedelta(hours=3)
    with connect(baseline_history.database_url) as conn:
        before = expected_energy(conn, start, start + dt.timedelta(days=1))
        weather_driven = {
            scope_id
            for (scope_id,) in conn.execute(
                "SELECT scope_id FROM marts.baseline_models WHERE status = 'active' "
                "AND scope = 'machine' AND resolution = 'hourly' "
                "AND drivers && ARRAY['heating_degrees', "
                "'cooling_degrees']"
            )
        }
        conn.execute(
            "UPDATE core.hourly_drivers SET outdoor_temperature_c = -40 WHERE hour_start = %s",
            (cold,),
        )
        after = expected_energy(conn, start, start + dt.timedelta(days=1))
        conn.rollback()
    assert not before["extrapolated"].any()  # inside the baseline period
    assert weather_driven
    flagged = after[after["extrapolated"]]
    assert set(flagged["hour_start"]) == {cold}
    assert set(flagged["scope_id"]) == weather_driven


@pytest.mark.integration
def test_the_assets_fit_register_and_show_the_model_table_and_charts(baseline_history):
    import dagster as dg

    from enms_dagster.assets.baselines import energy_baselines, energy_performance
    from enms_dagster.resources import PlantResource, WarehouseResource
    from tests.conftest import COARSE_PLANT

    result = dg.materialize(
        [energy_baselines, energy_performance],
        resources={
            "warehouse": WarehouseResource(database_url=baseline_history.database_url),
            "plant": PlantResource(plant_file=str(COARSE_PLANT)),
        },
        run_config=dg.RunConfig(
            ops={
                "energy_baselines": {
                    "config": {
                        "resolutions": ["daily"],
                        "reason": "asset test",
                        "period_end": "2026-03-05",
                    }
                }
            }
        ),
    )
    assert result.success
    [fit] = result.asset_materializations_for_node("energy_baselines")
    meta = fit.metadata
    assert meta["models_fitted"].value == 6  # five machines and the site, daily
    assert meta["models_valid"].value + meta["models_invalid"].value == 6
    models = [r.data for r in meta["models"].value.records]
    hvac = [m for m in models if (m["scope"], m["resolution"]) == ("HVAC-01", "daily")]
    assert len(hvac) == 1 and 0 < hvac[0]["CV(RMSE) %"] < 100
    assert meta["site_actual_vs_expected"].value.startswith("![plant-a")
    [perf] = result.asset_materializations_for_node("energy_performance")
    assert perf.metadata["rows"].value > 0
    with connect(baseline_history.database_url) as conn:
        active = set(
            conn.execute(
                "SELECT reason, period_start, period_end FROM marts.baseline_models "
                "WHERE status = 'active' AND resolution = 'daily'"
            ).fetchall()
        )
    assert active == {("asset test", dt.date(2026, 1, 5), dt.date(2026, 3, 5))}


def test_a_malformed_baseline_period_in_the_config_fails_with_the_format():
    import dagster as dg

    from enms_dagster.assets.baselines import BaselineConfig

    with pytest.raises(dg.Failure, match="expected YYYY-MM-DD"):
        BaselineConfig(period_end="2026-13-01").period()
    assert BaselineConfig(period_start="2026-01-05").period() == (dt.date(2026, 1, 5), None)
