"""The landing path: readings exactly once, bad input kept in quarantine, every batch logged."""

import datetime as dt

import pytest

from enms_dagster.ingest.landing import QuarantinedInput, land_batch, load_registry_view
from enms_dagster.ingest.payload import Rejection

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 3, 10, 8, 0, tzinfo=dt.UTC)


def readings(n, machine="CMP-01", start=T0):
    return [(machine, "power_kw", start + dt.timedelta(seconds=i), float(i)) for i in range(n)]


def count(conn, table="raw.readings"):
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - fixed names


def test_landing_the_same_batch_twice_adds_nothing_the_second_time(warehouse):
    first = land_batch(warehouse, readings(100), source="test", messages=2)
    again = land_batch(warehouse, readings(100), source="test", messages=2)
    assert (first.inserted, again.inserted, again.duplicates) == (100, 0, 100)
    assert count(warehouse) == 100
    logged = warehouse.execute(
        "SELECT readings_received, readings_inserted FROM raw.ingest_batches ORDER BY batch_id"
    ).fetchall()
    assert logged == [(100, 100), (100, 0)]


def test_duplicates_inside_one_batch_count_once(warehouse):
    batch = readings(10) + readings(10) + readings(5)
    result = land_batch(warehouse, batch, source="test", messages=3)
    assert result.inserted == 10
    assert count(warehouse) == 10


def test_rejections_are_quarantined_with_raw_bytes_and_the_good_readings_land(warehouse):
    bad = QuarantinedInput("enms/plant-a/X/telemetry", b"\xff", Rejection("invalid_utf8", "x"))
    result = land_batch(warehouse, readings(3), [bad], source="test", messages=2)
    assert (result.inserted, result.quarantined) == (3, 1)
    row = warehouse.execute(
        "SELECT topic, payload, reason, batch_id FROM raw.quarantine"
    ).fetchone()
    assert row == ("enms/plant-a/X/telemetry", b"\xff", "invalid_utf8", result.batch_id)


def test_readings_spanning_days_create_their_partitions(warehouse):
    spread = [("CMP-01", "power_kw", T0 + dt.timedelta(days=d), 1.0) for d in range(3)]
    assert land_batch(warehouse, spread, source="test", messages=1).inserted == 3


def test_registry_view_knows_the_registered_machines_and_metrics(warehouse, small_plant):
    view = load_registry_view(warehouse)
    assert set(view.machine_sites) == set(small_plant.machines)
    assert {"power_kw", "energy_kwh_total", "state"} <= view.metrics


def test_concurrent_batches_on_a_new_day_both_land(services, warehouse):
    import threading

    from enms_dagster.db import connect

    day = T0 + dt.timedelta(days=40)  # a day no partition exists for yet
    errors, results = [], []

    def land(machine):
        try:
            with connect(services.database_url, autocommit=True) as conn:
                results.append(
                    land_batch(conn, readings(500, machine, day), source="t", messages=1)
                )
        except Exception as exc:  # noqa: BLE001 - the test reports whatever broke
            errors.append(exc)

    threads = [threading.Thread(target=land, args=(m,)) for m in ("CMP-01", "HYD-01", "CNV-01")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(r.inserted for r in results) == [500, 500, 500]
