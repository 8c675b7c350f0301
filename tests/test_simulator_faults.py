"""Injected faults change the telemetry the way their labels say, compared with a fault-free
simulation of the same seed; efficiency measures save what they claim; plans are reproducible."""

import datetime as dt

import numpy as np
import pytest

from enms_dagster.plant import load_plant
from enms_dagster.settings import REPO_DIR
from enms_dagster.simulator import SimulationTruth, simulate, to_payloads
from enms_dagster.simulator.faults import (
    FAULT_KINDS,
    KINDS_BY_TYPE,
    EfficiencyMeasure,
    FaultLabel,
    plan_faults,
)
from enms_dagster.simulator.models import IDLE, OFF

CET = dt.timezone(dt.timedelta(hours=1))
TUESDAY = dt.datetime(2026, 1, 13, tzinfo=CET)  # a winter working day
SEED = 11


def run(plant, machine_id, start, end, faults=(), measures=()):
    chunks = list(
        simulate(
            plant, start, end, seed=SEED, machine_ids=[machine_id], faults=faults,
            measures=measures,
        )
    )  # fmt: skip
    ts = np.concatenate([c.ts for c in chunks])
    metrics = {k: np.concatenate([c.metrics[k] for c in chunks]) for k in chunks[0].metrics}
    return ts, metrics, np.concatenate([c.state for c in chunks])


def label(machine_id, kind, start, end, magnitude=0.0):
    return FaultLabel(machine_id, kind, start.astimezone(dt.UTC), end.astimezone(dt.UTC), magnitude)


def inside(ts, fault):
    return (ts > fault.start.timestamp()) & (ts <= fault.end.timestamp())


def compare(plant, fault, start, end):
    """(ts, healthy metrics, faulted metrics, faulted state, mask of the fault window)."""
    ts, healthy, _ = run(plant, fault.machine_id, start, end)
    _, faulted, state = run(plant, fault.machine_id, start, end, faults=[fault])
    return ts, healthy, faulted, state, inside(ts, fault)


def test_air_leak_raises_air_demand_and_the_compressors_load(small_plant):
    start = TUESDAY + dt.timedelta(hours=8)
    fault = label("CMP-01", "air_leak", start, start + dt.timedelta(hours=6), 0.2)
    ts, healthy, faulted, _, window = compare(
        small_plant, fault, TUESDAY, TUESDAY + dt.timedelta(days=1)
    )
    assert (
        faulted["air_demand_m3_min"][window].mean()
        > 1.15 * healthy["air_demand_m3_min"][window].mean()
    )
    assert faulted["power_kw"][window].mean() > 1.1 * healthy["power_kw"][window].mean()
    before = ts < fault.start.timestamp()
    np.testing.assert_array_equal(faulted["power_kw"][before], healthy["power_kw"][before])


def test_hvac_setpoint_drift_heats_more_and_more(small_plant):
    fault = label("HVAC-01", "hvac_setpoint_drift", TUESDAY, TUESDAY + dt.timedelta(days=3), 4.0)
    ts, healthy, faulted, _, window = compare(
        small_plant, fault, TUESDAY, TUESDAY + dt.timedelta(days=4)
    )
    extra = faulted["power_kw"] - healthy["power_kw"]
    first, last = np.array_split(np.flatnonzero(window), 2)
    assert extra[first].mean() > 0 and extra[last].mean() > 1.5 * extra[first].mean()
    np.testing.assert_array_equal(extra[~window], 0)


def test_hvac_heating_and_cooling_at_once_costs_energy(small_plant):
    fault = label(
        "HVAC-01", "hvac_heat_cool_conflict", TUESDAY, TUESDAY + dt.timedelta(days=1), 0.5
    )
    ts, healthy, faulted, _, window = compare(
        small_plant, fault, TUESDAY, TUESDAY + dt.timedelta(days=2)
    )
    assert faulted["power_kw"][window].mean() > 1.2 * healthy["power_kw"][window].mean()
    np.testing.assert_array_equal(faulted["power_kw"][~window], healthy["power_kw"][~window])


def test_conveyor_bearing_wear_makes_power_creep_up(small_plant):
    fault = label("CNV-01", "bearing_wear", TUESDAY, TUESDAY + dt.timedelta(days=4), 0.3)
    ts, healthy, faulted, state, window = compare(
        small_plant, fault, TUESDAY, TUESDAY + dt.timedelta(days=5)
    )
    on = window & (state != OFF)
    ratio = faulted["power_kw"][on] / healthy["power_kw"][on]
    quarter = len(ratio) // 4
    assert ratio[:quarter].mean() < ratio[-quarter:].mean()
    assert 1.2 < ratio[-quarter:].mean() < 1.31


def test_pump_cavitation_is_noisy_and_draws_more(small_plant):
    start = TUESDAY + dt.timedelta(hours=8)
    fault = label("HYD-01", "pump_cavitation", start, start + dt.timedelta(hours=8), 0.15)
    ts, healthy, faulted, _, window = compare(
        small_plant, fault, TUESDAY, TUESDAY + dt.timedelta(days=1)
    )
    assert faulted["power_kw"][window].mean() > 1.1 * healthy["power_kw"][window].mean()
    assert faulted["power_kw"][window].std() > 1.5 * healthy["power_kw"][window].std()
    assert faulted["pressure_bar"][window].std() > 2 * healthy["pressure_bar"][window].std()


def test_moulding_heaters_left_on_over_the_weekend_draw_standby_power(small_plant):
    friday_night = dt.datetime(2026, 1, 16, 22, tzinfo=CET)
    monday = dt.datetime(2026, 1, 19, 5, tzinfo=CET)  # heat-up starts at 05:15
    fault = label("IMM-01", "heater_left_on", friday_night, monday)
    ts, healthy, faulted, state, window = compare(
        small_plant, fault, friday_night - dt.timedelta(hours=2), monday
    )
    assert (healthy["power_kw"][window] == 0).all()
    assert faulted["power_kw"][window].mean() > 0.1 * 45  # heaters: ~15 % of rated
    assert (state[window] == IDLE).all()  # heated, making no parts


@pytest.mark.parametrize("machine_id", ["CMP-01", "CNV-01", "HYD-01", "IMM-01", "HVAC-01"])
def test_a_machine_left_running_out_of_hours_draws_power_at_night(small_plant, machine_id):
    night = TUESDAY + dt.timedelta(hours=22)
    fault = label(machine_id, "left_running", night, night + dt.timedelta(hours=8))
    ts, healthy, faulted, state, window = compare(
        small_plant, fault, TUESDAY, TUESDAY + dt.timedelta(days=2)
    )
    # HVAC keeps its night set-back otherwise; everything else is off
    factor = 1.2 if machine_id == "HVAC-01" else 1.5
    assert faulted["power_kw"][window].mean() > factor * healthy["power_kw"][window].mean() + 0.1
    if machine_id != "HVAC-01":
        assert (state[window] != OFF).all()


def test_a_stuck_power_sensor_reads_flat_while_the_counter_keeps_counting(small_plant):
    start = TUESDAY + dt.timedelta(hours=9)
    fault = label("HYD-01", "stuck_sensor", start, start + dt.timedelta(hours=3))
    ts, healthy, faulted, _, window = compare(
        small_plant, fault, TUESDAY, TUESDAY + dt.timedelta(days=1)
    )
    assert np.ptp(faulted["power_kw"][window]) == 0 and np.ptp(healthy["power_kw"][window]) > 1
    np.testing.assert_array_equal(faulted["energy_kwh_total"], healthy["energy_kwh_total"])


def test_a_counter_reset_drops_the_counter_to_zero_and_it_counts_on(small_plant):
    at = TUESDAY + dt.timedelta(hours=10)
    fault = label("CNV-01", "counter_reset", at, at + dt.timedelta(seconds=10))
    ts, healthy, faulted, _, _ = compare(
        small_plant, fault, TUESDAY, TUESDAY + dt.timedelta(days=2)
    )
    assert (np.diff(healthy["energy_kwh_total"]) >= 0).all()
    steps = np.diff(faulted["energy_kwh_total"])
    assert (steps < 0).sum() == 1
    i = int(np.argmax(ts >= at.timestamp()))
    assert faulted["energy_kwh_total"][i] < 0.01 < healthy["energy_kwh_total"][i]
    np.testing.assert_allclose(steps[i:], np.diff(healthy["energy_kwh_total"])[i:], atol=1e-9)


def test_an_efficiency_measure_saves_its_share_from_its_date_on(small_plant):
    start = dt.datetime(2026, 3, 9, tzinfo=CET)
    measure = EfficiencyMeasure("CMP-01", (start + dt.timedelta(days=2)).astimezone(dt.UTC), 0.10)
    before, after = SimulationTruth(), SimulationTruth()
    for truth, measures in ((before, ()), (after, (measure,))):
        list(simulate(small_plant, start, start + dt.timedelta(days=4), seed=SEED, truth=truth,
                      machine_ids=["CMP-01"], measures=measures))  # fmt: skip
    ts, healthy, _ = run(small_plant, "CMP-01", start, start + dt.timedelta(days=4))
    _, saved, _ = run(
        small_plant, "CMP-01", start, start + dt.timedelta(days=4), measures=[measure]
    )
    later = ts > measure.start.timestamp()
    np.testing.assert_array_equal(saved["power_kw"][~later], healthy["power_kw"][~later])
    assert saved["power_kw"][later].sum() == pytest.approx(
        0.9 * healthy["power_kw"][later].sum(), rel=1e-4
    )
    assert after.energy_kwh["CMP-01"] < before.energy_kwh["CMP-01"]


REFERENCE = load_plant(REPO_DIR / "enms_dagster" / "plant" / "reference_plant.yaml")
WINDOW = (dt.datetime(2026, 3, 1, tzinfo=dt.UTC), dt.datetime(2026, 3, 31, tzinfo=dt.UTC))


def test_fault_plans_are_a_pure_function_of_seed_rate_plant_and_window():
    assert plan_faults(REFERENCE, *WINDOW, 3, 1.0) == plan_faults(REFERENCE, *WINDOW, 3, 1.0)
    assert plan_faults(REFERENCE, *WINDOW, 3, 1.0) != plan_faults(REFERENCE, *WINDOW, 4, 1.0)
    assert plan_faults(REFERENCE, *WINDOW, 3, 0.0) == []
    few, many = plan_faults(REFERENCE, *WINDOW, 3, 0.5), plan_faults(REFERENCE, *WINDOW, 3, 4.0)
    assert 0 < len(few) < len(many)


def test_a_month_of_planned_faults_covers_every_kind_and_fits_each_machine():
    labels = plan_faults(REFERENCE, *WINDOW, 3, 3.0)
    assert {f.kind for f in labels} == set(FAULT_KINDS)
    for f in labels:
        assert f.kind in KINDS_BY_TYPE[REFERENCE.machines[f.machine_id].machine_type]
        assert WINDOW[0] <= f.start < f.end <= WINDOW[1]
    weekend = [f for f in labels if f.kind == "heater_left_on"]
    assert all(f.start.astimezone(REFERENCE.sites["plant-a"].zone).weekday() == 4 for f in weekend)


def test_the_same_seed_and_fault_rate_give_byte_identical_telemetry(small_plant):
    start = dt.datetime(2026, 3, 12, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=2)

    def payloads():
        faults = plan_faults(small_plant, start, end, 9, 5.0)
        return faults, [
            p
            for s in simulate(small_plant, start, end, seed=9, faults=faults)
            for p in to_payloads(s)
        ]

    first, again = payloads(), payloads()
    assert first[0] and first == again
