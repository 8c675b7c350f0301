"""Raw retention drops whole UTC days only where every local day they feed is materialized and
checked, and records what it dropped."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from enms_dagster.assets.hourly import RETENTION_REQUIRES
from enms_dagster.hourly.quality import CheckOutcome, record_check_outcome
from enms_dagster.hourly.retention import drop_raw_days, plan_raw_retention
from enms_dagster.hourly.transforms import rebuild_hourly_energy
from enms_dagster.ingest.landing import land_batch

pytestmark = pytest.mark.integration

BERLIN = ZoneInfo("Europe/Berlin")
DAYS = [dt.date(2025, 6, d) for d in (1, 2, 3, 4)]


def materialize_and_check(conn, day: dt.date, passed: bool = True) -> None:
    start = dt.datetime.combine(day, dt.time(), BERLIN)
    rebuild_hourly_energy(conn, start, start + dt.timedelta(days=1))
    for asset, checks in RETENTION_REQUIRES.items():
        for check in checks:
            outcome = CheckOutcome(
                passed, 1, 0 if passed else 1, failed_dates=frozenset() if passed else {day}
            )
            record_check_outcome(conn, asset, check, [day], outcome)


def test_only_old_days_computed_and_checked_are_dropped_and_the_drop_is_logged(warehouse):
    warehouse.execute("TRUNCATE core.partition_runs, core.check_results, raw.retention_log")
    rows = [
        ("HYD-01", "power_kw", dt.datetime.combine(d, dt.time(h), dt.UTC), 5.0)
        for d in DAYS
        for h in range(0, 24, 3)
    ]
    land_batch(warehouse, rows, source="test", messages=1)
    materialize_and_check(warehouse, DAYS[0])
    materialize_and_check(warehouse, DAYS[1])
    materialize_and_check(warehouse, DAYS[2], passed=False)
    # UTC day 06-01 feeds local days 06-01 and 06-02 (its last two hours are 06-02 in Berlin)
    plan = {
        d.utc_day: d
        for d in plan_raw_retention(warehouse, 30, dt.date(2026, 1, 1), RETENTION_REQUIRES)
        if d.utc_day in DAYS
    }
    assert {d for d, p in plan.items() if p.droppable} == {DAYS[0]}
    assert "hourly_energy_not_negative not passed" in plan[DAYS[1]].reason  # 06-03 failed
    assert "hourly_energy not materialized" in plan[DAYS[3]].reason
    # nothing is dropped while the day is younger than the retention age
    young = plan_raw_retention(warehouse, 400, dt.date(2026, 1, 1), RETENTION_REQUIRES)
    assert not [d for d in young if d.utc_day in DAYS]

    dropped = drop_raw_days(warehouse, list(plan.values()), 30)
    assert dropped == 8
    remaining = warehouse.execute(
        "SELECT (ts AT TIME ZONE 'UTC')::date, count(*) FROM raw.readings GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert [d for d, _ in remaining if d in DAYS] == DAYS[1:]
    assert warehouse.execute("SELECT to_regclass('raw.readings_20250601')").fetchone() == (None,)
    log = warehouse.execute(
        "SELECT partition_name, utc_day, rows, max_age_days FROM raw.retention_log"
    ).fetchall()
    assert log == [("readings_20250601", DAYS[0], 8, 30)]
    # hourly energy of the dropped day stays
    (hours,) = warehouse.execute(
        "SELECT count(*) FROM core.hourly_energy WHERE local_date = %s", (DAYS[0],)
    ).fetchone()
    assert hours > 0


def test_rebuilding_a_day_forgets_its_check_results_so_retention_waits_for_new_ones(warehouse):
    warehouse.execute("TRUNCATE core.partition_runs, core.check_results")
    land_batch(
        warehouse,
        [("HYD-01", "power_kw", dt.datetime(2025, 7, 1, h, tzinfo=dt.UTC), 5.0) for h in range(24)],
        source="test",
        messages=1,
    )
    materialize_and_check(warehouse, dt.date(2025, 7, 1))
    start = dt.datetime(2025, 7, 1, tzinfo=BERLIN)
    rebuild_hourly_energy(warehouse, start, start + dt.timedelta(days=1))
    (results,) = warehouse.execute(
        "SELECT count(*) FROM core.check_results WHERE local_date = '2025-07-01'"
    ).fetchone()
    assert results == 0
