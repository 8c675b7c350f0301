"""The analyst marts from hand-built days: every KPI of marts.fct_kpi_daily and the price of each
hour in marts.fct_energy_hourly, checked against numbers worked out by hand.

The weekday (Tuesday 2026-03-10, Europe/Berlin, 24 hours) of the small plant:
- HYD-01 (line-1), power every 5 minutes: 20 kW from 06:00 to 22:00, 4 kW at night except
  2 kW in hour 02 and 3 kW in hour 03; 50 kW in the quarter 10:00-10:15.
- IMM-01 (line-1), power, state and parts: running at 40 kW 06-14 (5 parts a sample, 60 an hour),
  idle at 10 kW 14-22, off at 0 kW; 80 kW in the quarter 10:30-10:45.
- MTR-01 (line "site"), a 15-minute counter: 1.5 kWh a quarter (6 kWh an hour); the counter is
  reset at 21:30 and reports no power, so the quarter 21:15-21:30 counts 0 kWh.
Tariff of the small plant: peak 08-20 on weekdays at 0.24 EUR/kWh, off_peak 20-08 (crossing
midnight) at 0.15, demand charge 11.5 EUR per kW and month; 0.38 kg CO2e per kWh.
"""

import contextlib
import datetime as dt
import json
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from pytest import approx

from enms_dagster.definitions import defs as load_definitions
from enms_dagster.hourly.transforms import rebuild_hourly_drivers, rebuild_hourly_energy
from enms_dagster.ingest.landing import land_batch
from enms_dagster.marts.transforms import rebuild_fct_energy_hourly, rebuild_fct_kpi_daily
from enms_dagster.resources import WarehouseResource

DEFS = load_definitions()
hourly_energy, hourly_drivers, fct_energy_hourly, fct_kpi_daily = (
    DEFS.get_assets_def(key)
    for key in ("hourly_energy", "hourly_drivers", "fct_energy_hourly", "fct_kpi_daily")
)

pytestmark = pytest.mark.integration

BERLIN = ZoneInfo("Europe/Berlin")
TUESDAY = dt.date(2026, 3, 10)
MARCH_DAYS = 31
STEP = dt.timedelta(minutes=5)


@pytest.fixture
def marts(warehouse):
    """The warehouse with the marts and drivers emptied too (the shared fixture leaves them)."""
    warehouse.execute("TRUNCATE marts.fct_energy_hourly, marts.fct_kpi_daily, core.hourly_drivers")
    return warehouse


@contextlib.contextmanager
def tariff(conn, valid_from: dt.date, definition: dict):
    """A tariff of plant-a in force from valid_from, removed afterwards."""
    conn.execute(
        "INSERT INTO core.tariffs (site_id, name, valid_from, currency, definition) "
        "VALUES ('plant-a', 'test tariff', %s, 'EUR', %s)",
        (valid_from, json.dumps(definition)),
    )
    try:
        yield
    finally:
        conn.execute(
            "DELETE FROM core.tariffs WHERE site_id = 'plant-a' AND valid_from = %s", (valid_from,)
        )


def local_day(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), BERLIN)
    return start, dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), BERLIN)


def sample_times(first: dt.date, step: dt.timedelta, days: int = 1):
    """(UTC ts, local start of the interval the sample closes) from the start of the local day
    first to the end of the last of days local days, every step."""
    ts = local_day(first)[0].astimezone(dt.UTC)
    end = local_day(first + dt.timedelta(days=days - 1))[1].astimezone(dt.UTC)
    while ts <= end:
        yield ts, (ts - step).astimezone(BERLIN)
        ts += step


def hydraulic_unit(day: dt.date) -> list[tuple]:
    def kw(t: dt.datetime) -> float:
        if t.hour == 10 and t.minute < 15:
            return 50.0
        if 6 <= t.hour < 22:
            return 20.0
        return {2: 2.0, 3: 3.0}.get(t.hour, 4.0)

    return [("HYD-01", "power_kw", ts, kw(t)) for ts, t in sample_times(day, STEP)]


def moulding_machine(day: dt.date) -> list[tuple]:
    rows, parts = [], 1000.0
    for ts, t in sample_times(day, STEP):
        state = 2 if 6 <= t.hour < 14 else 1 if 14 <= t.hour < 22 else 0
        kw = 80.0 if t.hour == 10 and 30 <= t.minute < 45 else {2: 40.0, 1: 10.0, 0: 0.0}[state]
        if state == 2 and ts > local_day(day)[0]:
            parts += 5
        rows += [
            ("IMM-01", "power_kw", ts, kw),
            ("IMM-01", "state", ts, float(state)),
            ("IMM-01", "parts_total", ts, parts),
        ]
    return rows


def meter(first: dt.date, kwh_per_hour, reset_at: dt.time | None = None, days: int = 1):
    """MTR-01 counter every 15 minutes over days local days: kwh_per_hour(i) in the i-th hour of
    each local day; at reset_at (local) the counter restarts from 0.5 instead of stepping."""
    value, rows = 100.0, []
    for ts, _ in sample_times(first, dt.timedelta(minutes=15), days):
        if rows:
            drawn = ts - dt.timedelta(microseconds=1)
            day_start = local_day(drawn.astimezone(BERLIN).date())[0]
            value += kwh_per_hour(int((drawn - day_start).total_seconds() // 3600)) / 4
        if reset_at is not None and ts.astimezone(BERLIN).time() == reset_at:
            value = 0.5
        rows.append(("MTR-01", "energy_kwh_total", ts, value))
    return rows


def build_marts(conn, *days: dt.date) -> None:
    for day in days:
        start, end = local_day(day)
        rebuild_hourly_energy(conn, start, end)
        rebuild_hourly_drivers(conn, start, end)
        rebuild_fct_energy_hourly(conn, start, end)
    rebuild_fct_kpi_daily(conn, min(days), max(days))


def land_tuesday(conn) -> None:
    rows = hydraulic_unit(TUESDAY) + moulding_machine(TUESDAY)
    rows += meter(TUESDAY, lambda hour: 6.0, reset_at=dt.time(21, 30))
    land_batch(conn, rows, source="test", messages=1)
    build_marts(conn, TUESDAY)


def kpis(conn, level: str, level_id: str, day: dt.date = TUESDAY) -> dict:
    cur = conn.execute(
        "SELECT * FROM marts.fct_kpi_daily WHERE level = %s AND level_id = %s AND local_date = %s",
        (level, level_id, day),
    )
    row = cur.fetchone()
    assert row is not None, f"no {level} row for {level_id} on {day}"
    return dict(zip([c.name for c in cur.description], row, strict=True))


def hourly_prices(conn, machine: str, day: dt.date) -> list[tuple]:
    return conn.execute(
        "SELECT local_hour, tariff_period, price_per_kwh FROM marts.fct_energy_hourly "
        "WHERE machine_id = %s AND local_date = %s ORDER BY hour_start",
        (machine, day),
    ).fetchall()


def test_machine_kpis_of_a_weekday_match_the_hand_count(marts):
    land_tuesday(marts)

    hyd = kpis(marts, "machine", "HYD-01")
    # hour 10: (3 samples at 50 + 9 at 20) * 5 min = 27.5 kWh; 11 other shift hours of 20 (the
    # 08-20 peak hours) + 4 shift hours 06, 07, 20, 21 of 20; nights 6 * 4 + 2 + 3 = 29
    energy = 27.5 + 15 * 20 + 29
    assert energy == 356.5
    assert hyd["energy_kwh"] == approx(energy)
    assert (hyd["machines"], hyd["hours"]) == (1, 24)
    assert hyd["avg_kw"] == approx(356.5 / 24)
    assert (hyd["peak_15min_kw"], hyd["peak_method"]) == (approx(50.0), "machine_15min")
    assert hyd["load_factor"] == approx(356.5 / 24 / 50)
    # hourly kW sorted 2, 3, 4, ...: percentile_cont(0.05) of 24 values is x1 + 0.15 (x2 - x1)
    assert hyd["base_load_kw"] == approx(3 + 0.15 * (4 - 3))
    assert hyd["out_of_hours_kwh"] == approx(29.0)
    assert hyd["out_of_hours_share"] == approx(29 / 356.5)
    assert hyd["idle_kwh"] is None and hyd["parts"] is None and hyd["sec_kwh_per_part"] is None
    # peak hours 08-19: 11 * 20 + 27.5 = 247.5 kWh at 0.24; the other 109 kWh at 0.15
    assert hyd["energy_cost"] == approx(247.5 * 0.24 + 109 * 0.15)
    assert hyd["demand_charge"] == approx(11.5 * 50 / MARCH_DAYS)
    assert hyd["total_cost"] == approx(247.5 * 0.24 + 109 * 0.15 + 11.5 * 50 / MARCH_DAYS)
    assert hyd["currency"] == "EUR"
    assert hyd["co2e_kg"] == approx(356.5 * 0.38)
    assert hyd["completeness"] == approx(12 / 120)  # 5-minute samples, 30 s expected

    imm = kpis(marts, "machine", "IMM-01")
    # running 7 * 40 + hour 10 (3 * 80 + 9 * 40) / 12 = 50; idle 8 * 10; off 0
    assert imm["energy_kwh"] == approx(7 * 40 + 50 + 80)
    assert imm["peak_15min_kw"] == approx(80.0)
    assert imm["load_factor"] == approx(410 / 24 / 80)
    assert imm["base_load_kw"] == approx(0.0)
    assert imm["idle_kwh"] == approx(80.0)
    assert imm["idle_share"] == approx(80 / 410)
    assert imm["parts"] == approx(8 * 60)
    assert imm["sec_kwh_per_part"] == approx(410 / 480)
    assert imm["out_of_hours_kwh"] == approx(0.0)
    # peak hours 08-19: 5 * 40 + 50 running, 6 * 10 idle = 310 kWh; 06, 07, 20, 21: 80 + 20
    assert imm["energy_cost"] == approx(310 * 0.24 + 100 * 0.15)
    assert imm["demand_charge"] == approx(11.5 * 80 / MARCH_DAYS)
    assert imm["co2e_kg"] == approx(410 * 0.38)
    assert [imm[c] for c in ("enpi", "expected_kwh", "savings_kwh", "cusum_savings_kwh")] == [
        None
    ] * 4
    assert imm["baseline_version"] is None


def test_a_line_peaks_at_the_highest_quarter_hour_of_its_summed_load(marts):
    land_tuesday(marts)
    line = kpis(marts, "line", "line-1")
    # 10:00-10:15: 50 + 40 = 90; 10:30-10:45: 20 + 80 = 100. Not the largest machine peak (80)
    # and not the sum of the two machines' peaks (130), which fall in different quarters.
    assert (line["peak_15min_kw"], line["peak_method"]) == (approx(100.0), "summed_15min")
    assert (line["machines"], line["hours"]) == (2, 24)
    assert line["energy_kwh"] == approx(356.5 + 410)
    assert line["load_factor"] == approx(766.5 / 24 / 100)
    # line kWh per hour: 2 (hour 02), 3 (hour 03), 4 (other nights), ...
    assert line["base_load_kw"] == approx(3 + 0.15 * (4 - 3))
    assert line["sec_kwh_per_part"] == approx(766.5 / 480)
    assert line["idle_kwh"] == approx(80.0)  # HYD-01 reports no state
    assert line["out_of_hours_share"] == approx(29 / 766.5)
    assert line["energy_cost"] == approx(247.5 * 0.24 + 109 * 0.15 + 310 * 0.24 + 100 * 0.15)
    assert line["demand_charge"] == approx(11.5 * 100 / MARCH_DAYS)

    # once retention dropped the day's raw readings, a rebuild falls back to the upper bound
    marts.execute("DELETE FROM raw.readings")
    rebuild_fct_kpi_daily(marts, TUESDAY, TUESDAY)
    line = kpis(marts, "line", "line-1")
    assert (line["peak_15min_kw"], line["peak_method"]) == (approx(130.0), "sum_of_hourly_peaks")
    assert kpis(marts, "machine", "IMM-01")["peak_15min_kw"] == approx(80.0)


def test_a_counter_reset_costs_its_quarter_and_never_goes_negative_up_to_the_site(marts):
    land_tuesday(marts)
    hours = dict(
        marts.execute(
            "SELECT local_hour, energy_kwh FROM marts.fct_energy_hourly "
            "WHERE machine_id = 'MTR-01' AND local_date = %s",
            (TUESDAY,),
        ).fetchall()
    )
    assert hours == {h: approx(4.5 if h == 21 else 6.0) for h in range(24)}
    mtr = kpis(marts, "machine", "MTR-01")
    assert mtr["energy_kwh"] == approx(24 * 6 - 1.5)
    # peak 08-19: 72 kWh at 0.24; off-peak 00-07 (48), 20 (6), 21 (4.5), 22-23 (12)
    assert mtr["energy_cost"] == approx(72 * 0.24 + 70.5 * 0.15)
    assert mtr["out_of_hours_kwh"] == approx(48.0)
    assert mtr["base_load_kw"] == approx(6.0)  # sorted 4.5, 6, 6: x1 + 0.15 (x2 - x1)
    # a counter without power has no 15-minute peak, so no load factor or demand charge
    assert mtr["peak_15min_kw"] is None and mtr["load_factor"] is None
    assert mtr["demand_charge"] is None and mtr["total_cost"] == approx(mtr["energy_cost"])

    site = kpis(marts, "site", "plant-a")
    assert (site["machines"], site["hours"]) == (3, 24)
    assert site["energy_kwh"] == approx(356.5 + 410 + 142.5)
    assert site["peak_15min_kw"] == approx(100.0)  # only machines reporting power
    assert site["load_factor"] is None  # part of the energy has no 15-minute load
    # site kWh per hour: 2 + 6 = 8 (hour 02), 9 (hour 03), 10 (other nights), ...
    assert site["base_load_kw"] == approx(9 + 0.15 * (10 - 9))
    assert site["out_of_hours_kwh"] == approx(29 + 0 + 48)
    assert site["out_of_hours_share"] == approx(77 / 909)
    assert site["sec_kwh_per_part"] == approx(909 / 480)
    energy_cost = 247.5 * 0.24 + 109 * 0.15 + 310 * 0.24 + 100 * 0.15 + 72 * 0.24 + 70.5 * 0.15
    assert site["energy_cost"] == approx(energy_cost)
    assert site["total_cost"] == approx(energy_cost + 11.5 * 100 / MARCH_DAYS)
    assert site["co2e_kg"] == approx(909 * 0.38)
    levels = marts.execute(
        "SELECT level, count(*) FROM marts.fct_kpi_daily GROUP BY level ORDER BY level"
    ).fetchall()
    assert levels == [("line", 2), ("machine", 3), ("site", 1)]  # line-1 and "site" (MTR-01)


def test_off_peak_crosses_midnight_and_uncovered_weekend_hours_take_the_cheapest_period(marts):
    saturday = TUESDAY + dt.timedelta(days=4)
    rows = meter(TUESDAY, lambda h: 6.0) + meter(saturday, lambda h: 6.0)
    land_batch(marts, rows, source="t", messages=1)
    build_marts(marts, TUESDAY, saturday)
    off, peak = ("off_peak", approx(0.15)), ("peak", approx(0.24))
    assert hourly_prices(marts, "MTR-01", TUESDAY) == [
        (h, *(peak if 8 <= h < 20 else off)) for h in range(24)
    ]
    # peak is for weekdays only and off_peak ends at 08:00: nothing covers Saturday 08-20
    assert hourly_prices(marts, "MTR-01", saturday) == [(h, *off) for h in range(24)]
    assert kpis(marts, "machine", "MTR-01", saturday)["energy_cost"] == approx(144 * 0.15)


def test_the_part_of_a_period_after_midnight_belongs_to_the_weekday_it_started_on(marts):
    friday, saturday = dt.date(2026, 3, 13), dt.date(2026, 3, 14)
    periods = [
        {
            "name": "friday_night",
            "start": "22:00",
            "end": "06:00",
            "weekdays": ["fri"],
            "eur_per_kwh": 0.5,
        },
        {"name": "day", "start": "06:00", "end": "22:00", "eur_per_kwh": 0.3},
    ]
    with tariff(marts, friday, {"periods": periods}):
        land_batch(marts, meter(friday, lambda h: 6.0, days=2), source="t", messages=1)
        build_marts(marts, friday, saturday)
        night, day = ("friday_night", approx(0.5)), ("day", approx(0.3))
        # Friday 00-06 is Thursday's night, not listed: uncovered, so the cheaper "day" price
        assert hourly_prices(marts, "MTR-01", friday) == [
            (h, *(night if h >= 22 else day)) for h in range(24)
        ]
        # Saturday 00-06 is still Friday's night; Saturday 22-24 is nobody's
        assert hourly_prices(marts, "MTR-01", saturday) == [
            (h, *(night if h < 6 else day)) for h in range(24)
        ]


def test_a_quarter_hour_period_boundary_prices_the_hour_by_its_quarters(marts):
    periods = [
        {"name": "night", "start": "22:30", "end": "06:15", "eur_per_kwh": 0.1},
        {"name": "day", "start": "06:15", "end": "22:30", "eur_per_kwh": 0.3},
    ]
    with tariff(marts, TUESDAY, {"periods": periods}):
        land_batch(marts, meter(TUESDAY, lambda h: 6.0), source="t", messages=1)
        build_marts(marts, TUESDAY)
        prices = {
            h: (period, price) for h, period, price in hourly_prices(marts, "MTR-01", TUESDAY)
        }
    assert prices[6] == ("night", approx((0.1 + 3 * 0.3) / 4))
    assert prices[22] == ("day", approx((2 * 0.3 + 2 * 0.1) / 4))
    assert prices[12] == ("day", approx(0.3))


@pytest.mark.parametrize(
    ("day", "local_hours"),
    [
        (dt.date(2026, 3, 29), [0, 1, *range(3, 24)]),
        (dt.date(2026, 10, 25), [0, 1, 2, 2, *range(3, 24)]),
    ],
)
def test_daylight_saving_days_are_priced_and_counted_in_local_hours(marts, day, local_hours):
    periods = [
        {"name": "night", "start": "22:00", "end": "06:00", "eur_per_kwh": 0.1},
        {"name": "day", "start": "06:00", "end": "22:00", "eur_per_kwh": 0.3},
    ]
    n = len(local_hours)
    # 2 kWh in the day's first hour, 3 in its second, 9 in its last two (22-24), 6 in the others
    kwh = {0: 2.0, 1: 3.0, n - 2: 9.0, n - 1: 9.0}
    with tariff(marts, day, {"periods": periods}):
        land_batch(marts, meter(day, lambda i: kwh.get(i, 6.0)), source="t", messages=1)
        build_marts(marts, day)
        prices = hourly_prices(marts, "MTR-01", day)
        kpi = kpis(marts, "machine", "MTR-01", day)
    night, daytime = ("night", approx(0.1)), ("day", approx(0.3))
    assert prices == [(h, *(night if h < 6 or h >= 22 else daytime)) for h in local_hours]
    night_hours = sum(1 for h in local_hours if h < 6 or h >= 22)
    assert night_hours == {23: 7, 25: 9}[n]
    night_kwh = 2 + 3 + 6 * (night_hours - 4) + 9 + 9
    assert kpi["hours"] == n
    assert kpi["energy_kwh"] == approx(night_kwh + 16 * 6)
    assert kpi["energy_kwh"] == approx({23: 137, 25: 149}[n])
    assert kpi["energy_cost"] == approx(night_kwh * 0.1 + 16 * 6 * 0.3)
    assert kpi["out_of_hours_kwh"] == approx(kpi["energy_kwh"])  # a Sunday: no shift
    assert kpi["avg_kw"] == approx((night_kwh + 96) / n)
    # sorted 2, 3, 6, ...: percentile_cont(0.05) sits at 0.05 (n - 1) = 1.1 (23 h) or 1.2 (25 h)
    assert kpi["base_load_kw"] == approx(3 + (0.05 * (n - 1) - 1) * (6 - 3))
    assert kpi["base_load_kw"] == approx({23: 3.3, 25: 3.6}[n])
    assert kpi["co2e_kg"] == approx((night_kwh + 96) * 0.38)
    assert kpi["demand_charge"] is None  # this tariff has none (and a counter has no peak)


def test_rebuilding_a_day_replaces_its_rows(marts):
    land_tuesday(marts)
    query = "SELECT * FROM marts.fct_kpi_daily ORDER BY level, site_id, level_id, local_date"
    first = marts.execute(query).fetchall()
    hourly = marts.execute("SELECT count(*) FROM marts.fct_energy_hourly").fetchone()
    build_marts(marts, TUESDAY)
    assert marts.execute(query).fetchall() == first
    assert marts.execute("SELECT count(*) FROM marts.fct_energy_hourly").fetchone() == hourly
    assert hourly == (3 * 24,)


def test_the_fact_assets_materialize_a_day_with_tables_and_charts(marts, services):
    rows = hydraulic_unit(TUESDAY) + moulding_machine(TUESDAY)
    land_batch(marts, rows, source="test", messages=1)
    result = dg.materialize(
        [hourly_energy, hourly_drivers, fct_energy_hourly, fct_kpi_daily],
        partition_key=TUESDAY.isoformat(),
        resources={"warehouse": WarehouseResource(database_url=services.database_url)},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    hourly = result.asset_materializations_for_node("fct_energy_hourly")[0].metadata
    assert hourly["rows"].value == 2 * 24
    assert hourly["energy_kwh"].value == approx(356.5 + 410)
    periods = {r.data["period"]: r.data for r in hourly["tariff_periods"].value.records}
    assert sum(p["kWh"] for p in periods.values()) == approx(356.5 + 410)
    assert periods["peak"]["cost"] > 0
    profile = [r.data for r in hourly["load_profile"].value.records]
    assert [p["local hour"] for p in profile] == [f"{h:02d}:00" for h in range(24)]
    daily = result.asset_materializations_for_node("fct_kpi_daily")[0].metadata
    assert daily["rows"].value == 2 + 1 + 1  # two machines, line-1, the site
    assert [r.data["line"] for r in daily["lines"].value.records] == ["plant-a / line-1"]
    assert daily["line_count"].value == 1
    assert daily["energy_kwh"].value == approx(356.5 + 410)  # the site's day
    assert kpis(marts, "line", "line-1")["peak_15min_kw"] == approx(100.0)
