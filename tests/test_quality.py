"""Great Expectations checks as Dagster asset checks: they fail when they should, say where,
and a failing blocking check keeps the marts from being built."""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from enms_dagster.definitions import defs as load_definitions
from enms_dagster.ingest.landing import land_batch
from enms_dagster.resources import PlantResource, WarehouseResource
from tests.conftest import SMALL_PLANT

defs = load_definitions()

pytestmark = pytest.mark.integration

BERLIN = ZoneInfo("Europe/Berlin")
DAY = dt.date(2026, 3, 10)
T10 = dt.datetime(2026, 3, 10, 10, tzinfo=dt.UTC)


def run_energy_job(services, partition_key: str) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("energy_job").execute_in_process(
        partition_key=partition_key,
        resources={
            "warehouse": WarehouseResource(database_url=services.database_url),
            "plant": PlantResource(plant_file=str(SMALL_PLANT)),
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {
        e.asset_key.to_user_string()
        for e in result.get_asset_materialization_events()
        if e.asset_key is not None
    }


def test_a_negative_energy_hour_fails_the_blocking_check_and_kpi_daily_does_not_run(
    warehouse, services
):
    # a meter that reports a negative interval (exported energy) makes a negative hour
    rows = [("MTR-01", "energy_kwh_interval", T10 + dt.timedelta(minutes=m), 2.0) for m in (15, 30)]
    rows.append(("MTR-01", "energy_kwh_interval", T10 + dt.timedelta(minutes=45), -9.0))
    land_batch(warehouse, rows, source="test", messages=1)
    result = run_energy_job(services, DAY.isoformat())
    checks = evaluations(result)
    negative = checks["hourly_energy_not_negative"]
    assert not negative.passed
    assert negative.metadata["failed_rows"].value == 1
    examples = negative.metadata["examples"].value.records
    assert any("MTR-01" in example.data.values() for example in examples)
    assert negative.metadata["failed_days"].value == [DAY.isoformat()]
    assert "hourly_energy" in materialized(result)
    assert "kpi_daily" not in materialized(result)
    (mart_rows,) = warehouse.execute("SELECT count(*) FROM marts.kpi_daily").fetchone()
    assert mart_rows == 0
    # the raw reading itself is outside the metric's physical range (min 0)
    assert not checks["raw_readings_in_physical_range"].passed
    assert checks["raw_readings_in_physical_range"].metadata["failed_rows"].value == 1


def test_a_clean_day_passes_every_check_and_builds_the_mart(warehouse, services):
    rows = [("HYD-01", "power_kw", T10 + dt.timedelta(seconds=30 * i), 6.0) for i in range(121)]
    rows += [("HYD-01", "state", T10 + dt.timedelta(seconds=30 * i), 2.0) for i in range(121)]
    land_batch(warehouse, rows, source="test", messages=1)
    result = run_energy_job(services, DAY.isoformat())
    assert result.success
    checks = evaluations(result)
    assert checks["hourly_energy_not_negative"].passed
    assert checks["raw_readings_not_in_future"].passed
    assert {"hourly_energy", "hourly_drivers", "kpi_daily"} <= materialized(result)
    # the first hour has 1 sample of 120, so the completeness warning names it
    complete = checks["hourly_energy_complete"]
    assert not complete.passed and complete.severity == dg.AssetCheckSeverity.WARN


def test_a_reading_stamped_in_the_future_fails_the_raw_check(warehouse, services):
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    land_batch(
        warehouse,
        [("HYD-01", "power_kw", now + dt.timedelta(hours=3), 5.0)],
        source="test",
        messages=1,
    )
    today = now.astimezone(BERLIN).date().isoformat()
    checks = evaluations(run_energy_job(services, today))
    future = checks["raw_readings_not_in_future"]
    assert not future.passed
    assert future.metadata["failed_rows"].value == 1
    examples = future.metadata["examples"].value.records
    assert any("HYD-01" in example.data.values() for example in examples)


def test_a_counter_that_disagrees_with_its_power_fails_the_agreement_check(warehouse, services):
    rows = []
    for i in range(121):
        ts = T10 + dt.timedelta(seconds=30 * i)
        rows += [
            ("HYD-01", "power_kw", ts, 6.0),
            ("HYD-01", "energy_kwh_total", ts, 100.0 + 0.1 * i),
        ]
    land_batch(warehouse, rows, source="test", messages=1)  # counter 12 kWh/h, power 6 kWh/h
    checks = evaluations(run_energy_job(services, DAY.isoformat()))
    agreement = checks["hourly_energy_counter_matches_power"]
    assert not agreement.passed
    assert agreement.metadata["failed_rows"].value == 1


def test_a_range_of_days_is_computed_and_checked_in_one_run(warehouse, services):
    warehouse.execute("TRUNCATE core.check_results, core.partition_runs")
    rows = [
        ("HYD-01", "power_kw", T10 + dt.timedelta(days=d, seconds=30 * i), 6.0)
        for d in range(3)
        for i in range(121)
    ]
    land_batch(warehouse, rows, source="test", messages=1)
    result = defs.resolve_job_def("energy_job").execute_in_process(
        resources={
            "warehouse": WarehouseResource(database_url=services.database_url),
            "plant": PlantResource(plant_file=str(SMALL_PLANT)),
        },
        instance=dg.DagsterInstance.ephemeral(),
        tags={
            "dagster/asset_partition_range_start": "2026-03-10",
            "dagster/asset_partition_range_end": "2026-03-12",
        },
    )
    assert result.success
    days = warehouse.execute(
        "SELECT local_date, count(*) FROM core.hourly_energy GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert [d for d, _ in days] == [
        dt.date(2026, 3, 10),
        dt.date(2026, 3, 11),
        dt.date(2026, 3, 12),
    ]
    checked = warehouse.execute(
        "SELECT local_date FROM core.check_results WHERE check_name = 'hourly_energy_not_negative' "
        "AND passed ORDER BY 1"
    ).fetchall()
    assert [d for (d,) in checked] == [d for d, _ in days]
