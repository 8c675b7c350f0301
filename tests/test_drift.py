"""Baseline drift: the CUSUM detector on hand-built residual series, and on 90 days of simulated
history in the real PostgreSQL, where the drift sensor requests one baseline re-fit per event."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from enms_dagster.db import connect
from enms_dagster.drift.cusum import (
    DriftSettings,
    cusum_alarms,
    detect_drift,
    residual_sigma,
)

K, H = DriftSettings().allowance, DriftSettings().threshold


def _residual_frame(z: np.ndarray, sigma: float = 10.0, first=dt.date(2026, 1, 1)):
    expected = np.full(len(z), 500.0)
    return pd.DataFrame(
        {
            "local_date": [first + dt.timedelta(days=i) for i in range(len(z))],
            "actual_kwh": expected + sigma * z,
            "expected_kwh": expected,
        }
    )


# --- hand-built residual series ---------------------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_a_sudden_three_sigma_step_is_found_within_five_days(seed):
    z = np.random.default_rng(seed).normal(size=120)
    z[60:] += 3.0
    events = detect_drift(_residual_frame(z), "M-1", 7, sigma_kwh=10.0)
    up = [e for e in events if e.direction == "up" and e.detected_on >= dt.date(2026, 3, 2)]
    assert len(up) == 1, events
    step_day = dt.date(2026, 1, 1) + dt.timedelta(days=60)
    assert (up[0].detected_on - step_day).days <= 5
    assert up[0].mean_residual_kwh > 0 and up[0].event_id.startswith("drift-M-1-up-")


@pytest.mark.parametrize("seed", range(10))
def test_a_slow_drift_of_a_tenth_sigma_a_day_is_found_within_25_days(seed):
    z = np.random.default_rng(seed).normal(size=150)
    z[60:] += 0.1 * np.arange(1, 91)
    alarms = [a for a in cusum_alarms(z, K, H) if a.direction == "up" and a.detected >= 60]
    assert alarms and alarms[0].detected - 60 <= 25


def test_fault_free_years_rarely_raise_a_drift():
    """On independent noise the CUSUM (k = 0.5σ, h = 8σ) alarms about once in 19,000 days per
    side: of 300 simulated fault-free years, around 4 % see an alarm."""
    rng = np.random.default_rng(2026)
    years_with_alarm = sum(bool(cusum_alarms(rng.normal(size=365), K, H)) for _ in range(300))
    assert years_with_alarm <= 0.08 * 300


@given(st.lists(st.floats(-K, K), min_size=1, max_size=400))
def test_residuals_within_the_allowance_never_accumulate(z):
    assert cusum_alarms(np.array(z), K, H) == []


def test_a_persistent_shift_is_one_event_not_one_a_week():
    z = np.zeros(400)
    z[50:] = 2.0  # more energy from day 50, for good
    events = detect_drift(_residual_frame(z), "M-1", 7, sigma_kwh=10.0)
    assert [(e.direction, e.change_start, e.delay_days) for e in events] == [
        ("up", dt.date(2026, 2, 20), 5)
    ]


def test_a_shift_that_ends_and_comes_back_is_two_events():
    z = np.zeros(200)
    z[20:40] = 2.0
    z[120:140] = -2.0
    events = detect_drift(_residual_frame(z), "M-1", 7, sigma_kwh=10.0)
    assert [e.direction for e in events] == ["up", "down"]


def test_an_event_keeps_its_id_when_more_days_arrive():
    z = np.random.default_rng(3).normal(size=90)
    z[40:] += 2.5
    first = detect_drift(_residual_frame(z[:60]), "M-1", 7, sigma_kwh=10.0)
    later = detect_drift(_residual_frame(z), "M-1", 9, sigma_kwh=10.0)
    assert [e.event_id for e in first] == [e.event_id for e in later]


def test_the_evidence_says_what_drifted_since_when_and_by_how_much():
    z = np.zeros(30)
    z[10:] = 3.0
    [event] = detect_drift(_residual_frame(z), "CMP-01", 42, sigma_kwh=10.0)
    assert event.evidence == (
        "CMP-01 uses more energy than its baseline (model 42) since 2026-01-11: +30.0 kWh/day "
        "(+6.0% of expected); CUSUM 10.0σ > 8σ on 2026-01-14 (σ = 10.0 kWh/day, k = 0.5σ)"
    )
    assert [r["cusum"] for r in event.residuals] == [2.5, 5.0, 7.5, 10.0]


def test_sigma_widens_for_autocorrelated_residuals_and_has_a_floor():
    settings = DriftSettings()
    assert residual_sigma(10.0, 0.0, 500.0, settings) == pytest.approx(10.0)
    assert residual_sigma(10.0, 0.6, 500.0, settings) == pytest.approx(20.0)
    assert residual_sigma(10.0, -0.4, 500.0, settings) == pytest.approx(10.0)
    assert residual_sigma(0.01, 0.0, 500.0, settings) == pytest.approx(10.0)  # 2 % of 500


# --- on simulated history, through the sensor -------------------------------------------------

BASELINE_END = dt.date(2026, 3, 5)  # every machine's daily baseline: Jan 5 .. Mar 5
STEP_DAY, STEP = dt.date(2026, 3, 16), 0.15  # CMP-01: +15 % from Monday Mar 16
DRIFT_DAY, DRIFT_RATE = dt.date(2026, 3, 12), 0.005  # HYD-01: +0.5 % more every day from Mar 12
MEASURE_DAY = dt.date(2026, 3, 6)  # IMM-01's real efficiency measure (-10 %) in the fixture


@pytest.fixture(scope="module")
def drifting(baseline_history, tmp_path_factory):
    """The history with a step on CMP-01 and a slow drift on HYD-01 written into the hourly
    energy, and every machine's daily baseline fitted on Jan 5 .. Mar 5. The changed hours are
    restored afterwards: other modules share this database."""
    from enms_dagster.baselines.registry import fit_and_register
    from enms_dagster.plant import load_plant
    from tests.conftest import COARSE_PLANT

    plant_file = tmp_path_factory.mktemp("drift") / "plant.yaml"
    spec = yaml.safe_load(COARSE_PLANT.read_text())
    for machine in spec["machines"]:
        machine["baseline"] = {"end": BASELINE_END}
    plant_file.write_text(yaml.safe_dump(spec))
    with connect(baseline_history.database_url, autocommit=True) as conn:
        saved = conn.execute(
            "SELECT machine_id, hour_start, energy_kwh FROM core.hourly_energy "
            "WHERE machine_id IN ('CMP-01', 'HYD-01') AND local_date >= %s",
            (min(STEP_DAY, DRIFT_DAY),),
        ).fetchall()
        try:
            conn.execute("TRUNCATE marts.baseline_models CASCADE")
            conn.execute(
                "UPDATE core.hourly_energy SET energy_kwh = energy_kwh * %s "
                "WHERE machine_id = 'CMP-01' AND local_date >= %s",
                (1 + STEP, STEP_DAY),
            )
            conn.execute(
                "UPDATE core.hourly_energy "
                "SET energy_kwh = energy_kwh * (1 + %s * (local_date - %s + 1)) "
                "WHERE machine_id = 'HYD-01' AND local_date >= %s",
                (DRIFT_RATE, DRIFT_DAY, DRIFT_DAY),
            )
            fit_and_register(conn, load_plant(plant_file), ["daily"], reason="first fit")
            yield plant_file
        finally:
            with conn.cursor() as cur:
                cur.executemany(
                    "UPDATE core.hourly_energy SET energy_kwh = %s "
                    "WHERE machine_id = %s AND hour_start = %s",
                    [(kwh, machine, hour) for machine, hour, kwh in saved],
                )
            conn.execute("TRUNCATE marts.baseline_models CASCADE")


def _evaluate(database_url: str, cursor: str | None = None, instance=None):
    import dagster as dg

    from enms_dagster.resources import WarehouseResource
    from enms_dagster.sensors.drift import baseline_drift_sensor

    context = dg.build_sensor_context(
        cursor=cursor,
        resources={"warehouse": WarehouseResource(database_url=database_url)},
        instance=instance or dg.DagsterInstance.ephemeral(),
    )
    return baseline_drift_sensor(context)


@pytest.fixture(scope="module")
def first_tick(drifting, baseline_history):
    return _evaluate(baseline_history.database_url)


def _events(database_url: str) -> dict[str, tuple]:
    with connect(database_url) as conn:
        rows = conn.execute(
            "SELECT machine_id, event_id, direction, change_start, detected_on, evidence "
            "FROM marts.drift_events ORDER BY seq"
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


@pytest.mark.integration
def test_each_drift_requests_exactly_one_refit_of_its_machine(first_tick, baseline_history):
    """Acceptance 2: a step (CMP-01), a slow drift (HYD-01) and the fixture's real efficiency
    measure (IMM-01, -10 %) each request one re-fit; CNV-01 and HVAC-01, fault-free for the
    30 days after their baseline, request none."""
    events = _events(baseline_history.database_url)
    requests = {r.tags["enms/machine"]: r for r in first_tick.run_requests}
    assert set(requests) == set(events) == {"CMP-01", "HYD-01", "IMM-01"}
    assert len(first_tick.run_requests) == 3
    for machine, request in requests.items():
        event_id, direction, *_, evidence = events[machine]
        assert request.run_key == event_id
        assert request.run_config == {
            "ops": {
                "energy_baselines": {
                    "config": {
                        "scope_ids": [machine],
                        "reason": f"drift: {evidence} [{event_id}]",
                    }
                }
            }
        }
    assert [e.asset_key.to_user_string() for e in first_tick.asset_events] == ["drift_events"]


@pytest.mark.integration
def test_the_step_and_the_slow_drift_are_found_within_their_stated_delays(
    first_tick, baseline_history
):
    events = _events(baseline_history.database_url)
    _, direction, _, detected_on, _ = events["CMP-01"]
    assert direction == "up"
    assert STEP_DAY <= detected_on <= STEP_DAY + dt.timedelta(days=3)  # a +15 % step: ≤ 3 days
    _, direction, _, detected_on, _ = events["HYD-01"]
    assert direction == "up"
    assert DRIFT_DAY <= detected_on <= DRIFT_DAY + dt.timedelta(days=14)  # +0.5 %/day: ≤ 14 days
    _, direction, change_start, detected_on, evidence = events["IMM-01"]
    assert direction == "down" and change_start == MEASURE_DAY
    assert detected_on <= MEASURE_DAY + dt.timedelta(days=5)
    assert "IMM-01 uses less energy than its baseline" in evidence


@pytest.mark.integration
def test_evaluating_the_sensor_again_requests_nothing_new(first_tick, baseline_history):
    again = _evaluate(baseline_history.database_url, first_tick.cursor)
    assert again.__class__.__name__ == "SkipReason"
    with connect(baseline_history.database_url) as conn:
        (count,) = conn.execute("SELECT count(*) FROM marts.drift_events").fetchone()
    assert count == 3


@pytest.mark.integration
def test_without_a_cursor_the_sensor_resumes_after_the_drifts_the_instance_reports(
    first_tick, baseline_history
):
    """After the demo reported its drift events into the instance `enms ui` opens, the
    daemon's first tick (no cursor yet) requests no re-fit for them."""
    import dagster as dg

    instance = dg.DagsterInstance.ephemeral()
    for event in first_tick.asset_events:
        instance.report_runless_asset_event(event)
    resumed = _evaluate(baseline_history.database_url, cursor=None, instance=instance)
    assert resumed.__class__.__name__ == "SkipReason"
    assert len(_evaluate(baseline_history.database_url).run_requests) == 3


@pytest.mark.integration
def test_the_refit_records_the_drift_as_the_reason_and_finds_no_new_drift(
    first_tick, drifting, baseline_history
):
    import dagster as dg

    from enms_dagster.assets.baselines import energy_baselines
    from enms_dagster.resources import PlantResource, WarehouseResource

    [request] = [r for r in first_tick.run_requests if r.tags["enms/machine"] == "CMP-01"]
    result = dg.materialize(
        [energy_baselines],
        resources={
            "warehouse": WarehouseResource(database_url=baseline_history.database_url),
            "plant": PlantResource(plant_file=str(drifting)),
        },
        run_config=request.run_config,
    )
    assert result.success
    with connect(baseline_history.database_url) as conn:
        version, status, reason = conn.execute(
            "SELECT version, status, reason FROM marts.baseline_models "
            "WHERE scope_id = 'CMP-01' AND resolution = 'daily' ORDER BY version DESC LIMIT 1"
        ).fetchone()
    assert (version, status) == (2, "active")
    assert reason.startswith("drift: CMP-01 uses more energy than its baseline")
    assert reason.endswith(f"[{request.run_key}]")
    # the same baseline period gives the same residuals: the same event, no second request
    after_refit = _evaluate(baseline_history.database_url, first_tick.cursor)
    assert after_refit.__class__.__name__ == "SkipReason"
