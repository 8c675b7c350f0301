"""Hourly drivers from hand-built readings: temperature, degree-hours, production, calendar."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from enms_dagster.hourly.transforms import rebuild_hourly_drivers, rebuild_hourly_energy
from enms_dagster.ingest.landing import land_batch

pytestmark = pytest.mark.integration

BERLIN = ZoneInfo("Europe/Berlin")


def window(day: dt.date):
    start = dt.datetime.combine(day, dt.time(), BERLIN)
    return start, dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), BERLIN)


def drivers(conn, start, end):
    return conn.execute(
        "SELECT hour_start, local_hour, iso_weekday, is_holiday, is_shift, outdoor_temperature_c, "
        "temperature_samples, hdh, cdh, parts, running_h FROM core.hourly_drivers "
        "WHERE site_id = 'plant-a' AND hour_start >= %s AND hour_start < %s ORDER BY hour_start",
        (start, end),
    ).fetchall()


def test_temperature_is_the_hourly_mean_and_degree_hours_follow_the_bases(warehouse):
    start, end = window(dt.date(2026, 3, 10))  # a Tuesday
    ten = dt.datetime(2026, 3, 10, 10, tzinfo=BERLIN)
    # 10:00-11:00 local: minutes 1..60 at 10 °C then 14 °C (mean 12); 11:00-12:00 at 25 °C
    rows = [
        ("WX-01", "outdoor_temperature_c", ten + dt.timedelta(minutes=m), 10.0 if m <= 30 else 14.0)
        for m in range(1, 61)
    ]
    rows += [
        ("WX-01", "outdoor_temperature_c", ten + dt.timedelta(minutes=m), 25.0)
        for m in range(61, 121)
    ]
    land_batch(warehouse, rows, source="test", messages=1)
    rebuild_hourly_energy(warehouse, start, end)
    assert rebuild_hourly_drivers(warehouse, start, end, heating_base_c=15.0, cooling_base_c=22.0)
    by_hour = {r[1]: r for r in drivers(warehouse, start, end)}
    assert len(by_hour) == 24
    _, _, weekday, holiday, shift, temp, samples, hdh, cdh, _, _ = by_hour[10]
    assert (weekday, holiday, shift, temp, samples, hdh, cdh) == (
        2,
        False,
        True,
        12.0,
        60,
        3.0,
        0.0,
    )
    assert by_hour[11][5:9] == (25.0, 60, 0.0, 3.0)
    assert by_hour[3][5:9] == (None, 0, None, None)  # no weather: unknown, not zero
    assert by_hour[3][4] is False  # 03:00 is outside the 06:00-22:00 shift


def test_holidays_and_weekends_are_never_shift_hours_and_dst_days_have_23_hours(warehouse):
    good_friday = dt.date(2026, 4, 3)  # a holiday of the small plant
    start, end = window(good_friday)
    rebuild_hourly_drivers(warehouse, start, end)
    rows = drivers(warehouse, start, end)
    assert len(rows) == 24 and all(r[3] and not r[4] for r in rows)
    start, end = window(dt.date(2026, 3, 29))  # Sunday, clocks go forward
    rebuild_hourly_drivers(warehouse, start, end)
    rows = drivers(warehouse, start, end)
    assert len(rows) == 23
    assert [r[1] for r in rows[:4]] == [0, 1, 3, 4]
    assert all(r[2] == 7 and not r[4] for r in rows)


def test_parts_and_running_hours_are_summed_over_the_sites_machines(warehouse):
    start, end = window(dt.date(2026, 3, 10))
    ten = dt.datetime(2026, 3, 10, 10, tzinfo=BERLIN)
    rows = []
    for i in range(121):
        ts = ten + dt.timedelta(seconds=30 * i)
        rows += [
            ("IMM-01", "power_kw", ts, 20.0),
            ("IMM-01", "state", ts, 2.0),
            ("IMM-01", "parts_total", ts, float(i)),
        ]
    land_batch(warehouse, rows, source="test", messages=1)
    rebuild_hourly_energy(warehouse, start, end)
    rebuild_hourly_drivers(warehouse, start, end)
    by_hour = {r[1]: r for r in drivers(warehouse, start, end)}
    assert by_hour[10][9:11] == (120.0, 1.0)
