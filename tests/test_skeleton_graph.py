"""End to end on real servers: simulated machines → MQTT → ingestor → raw.readings → the asset
graph → marts.kpi_daily, and the kWh there agree with what the simulator itself counted."""

import datetime as dt

import dagster as dg
import pytest

from enms_dagster.db import connect
from enms_dagster.definitions import defs as load_definitions
from enms_dagster.resources import PlantResource, WarehouseResource
from tests.conftest import SMALL_PLANT, land_simulated, reset_warehouse

defs = load_definitions()
raw_readings_sensor = defs.get_sensor_def("raw_readings_sensor")

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 3, 10)  # a Tuesday: production shifts and nights


def resources(services):
    return {
        "warehouse": WarehouseResource(database_url=services.database_url),
        "plant": PlantResource(plant_file=str(SMALL_PLANT)),
    }


@pytest.fixture(scope="module")
def landed_day(services, small_plant):
    """One local day of the small plant landed through the broker (once per backend)."""
    with connect(services.database_url, autocommit=True) as conn:
        reset_warehouse(conn, small_plant)
        zone = small_plant.sites["plant-a"].zone
        start = dt.datetime.combine(DAY, dt.time(), zone)
        result, stats = land_simulated(services, small_plant, start, start + dt.timedelta(days=1))
        yield conn, result, stats


def test_every_published_reading_lands_exactly_once(landed_day):
    warehouse, result, stats = landed_day
    (rows,) = warehouse.execute("SELECT count(*) FROM raw.readings").fetchone()
    assert rows == result.readings == stats.readings_inserted
    assert stats.quarantined == 0


def test_materialized_kwh_match_the_simulators_energy_within_one_percent(landed_day, services):
    warehouse, result, _ = landed_day
    job = defs.resolve_job_def("energy_job")
    outcome = job.execute_in_process(
        partition_key=DAY.isoformat(),
        resources=resources(services),
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert outcome.success
    mart = dict(
        warehouse.execute(
            "SELECT machine_id, energy_kwh FROM marts.kpi_daily WHERE local_date = %s", (DAY,)
        ).fetchall()
    )
    truth = result.truth.energy_kwh
    assert set(mart) == set(truth) and len(truth) == 5
    for machine, simulated in truth.items():
        assert mart[machine] == pytest.approx(simulated, rel=0.01), machine
    hours = warehouse.execute(
        "SELECT count(*) FROM core.hourly_energy WHERE machine_id = 'CMP-01' AND local_date = %s",
        (DAY,),
    ).fetchone()[0]
    assert hours == 24


def test_sensor_reports_the_landed_day_and_requests_its_run_then_nothing(landed_day, services):
    with dg.build_sensor_context(cursor="0", resources=resources(services)) as context:
        result = raw_readings_sensor(context)
    assert isinstance(result, dg.SensorResult)
    # a local day's samples run from 00:00 to 23:59:59 local time: that day, nothing else
    materializations = [e for e in result.asset_events if isinstance(e, dg.AssetMaterialization)]
    assert [e.partition for e in materializations] == [DAY.isoformat()]
    event = materializations[0]
    assert event.metadata["readings_inserted"].value == landed_day[1].readings
    assert [r.partition_key for r in result.run_requests] == [DAY.isoformat()]
    assert result.run_requests[0].job_name in (None, "energy_job")

    with dg.build_sensor_context(cursor=result.cursor, resources=resources(services)) as context:
        again = raw_readings_sensor(context)
    assert isinstance(again, dg.SkipReason)


def test_the_partition_window_is_the_local_day():
    window = defs.get_assets_def("hourly_energy").partitions_def.time_window_for_partition_key(
        DAY.isoformat()
    )
    assert window.start.utcoffset() == dt.timedelta(hours=1)
    assert (window.end - window.start) == dt.timedelta(days=1)
