"""Hourly energy from hand-built readings: the exact kWh per hour for each energy source."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from enms_dagster.ingest.landing import land_batch
from enms_dagster.transforms import rebuild_hourly_energy, rebuild_kpi_daily

pytestmark = pytest.mark.integration

BERLIN = ZoneInfo("Europe/Berlin")
DAY = dt.date(2026, 3, 10)
START = dt.datetime.combine(DAY, dt.time(), BERLIN)
END = START + dt.timedelta(days=1)
T10 = dt.datetime(2026, 3, 10, 10, 0, tzinfo=dt.UTC)


def at(minutes=0, seconds=0):
    return T10 + dt.timedelta(minutes=minutes, seconds=seconds)


def hourly(conn, machine):
    rebuild_hourly_energy(conn, START, END)
    return {
        hour.astimezone(dt.UTC).hour: (round(kwh, 9), method)
        for hour, kwh, method in conn.execute(
            "SELECT hour_start, energy_kwh, energy_method FROM core.hourly_energy "
            "WHERE machine_id = %s ORDER BY hour_start",
            (machine,),
        )
    }


def test_counter_deltas_with_a_reset_never_go_negative(warehouse):
    counter = [(0, 100.0), (15, 101.0), (30, 102.0), (45, 0.5), (60, 1.5)]
    rows = [("CMP-01", "energy_kwh_total", at(m), v) for m, v in counter]
    rows += [("CMP-01", "power_kw", at(m), 4.0) for m, _ in counter]
    land_batch(warehouse, rows, source="test", messages=1)
    # 10:15, 10:30, 11:00 are +1 kWh each; the reset step at 10:45 is 4 kW for 15 min = 1 kWh.
    assert hourly(warehouse, "CMP-01") == {9: (0.0, "counter"), 10: (4.0, "counter")}


def test_power_only_machines_integrate_power_over_the_sample_spacing(warehouse):
    rows = [("HYD-01", "power_kw", at(seconds=30 * i), 6.0) for i in range(121)]
    land_batch(warehouse, rows, source="test", messages=1)
    assert hourly(warehouse, "HYD-01")[10] == (6.0, "power")


def test_interval_energy_is_summed_into_the_hour_it_was_drawn_in(warehouse):
    rows = [("MTR-01", "energy_kwh_interval", at(m), 2.5) for m in (15, 30, 45, 60, 75)]
    land_batch(warehouse, rows, source="test", messages=1)
    assert hourly(warehouse, "MTR-01") == {10: (10.0, "interval"), 11: (2.5, "interval")}


def test_peak_is_the_highest_quarter_hour_average_not_the_highest_sample(warehouse):
    # 10 kW all hour, except one 30 s spike of 100 kW in the first quarter.
    rows = [("HYD-01", "power_kw", at(seconds=30 * i), 10.0) for i in range(121)]
    rows[5] = ("HYD-01", "power_kw", at(seconds=150), 100.0)
    land_batch(warehouse, rows, source="test", messages=1)
    rebuild_hourly_energy(warehouse, START, END)
    peak, max_kw = warehouse.execute(
        "SELECT peak_15min_kw, max_kw FROM core.hourly_energy "
        "WHERE machine_id = 'HYD-01' AND hour_start = %s",
        (T10,),
    ).fetchone()
    assert max_kw == 100.0
    assert peak == pytest.approx(10.0 + 90.0 / 30)  # one of 30 samples in 10:00-10:15


def test_rebuilding_a_day_twice_gives_identical_rows_and_the_daily_mart_sums_them(warehouse):
    rows = [("HYD-01", "power_kw", at(seconds=30 * i), 6.0) for i in range(241)]
    land_batch(warehouse, rows, source="test", messages=1)
    query = "SELECT * FROM core.hourly_energy ORDER BY machine_id, hour_start"
    rebuild_hourly_energy(warehouse, START, END)
    first = warehouse.execute(query).fetchall()
    rebuild_hourly_energy(warehouse, START, END)
    assert warehouse.execute(query).fetchall() == first
    rebuild_kpi_daily(warehouse, DAY, DAY)
    energy, hours = warehouse.execute(
        "SELECT energy_kwh, hours FROM marts.kpi_daily WHERE machine_id = 'HYD-01'"
    ).fetchone()
    # the 10:00:00 sample closes hour 9 (no earlier sample: 0 kWh), then two full hours
    assert (round(energy, 9), hours) == (12.0, 3)
