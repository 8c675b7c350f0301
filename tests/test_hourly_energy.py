"""Hourly energy from hand-built readings: the exact kWh per hour for each energy source."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from enms_dagster.hourly.transforms import rebuild_hourly_energy
from enms_dagster.ingest.landing import land_batch
from enms_dagster.marts.transforms import rebuild_kpi_daily

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


def test_a_counter_jumping_up_beyond_what_the_machine_can_draw_is_not_energy(warehouse):
    # CMP-01 is rated 75 kW: 8 000 kWh in 15 minutes is a re-based meter, not consumption
    counter = [(0, 100.0), (15, 101.0), (30, 8102.0), (45, 8103.0), (60, 8104.0)]
    rows = [("CMP-01", "energy_kwh_total", at(m), v) for m, v in counter]
    rows += [("CMP-01", "power_kw", at(m), 4.0) for m, _ in counter]
    land_batch(warehouse, rows, source="test", messages=1)
    # +1 kWh at 10:15, 10:45, 11:00; the jump at 10:30 is 4 kW for 15 min = 1 kWh
    assert hourly(warehouse, "CMP-01") == {9: (0.0, "counter"), 10: (4.0, "counter")}


def test_a_counter_that_dips_and_recovers_within_an_hour_counts_its_net_growth(warehouse):
    # 101.6 -> 101.4 is a wobble inside the hour's first (101.0) and last (102.0) reading
    counter = [(0, 100.0), (15, 101.0), (30, 101.6), (45, 101.4), (60, 102.0)]
    rows = [("CMP-01", "energy_kwh_total", at(m), v) for m, v in counter]
    rows += [("CMP-01", "power_kw", at(m), 4.0) for m, _ in counter]
    land_batch(warehouse, rows, source="test", messages=1)
    # +1 kWh into the hour from 10:00, then 102.0 - 101.0; not a reset worth 4 kW x 15 min
    assert hourly(warehouse, "CMP-01")[10] == (2.0, "counter")


def test_a_register_that_updates_in_bursts_counts_its_growth_when_the_hour_is_possible(warehouse):
    # +10 kWh within one second is more than 75 kW can draw, but not within the half hour the
    # register had been standing still: it updates in bursts, the energy is real
    stamps = [at(0), at(30), at(30, 1), at(60)]
    counter = zip(stamps, [100.0, 100.0, 110.0, 110.0], strict=True)
    rows = [("CMP-01", "energy_kwh_total", ts, v) for ts, v in counter]
    rows += [("CMP-01", "power_kw", ts, 4.0) for ts in stamps]
    land_batch(warehouse, rows, source="test", messages=1)
    assert hourly(warehouse, "CMP-01")[10] == (10.0, "counter")


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


def meter_counter(start: dt.datetime, values: list[tuple[float, float]], machine="MTR-01"):
    """Counter readings at start + minutes."""
    return [(machine, "energy_kwh_total", start + dt.timedelta(minutes=m), v) for m, v in values]


def test_a_counter_reset_without_power_counts_nothing_rather_than_a_negative_step(warehouse):
    rows = meter_counter(T10, [(0, 500.0), (15, 501.0), (30, 3.0), (45, 4.5)])
    land_batch(warehouse, rows, source="test", messages=1)
    assert hourly(warehouse, "MTR-01")[10] == (2.5, "counter")


def test_a_counter_rollover_at_a_power_of_ten_is_the_wrapped_difference(warehouse):
    rows = meter_counter(T10, [(0, 99_998.0), (15, 99_999.5), (30, 0.7), (45, 1.7)])
    land_batch(warehouse, rows, source="test", messages=1)
    # 1.5, then 0.7 + (100 000 - 99 999.5) = 1.2, then 1.0
    assert hourly(warehouse, "MTR-01")[10] == (3.7, "counter")


def test_a_counter_rollover_at_the_metrics_declared_maximum(warehouse):
    warehouse.execute(
        "UPDATE core.metrics SET rollover_at = 65536 WHERE metric = 'energy_kwh_total'"
    )
    try:
        rows = meter_counter(T10, [(0, 65_530.0), (15, 65_535.0), (30, 4.0), (45, 9.0)])
        land_batch(warehouse, rows, source="test", messages=1)
        # 5, then 4 + (65 536 - 65 535) = 5, then 5
        assert hourly(warehouse, "MTR-01")[10] == (15.0, "counter")
    finally:
        warehouse.execute(
            "UPDATE core.metrics SET rollover_at = NULL WHERE metric = 'energy_kwh_total'"
        )


def test_a_gap_of_five_hours_is_spread_evenly_over_the_hours_it_spans(warehouse):
    # 15-minute meter: 1 kWh per quarter until 10:00, then silent until 15:00 (+10 kWh).
    rows = meter_counter(T10, [(-15, 99.0), (0, 100.0), (300, 110.0), (315, 111.0)])
    land_batch(warehouse, rows, source="test", messages=1)
    by_hour = hourly(warehouse, "MTR-01")
    assert by_hour == {
        9: (1.0, "counter"),
        10: (2.0, "counter"),
        11: (2.0, "counter"),
        12: (2.0, "counter"),
        13: (2.0, "counter"),
        14: (2.0, "counter"),
        15: (1.0, "counter"),
    }
    samples = dict(
        warehouse.execute(
            "SELECT extract(hour FROM hour_start AT TIME ZONE 'UTC')::int, samples "
            "FROM core.hourly_energy WHERE machine_id = 'MTR-01'"
        ).fetchall()
    )
    assert samples == {9: 2, 10: 0, 11: 0, 12: 0, 13: 0, 14: 1, 15: 1}


def test_a_step_from_a_reading_days_before_the_window_is_counted_inside_the_window(warehouse):
    # The last reading before the day is two days old; the day's first reading is at 01:00 UTC
    # (02:00 local). The whole 30 kWh step is counted, spread over the window's hours it spans.
    before = START - dt.timedelta(days=2)
    first = START + dt.timedelta(hours=2)
    rows = [("MTR-01", "energy_kwh_total", before, 100.0)]
    rows += meter_counter(first, [(0, 130.0), (15, 131.0)])
    land_batch(warehouse, rows, source="test", messages=1)
    rebuild_hourly_energy(warehouse, START, END)
    got = {
        h.astimezone(BERLIN).hour: round(e, 9)
        for h, e in warehouse.execute(
            "SELECT hour_start, energy_kwh FROM core.hourly_energy WHERE machine_id = 'MTR-01'"
        )
    }
    assert got == {0: 15.0, 1: 15.0, 2: 1.0}


def test_state_hours_idle_energy_parts_and_completeness_of_a_moulding_machine(warehouse):
    # 30 s samples: running at 20 kW for 30 minutes (one part per sample), then idle at 8 kW.
    rows = []
    for i in range(121):
        ts = at(seconds=30 * i)
        running = i <= 60
        rows += [
            ("IMM-01", "power_kw", ts, 20.0 if running else 8.0),
            ("IMM-01", "state", ts, 2.0 if running else 1.0),
            ("IMM-01", "parts_total", ts, float(min(i, 60))),
        ]
    land_batch(warehouse, rows, source="test", messages=1)
    rebuild_hourly_energy(warehouse, START, END)
    row = warehouse.execute(
        "SELECT energy_kwh, energy_method, idle_kwh, running_h, idle_h, off_h, parts, "
        "samples, expected_samples, completeness FROM core.hourly_energy "
        "WHERE machine_id = 'IMM-01' AND hour_start = %s",
        (T10,),
    ).fetchone()
    assert [round(v, 9) if isinstance(v, float) else v for v in row] == [
        14.0,
        "power",
        4.0,
        0.5,
        0.5,
        0.0,
        60.0,
        120,
        120,
        1.0,
    ]


def counter_day(zone: ZoneInfo, day: dt.date, machine: str = "MTR-01"):
    """1.5 kWh every 15 minutes (6 kWh an hour) from an hour before to an hour after the day."""
    start = dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
    quarters = int((end - start).total_seconds() // 900) + 8
    return [
        (machine, "energy_kwh_total", start + dt.timedelta(minutes=15 * (i - 4)), 100.0 + 1.5 * i)
        for i in range(quarters + 1)
    ]


def day_rows(conn, machine, start, end):
    return conn.execute(
        "SELECT hour_start, local_date, energy_kwh FROM core.hourly_energy "
        "WHERE machine_id = %s AND hour_start >= %s AND hour_start < %s ORDER BY hour_start",
        (machine, start, end),
    ).fetchall()


@pytest.mark.parametrize(
    ("day", "hours"), [(dt.date(2026, 3, 29), 23), (dt.date(2026, 10, 25), 25)]
)
def test_berlin_daylight_saving_days_have_23_and_25_hours_of_6_kwh(warehouse, day, hours):
    from enms_dagster.partitions import daily_partitions

    window = daily_partitions(BERLIN.key, day).time_window_for_partition_key(day.isoformat())
    land_batch(warehouse, counter_day(BERLIN, day), source="test", messages=1)
    rebuild_hourly_energy(warehouse, window.start, window.end)
    rows = day_rows(warehouse, "MTR-01", window.start, window.end)
    assert len(rows) == hours
    assert {d for _, d, _ in rows} == {day}
    assert [round(e, 9) for _, _, e in rows] == [6.0] * hours
    assert rows[0][0] == dt.datetime.combine(day, dt.time(), BERLIN)


NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def us_meter(warehouse):
    """A meter on a site registered in America/New_York."""
    warehouse.execute(
        "INSERT INTO core.sites (site_id, name, timezone, commissioned_on) "
        "VALUES ('plant-us', 'US plant', 'America/New_York', '2025-01-01') ON CONFLICT DO NOTHING"
    )
    warehouse.execute(
        "INSERT INTO core.machines (machine_id, site_id, name, machine_type) "
        "VALUES ('US-MTR', 'plant-us', 'US meter', 'meter') ON CONFLICT DO NOTHING"
    )
    yield "US-MTR"
    warehouse.execute("DELETE FROM core.hourly_energy WHERE machine_id = 'US-MTR'")
    warehouse.execute("DELETE FROM raw.readings WHERE machine_id = 'US-MTR'")
    warehouse.execute("DELETE FROM core.machines WHERE machine_id = 'US-MTR'")
    warehouse.execute("DELETE FROM core.hourly_drivers WHERE site_id = 'plant-us'")
    warehouse.execute("DELETE FROM core.sites WHERE site_id = 'plant-us'")


@pytest.mark.parametrize(("day", "hours"), [(dt.date(2026, 3, 8), 23), (dt.date(2026, 11, 1), 25)])
def test_new_york_daylight_saving_days_have_23_and_25_hours_of_6_kwh(
    warehouse, us_meter, day, hours
):
    start = dt.datetime.combine(day, dt.time(), NEW_YORK)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), NEW_YORK)
    assert end.astimezone(dt.UTC) - start.astimezone(dt.UTC) == dt.timedelta(hours=hours)
    land_batch(warehouse, counter_day(NEW_YORK, day, us_meter), source="test", messages=1)
    rebuild_hourly_energy(warehouse, start, end)
    rows = day_rows(warehouse, us_meter, start, end)
    assert len(rows) == hours
    assert {d for _, d, _ in rows} == {day}
    assert [round(e, 9) for _, _, e in rows] == [6.0] * hours


def test_late_readings_for_an_old_day_change_that_day_only(warehouse):
    day2_start, day2_end = END, END + dt.timedelta(days=1)
    rows = [r for r in counter_day(BERLIN, DAY) if r[2] != T10 + dt.timedelta(minutes=30)]
    rows += counter_day(BERLIN, DAY + dt.timedelta(days=1))
    land_batch(warehouse, rows, source="test", messages=1)
    rebuild_hourly_energy(warehouse, START, END)
    rebuild_hourly_energy(warehouse, day2_start, day2_end)
    day1 = day_rows(warehouse, "MTR-01", START, END)
    day2 = day_rows(warehouse, "MTR-01", day2_start, day2_end)
    (samples,) = warehouse.execute(
        "SELECT samples FROM core.hourly_energy WHERE machine_id = 'MTR-01' AND hour_start = %s",
        (T10,),
    ).fetchone()
    assert samples == 3

    # the reading at 10:30 arrives late; the sensor re-materializes its day
    late = [r for r in counter_day(BERLIN, DAY) if r[2] == T10 + dt.timedelta(minutes=30)]
    land_batch(warehouse, late, source="late", messages=1)
    rebuild_hourly_energy(warehouse, START, END)
    assert day_rows(warehouse, "MTR-01", START, END) == day1  # same kWh, now with 4 samples
    (samples,) = warehouse.execute(
        "SELECT samples FROM core.hourly_energy WHERE machine_id = 'MTR-01' AND hour_start = %s",
        (T10,),
    ).fetchone()
    assert samples == 4
    rebuild_hourly_energy(warehouse, day2_start, day2_end)
    assert day_rows(warehouse, "MTR-01", day2_start, day2_end) == day2


def test_freshly_landed_days_get_planner_statistics_before_the_transform(warehouse):
    from enms_dagster.hourly.transforms import analyze_stale_readings

    day = dt.datetime(2027, 7, 15, 12, tzinfo=dt.UTC)  # a day no other test lands on
    rows = [("HYD-01", "power_kw", day + dt.timedelta(seconds=30 * i), 6.0) for i in range(200)]
    land_batch(warehouse, rows, source="test", messages=1)
    analyzed = analyze_stale_readings(warehouse)
    assert "raw.readings_20270715" in analyzed  # the day just landed had no statistics
    assert analyze_stale_readings(warehouse) == []  # and now it has them
