"""The simulator: deterministic, physically consistent, every machine type publishing."""

import datetime as dt
import json

import numpy as np
import pytest

from enms_dagster.ingest.payload import RegistryView, parse_message
from enms_dagster.simulator import SimulationTruth, simulate, to_payloads

START = dt.datetime(2026, 3, 9, 23, 0, tzinfo=dt.UTC)  # Tuesday 00:00 in Berlin
END = START + dt.timedelta(hours=6) + dt.timedelta(hours=12)


def all_payloads(plant, seed, start=START, end=END):
    return [
        (series.topic, payload)
        for series in simulate(plant, start, end, seed=seed)
        for payload in to_payloads(series)
    ]


def test_same_seed_gives_byte_identical_telemetry(small_plant):
    assert all_payloads(small_plant, 7) == all_payloads(small_plant, 7)


def test_another_seed_gives_other_telemetry(small_plant):
    assert all_payloads(small_plant, 7) != all_payloads(small_plant, 8)


def test_a_day_does_not_depend_on_where_the_window_started(small_plant):
    day = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)
    alone = all_payloads(small_plant, 7, day, day + dt.timedelta(days=1))
    within = all_payloads(small_plant, 7, day - dt.timedelta(days=1), day + dt.timedelta(days=1))
    power_alone = [json.loads(p)[0]["metrics"]["power_kw"] for t, p in alone if "HYD" in t]
    power_within = [json.loads(p)[0]["metrics"]["power_kw"] for t, p in within if "HYD" in t][
        -len(power_alone) :
    ]
    assert power_alone == power_within


def test_counter_steps_equal_the_integral_of_power(small_plant):
    for series in simulate(small_plant, START, END, seed=1):
        if "energy_kwh_total" not in series.metrics:
            continue
        interval = np.diff(series.ts)[0]
        steps = np.diff(series.metrics["energy_kwh_total"])
        integral = series.metrics["power_kw"][1:] * interval / 3600
        np.testing.assert_allclose(steps, integral, rtol=1e-9, atol=1e-9)


def test_each_type_publishes_at_its_interval_with_power_counter_and_state(small_plant):
    seen = {}
    for series in simulate(small_plant, START, END, seed=1):
        seen[series.machine.machine_type] = (int(np.diff(series.ts)[0]), set(series.metrics))
        if series.machine.machine_type != "weather_station":
            assert series.state is not None and set(np.unique(series.state)) <= {0, 1, 2}
    assert {t: s[0] for t, s in seen.items()} == {
        "compressor": 1,
        "hvac": 10,
        "conveyor_motor": 10,
        "hydraulic_pump": 30,
        "injection_moulding": 30,
        "weather_station": 60,
    }
    for kind in ("compressor", "hvac", "conveyor_motor", "hydraulic_pump", "injection_moulding"):
        assert {"power_kw", "energy_kwh_total"} <= seen[kind][1]
    assert seen["weather_station"][1] == {"outdoor_temperature_c"}


def test_machines_draw_more_during_shifts_than_at_night(small_plant):
    ts, power = {}, {}
    for series in simulate(small_plant, START, END, seed=1):
        if "power_kw" in series.metrics and series.machine.machine_type != "hvac":
            key = series.machine.machine_id
            ts[key] = np.concatenate([ts.get(key, []), series.ts])
            power[key] = np.concatenate([power.get(key, []), series.metrics["power_kw"]])
    assert len(power) == 4
    for key in power:
        hour_local = ((ts[key] + 3600) // 3600) % 24  # Berlin is UTC+1 in March
        day = power[key][(hour_local >= 8) & (hour_local < 16)].mean()
        night = power[key][hour_local < 5].mean()
        assert day > 2 * night, key


def test_published_payloads_follow_the_contract_the_ingestor_parses(small_plant):
    truth = SimulationTruth()
    registry = RegistryView(
        machine_sites={m: "plant-a" for m in small_plant.machines},
        commissioned={},
        metrics=frozenset(small_plant.metrics) | {"state"},
    )
    readings = 0
    expected = 0
    for series in simulate(small_plant, START, END, seed=3, truth=truth):
        expected += len(series.ts) * (len(series.metrics) + (series.state is not None))
        for payload in to_payloads(series, readings_per_message=60):
            out = parse_message(series.topic, payload, registry, END + dt.timedelta(days=1))
            assert out.rejections == []
            readings += len(out.readings)
    assert readings == expected
    assert truth.energy_kwh["CMP-01"] > 0


def test_a_naive_window_is_refused(small_plant):
    with pytest.raises(ValueError, match="time-zone-aware"):
        list(simulate(small_plant, dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2)))
