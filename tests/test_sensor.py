"""The MQTT sensor: landed batches become raw_readings events per day and runs of those days."""

import datetime as dt
import re

import dagster as dg
import pytest

from enms_dagster.definitions import defs as load_definitions
from enms_dagster.ingest.landing import QuarantinedInput, land_batch
from enms_dagster.ingest.payload import Rejection
from enms_dagster.resources import WarehouseResource

raw_readings_sensor = load_definitions().get_sensor_def("raw_readings_sensor")

pytestmark = pytest.mark.integration

BERLIN_MIDNIGHT_MAR_10 = dt.datetime(2026, 3, 9, 23, 0, tzinfo=dt.UTC)


def evaluate(services, cursor=None, instance=None):
    resources = {"warehouse": WarehouseResource(database_url=services.database_url)}
    with dg.build_sensor_context(
        cursor=cursor, resources=resources, instance=instance or dg.DagsterInstance.ephemeral()
    ) as context:
        return raw_readings_sensor(context)


def power(machine, start, minutes):
    return [(machine, "power_kw", start + dt.timedelta(minutes=m), 5.0) for m in range(minutes)]


def test_each_touched_local_day_is_reported_once_with_its_counts_and_run(services, warehouse):
    # 23:30 on the 9th .. 00:29 on the 10th, Berlin time: two local days in one batch
    start = BERLIN_MIDNIGHT_MAR_10 - dt.timedelta(minutes=30)
    bad = QuarantinedInput("t", b"x", Rejection("malformed_json", "x"))
    land_batch(warehouse, power("HYD-01", start, 60), [bad], source="test", messages=61)
    result = evaluate(services)
    events = {e.partition: e for e in result.asset_events if isinstance(e, dg.AssetMaterialization)}
    assert sorted(events) == ["2026-03-09", "2026-03-10"]
    late = events["2026-03-09"].metadata
    # timestamps, not text in whatever offset each one had: the UI shows both in one zone
    assert isinstance(late["min_ts"], dg.TimestampMetadataValue)
    assert late["min_ts"].value == start.timestamp()
    assert late["max_ts"].value == BERLIN_MIDNIGHT_MAR_10.timestamp()
    assert late["quarantined"].value == 1 and late["machines"].value == 1
    assert late["seconds_since_commit"].value >= 0
    assert sorted(r.partition_key for r in result.run_requests) == ["2026-03-09", "2026-03-10"]


def test_days_before_the_first_partition_are_left_out_until_the_partitions_reach_them(
    services, warehouse
):
    from enms_dagster.partitions import daily_partitions
    from enms_dagster.sensors.raw_readings import build_raw_readings_sensor

    start = BERLIN_MIDNIGHT_MAR_10 - dt.timedelta(minutes=30)
    land_batch(warehouse, power("HYD-01", start, 60), source="test", messages=1)
    sensor = build_raw_readings_sensor(daily_partitions("Europe/Berlin", dt.date(2026, 3, 10)))
    resources = {"warehouse": WarehouseResource(database_url=services.database_url)}
    with dg.build_sensor_context(
        resources=resources, instance=dg.DagsterInstance.ephemeral()
    ) as context:
        result = sensor(context)
    events = [e.partition for e in result.asset_events if isinstance(e, dg.AssetMaterialization)]
    assert events == ["2026-03-10"]
    assert [r.partition_key for r in result.run_requests] == ["2026-03-10"]


def test_late_data_requests_only_the_past_day_it_belongs_to(services, warehouse):
    land_batch(warehouse, power("HYD-01", BERLIN_MIDNIGHT_MAR_10, 10), source="test", messages=1)
    first = evaluate(services)
    assert [r.partition_key for r in first.run_requests] == ["2026-03-10"]
    assert isinstance(evaluate(services, first.cursor), dg.SkipReason)

    a_week_ago = BERLIN_MIDNIGHT_MAR_10 - dt.timedelta(days=7) + dt.timedelta(hours=12)
    land_batch(warehouse, power("HYD-01", a_week_ago, 10), source="test", messages=1)
    late = evaluate(services, first.cursor)
    assert [r.partition_key for r in late.run_requests] == ["2026-03-03"]
    assert late.run_requests[0].run_key != first.run_requests[0].run_key


def test_a_batch_of_only_duplicates_reports_the_day_but_requests_no_run(services, warehouse):
    rows = power("HYD-01", BERLIN_MIDNIGHT_MAR_10, 10)
    land_batch(warehouse, rows, source="test", messages=1)
    first = evaluate(services)
    land_batch(warehouse, rows, source="test", messages=1)
    again = evaluate(services, first.cursor)
    materializations = [e for e in again.asset_events if isinstance(e, dg.AssetMaterialization)]
    assert [m.metadata["readings_duplicate"].value for m in materializations] == [10]
    assert again.run_requests == []


def test_without_a_cursor_the_sensor_resumes_after_what_the_instance_already_reports(
    services, warehouse
):
    """The demo evaluates the sensor in-process and reports its events into the instance that
    `enms ui` opens; the daemon's first tick (no cursor yet) must not request those days again."""
    land_batch(warehouse, power("HYD-01", BERLIN_MIDNIGHT_MAR_10, 10), source="test", messages=1)
    instance = dg.DagsterInstance.ephemeral()
    demo = evaluate(services, instance=instance)
    for event in demo.asset_events:
        if isinstance(event, dg.AssetMaterialization):
            instance.report_runless_asset_event(event)
    next_day = BERLIN_MIDNIGHT_MAR_10 + dt.timedelta(days=1, hours=8)
    land_batch(warehouse, power("HYD-01", next_day, 10), source="test", messages=1)

    first_tick = evaluate(services, cursor=None, instance=instance)
    assert [r.partition_key for r in first_tick.run_requests] == ["2026-03-11"]
    # an instance without that history starts at the beginning of the batch log
    fresh = evaluate(services, cursor=None)
    assert [r.partition_key for r in fresh.run_requests] == ["2026-03-10", "2026-03-11"]


def test_a_silent_ingestor_fails_the_health_check(services, warehouse):
    warehouse.execute(
        "INSERT INTO raw.ingestor_status (client_id, started_at, last_heartbeat) "
        "VALUES ('enms-ingestor', now() - interval '1 day', now() - interval '10 minutes') "
        "ON CONFLICT (client_id) DO UPDATE SET last_heartbeat = EXCLUDED.last_heartbeat"
    )
    try:
        result = evaluate(services)
        checks = [e for e in result.asset_events if isinstance(e, dg.AssetCheckEvaluation)]
        assert [(c.check_name, c.passed) for c in checks] == [("ingestor_alive", False)]
        # ten minutes, plus however long the evaluation took on a busy machine
        age = re.search(
            r"enms-ingestor DOWN, running, last beat (\d+) s ago", checks[0].description
        )
        assert age and 600 <= int(age[1]) < 660, checks[0].description
    finally:
        warehouse.execute("DELETE FROM raw.ingestor_status")


def test_a_fleet_member_that_crashed_is_named_while_the_survivor_keeps_the_check_green(
    services, warehouse
):
    warehouse.execute(
        "INSERT INTO raw.ingestor_status (client_id, started_at, last_heartbeat, state, "
        "last_error) VALUES "
        "('ingestor-a', now(), now(), 'running', NULL), "
        "('ingestor-b', now(), now() - interval '3 minutes', 'crashed', "
        "E'RaiseException: boom |\\n at line 2'), "
        "('ingestor-c', now(), now() - interval '5 minutes', 'stopped', NULL), "
        "('retired', now(), now() - interval '3 days', 'running', NULL)"
    )
    try:
        result = evaluate(services)
        (check,) = [e for e in result.asset_events if isinstance(e, dg.AssetCheckEvaluation)]
        assert check.passed
        assert check.metadata["ingestors_down"].value == 1
        assert "ingestor-b DOWN, crashed" in check.description
        assert "RaiseException: boom" in check.description
        assert "ingestor-c stopped" in check.description  # a clean stop is not a failure
        # one row per ingestor, the error's pipe and newline kept out of the cell
        table = [r.data for r in check.metadata["status"].value.records]
        assert [r["ingestor"] for r in table] == [
            "ingestor-a",
            "ingestor-b",
            "ingestor-c",
            "retired",
        ]
        assert isinstance(evaluate(services, result.cursor), dg.SkipReason)  # nothing changed
        warehouse.execute(
            "UPDATE raw.ingestor_status SET state = 'running', last_heartbeat = "
            "now() WHERE client_id = 'ingestor-b'"
        )
        back = evaluate(services, result.cursor)
        (check,) = [e for e in back.asset_events if isinstance(e, dg.AssetCheckEvaluation)]
        assert check.metadata["ingestors_down"].value == 0  # reported when the set changes
    finally:
        warehouse.execute("DELETE FROM raw.ingestor_status")


def test_a_batch_that_commits_after_a_later_one_is_not_skipped(services, warehouse):
    from enms_dagster.db import connect

    with connect(services.database_url) as slow:
        slow.execute("SELECT 1")  # opens the transaction that keeps the slow batch uncommitted
        land_batch(slow, power("HYD-01", BERLIN_MIDNIGHT_MAR_10, 5), source="slow", messages=1)
        land_batch(warehouse, power("CNV-01", BERLIN_MIDNIGHT_MAR_10, 5), source="fast", messages=1)
        first = evaluate(services)
        machines = [
            e.metadata["machines"].value
            for e in first.asset_events
            if isinstance(e, dg.AssetMaterialization)
        ]
        assert machines == [1]  # only the fast batch is visible yet
        slow.commit()
    second = evaluate(services, first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["2026-03-10"]
    assert [
        e.metadata["batches"].value
        for e in second.asset_events
        if isinstance(e, dg.AssetMaterialization)
    ] == [1]
