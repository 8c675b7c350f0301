"""The simulated machines behave like the real ones an energy manager models: the drivers
explain the energy (a clear positive slope and R² over simulated hours), power and counters
agree, and the calendar and weather drive everything."""

import datetime as dt

import numpy as np
import pytest

from enms_dagster.simulator import simulate
from enms_dagster.simulator.models import IDLE, RUNNING

BERLIN = dt.timezone(dt.timedelta(hours=1))  # CET, fine for winter/March windows
MONDAY = dt.datetime(2026, 3, 9, tzinfo=BERLIN)


def series_of(plant, machine_id, start, end, seed=5):
    """One machine's samples over the window, concatenated across day chunks."""
    chunks = list(simulate(plant, start, end, seed=seed, machine_ids=[machine_id]))
    ts = np.concatenate([c.ts for c in chunks])
    metrics = {k: np.concatenate([c.metrics[k] for c in chunks]) for k in chunks[0].metrics}
    state = np.concatenate([c.state for c in chunks]) if chunks[0].state is not None else None
    return ts, metrics, state


def hourly(ts, values):
    """Sum of values per hour (a sample belongs to the hour its interval ends in)."""
    hours = (ts - 1) // 3600
    keys, index = np.unique(hours, return_inverse=True)
    return keys, np.bincount(index, weights=values)


def fit(x, y):
    """Least-squares slope and R² of y on x (with intercept)."""
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    return slope, 1 - residual.var() / y.var()


def energy_kwh(ts, metrics):
    interval = float(np.diff(ts)[0])
    return metrics["power_kw"] * interval / 3600


def producing_hours(keys, plant):
    """Whole hours inside the shift (06–22 local) of a working day."""
    local = [dt.datetime.fromtimestamp(int(k) * 3600, plant.sites["plant-a"].zone) for k in keys]
    return np.array([t.weekday() < 5 and 6 <= t.hour < 22 for t in local])


def test_compressor_energy_rises_with_air_demand(small_plant):
    ts, m, _ = series_of(small_plant, "CMP-01", MONDAY, MONDAY + dt.timedelta(days=3))
    keys, kwh = hourly(ts, energy_kwh(ts, m))
    _, air_m3 = hourly(ts, m["air_demand_m3_min"] / 60)  # m3 drawn per second
    on = producing_hours(keys, small_plant)
    slope, r2 = fit(air_m3[on], kwh[on])
    assert slope > 0.05 and r2 > 0.8, (slope, r2)  # kWh per m3 of air: ~0.1 for screw units


def test_compressor_cycles_in_its_pressure_band_and_unloads_at_a_third_of_loaded(small_plant):
    ts, m, state = series_of(small_plant, "CMP-01", MONDAY, MONDAY + dt.timedelta(days=1))
    powered = state != 0
    assert ((state == RUNNING) & powered).mean() > 0.1 and (state == IDLE).mean() > 0.1
    pressure = m["pressure_bar"][powered][120:]
    assert pressure.min() > 6.3 and pressure.max() < 7.7
    loaded = np.median(m["power_kw"][state == RUNNING])
    unloaded = np.median(m["power_kw"][state == IDLE])
    assert 0.25 <= unloaded / loaded <= 0.36


def test_hvac_energy_rises_with_heating_degree_hours(small_plant):
    start = dt.datetime(2026, 1, 12, tzinfo=BERLIN)
    ts, m, _ = series_of(small_plant, "HVAC-01", start, start + dt.timedelta(days=14))
    wx_ts, wx, _ = series_of(small_plant, "WX-01", start, start + dt.timedelta(days=14))
    keys, kwh = hourly(ts, energy_kwh(ts, m))
    _, hdh = hourly(wx_ts, np.clip(18.0 - wx["outdoor_temperature_c"], 0, None) / 60)
    on = producing_hours(keys, small_plant)
    slope, r2 = fit(hdh[on], kwh[on])
    assert slope > 0 and r2 > 0.7, (slope, r2)
    # over all hours, degree-hours and occupancy together explain the energy
    occupied = producing_hours(keys - 1, small_plant)  # pre-conditioning hour included
    design = np.column_stack([np.ones(len(kwh)), hdh, occupied])
    coef, *_ = np.linalg.lstsq(design[1:], kwh[1:], rcond=None)
    residual = kwh[1:] - design[1:] @ coef
    assert coef[1] > 0 and coef[2] > 0, coef
    assert 1 - residual.var() / kwh[1:].var() > 0.7


def test_hvac_heats_more_in_winter_and_cools_in_a_summer_heat_wave(small_plant):
    def mean_kw(day):
        start = dt.datetime.combine(day, dt.time(), BERLIN)
        _, m, state = series_of(small_plant, "HVAC-01", start, start + dt.timedelta(days=1))
        return m["power_kw"].mean(), m["supply_temperature_c"]

    winter, supply_winter = mean_kw(dt.date(2026, 1, 14))
    spring, _ = mean_kw(dt.date(2026, 4, 29))
    _, supply_summer = mean_kw(dt.date(2026, 7, 22))
    assert winter > 1.5 * spring
    heating = {"winter": (supply_winter > 26).mean(), "summer": (supply_summer > 26).mean()}
    cooling = {"winter": (supply_winter < 17).mean(), "summer": (supply_summer < 17).mean()}
    assert heating["winter"] > 0.8 and heating["summer"] < 0.4
    assert cooling["winter"] == 0 and cooling["summer"] > 0.1


def test_conveyor_energy_rises_with_parts_conveyed(small_plant):
    ts, m, state = series_of(small_plant, "CNV-01", MONDAY, MONDAY + dt.timedelta(days=5))
    keys, kwh = hourly(ts, energy_kwh(ts, m))
    _, parts = hourly(ts, m["throughput_parts_h"] * 10 / 3600)
    on = producing_hours(keys, small_plant)
    slope, r2 = fit(parts[on], kwh[on])
    assert slope > 0 and r2 > 0.8, (slope, r2)
    # the belt idles (state idle, power above zero) while the line waits
    waiting = state == IDLE
    assert waiting.any() and (m["power_kw"][waiting] > 0).all()


def test_moulding_energy_rises_with_parts_made(small_plant):
    ts, m, _ = series_of(small_plant, "IMM-01", MONDAY, MONDAY + dt.timedelta(days=5))
    keys, kwh = hourly(ts, energy_kwh(ts, m))
    made = np.diff(m["parts_total"], prepend=m["parts_total"][0])
    _, parts = hourly(ts, made)
    on = producing_hours(keys, small_plant)
    slope, r2 = fit(parts[on], kwh[on])
    assert slope > 0 and r2 > 0.7, (slope, r2)
    assert parts[on].mean() > 60  # a ~32 s cycle makes about 100 parts an hour


def test_pump_energy_follows_hydraulic_work(small_plant):
    ts, m, _ = series_of(small_plant, "HYD-01", MONDAY, MONDAY + dt.timedelta(days=5))
    keys, kwh = hourly(ts, energy_kwh(ts, m))
    work = m["pressure_bar"] * m["flow_l_min"] / 600 * 30 / 3600  # kWh of hydraulic work
    _, hydraulic = hourly(ts, work)
    on = producing_hours(keys, small_plant)
    slope, r2 = fit(hydraulic[on], kwh[on])
    assert slope > 1 and r2 > 0.8, (slope, r2)  # electric > hydraulic: efficiency below 1


@pytest.mark.parametrize("machine_id", ["CMP-01", "HVAC-01", "CNV-01", "HYD-01", "IMM-01"])
def test_counter_delta_equals_the_integral_of_power_within_one_percent(small_plant, machine_id):
    ts, m, _ = series_of(small_plant, machine_id, MONDAY, MONDAY + dt.timedelta(days=2))
    delta = m["energy_kwh_total"][-1] - m["energy_kwh_total"][0]
    integral = energy_kwh(ts, m)[1:].sum()
    assert delta == pytest.approx(integral, rel=0.01)
    assert delta > 0


def test_weekends_and_holidays_stop_production(small_plant):
    # Friday 1 May 2026 is a holiday, then the weekend; Monday 4 May works again
    start = dt.datetime(2026, 4, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    ts, m, state = series_of(small_plant, "HYD-01", start, start + dt.timedelta(days=5))
    local = np.array(
        [dt.datetime.fromtimestamp(int(t), dt.UTC) + dt.timedelta(hours=2) for t in ts]
    )
    day = np.array([t.day for t in local])
    hour = np.array([t.hour for t in local])
    shift = (hour >= 8) & (hour < 20)
    for working, days in ((True, (30, 4)), (False, (1, 2, 3))):
        mask = np.isin(day, days) & shift
        assert (state[mask] != 0).all() if working else (state[mask] == 0).all(), days


def test_changeovers_stop_each_line_for_a_while_every_working_day(small_plant):
    ts, m, state = series_of(small_plant, "IMM-01", MONDAY, MONDAY + dt.timedelta(days=5))
    hour = ((ts + 3600) // 3600) % 24
    shift = (hour >= 7) & (hour < 21)
    idle_share = (state[shift] == IDLE).mean()
    assert 0.03 < idle_share < 0.4
    # heaters: standby load with no parts made, never zero while heated
    assert (m["power_kw"][state == IDLE] > 0).all()


def test_outdoor_temperature_has_seasons_days_and_weather(small_plant):
    def temps(day, days=1):
        start = dt.datetime.combine(day, dt.time(), dt.UTC)
        ts, m, _ = series_of(small_plant, "WX-01", start, start + dt.timedelta(days=days))
        return ts, m["outdoor_temperature_c"]

    _, january = temps(dt.date(2026, 1, 10), 7)
    _, july = temps(dt.date(2026, 7, 10), 7)
    assert july.mean() - january.mean() > 10
    ts, month = temps(dt.date(2026, 4, 1), 28)
    hour = (ts // 3600) % 24
    assert month[(hour >= 12) & (hour < 16)].mean() > month[(hour >= 2) & (hour < 6)].mean() + 3
    daily_means = month.reshape(28, -1).mean(axis=1)
    assert daily_means.std() > 1.5  # warm and cold spells, not the same day repeated
    assert np.abs(np.diff(month)).max() < 1.0  # no jumps between minutes, nor at midnight
