"""Hostile telemetry through a real ingestor, Mosquitto and PostgreSQL: payloads that used to
kill the worker are quarantined with their reason while good messages keep landing; a message is
quarantined once however many samples it rejects; far-off timestamps get no partition; the
quarantine preview shows any bytes."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import psycopg
import pytest

from enms_dagster import cli
from enms_dagster.ingest.landing import ImplausibleTimeError, QuarantinedInput, land_batch
from enms_dagster.ingest.payload import PlausibleTime, Rejection
from enms_dagster.ingest.quarantine import PREVIEW_BYTES, pending_entries, redrive
from enms_dagster.ingest.service import Ingestor
from enms_dagster.simulator.publish import connect_publisher
from tests.test_payload import KILLERS

pytestmark = pytest.mark.integration

TOPIC = "enms/plant-a/HYD-01/telemetry"


def now_ts(seconds: int = 0) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30, seconds=-seconds)).isoformat()


def good(i: int) -> bytes:
    return json.dumps({"ts": now_ts(i), "metrics": {"power_kw": float(i)}}).encode()


def killer_payloads() -> dict[str, tuple[bytes, str]]:
    """The former killers with their timestamp moved to now (the window is relative to now)."""
    return {
        name: (payload.replace(b"2026-03-10T11:00:00+01:00", now_ts().encode()), reason)
        for name, (payload, reason) in KILLERS.items()
    }


def publish(url: str, messages: list[tuple[str, bytes]]) -> None:
    client, acks = connect_publisher(url, f"hostile-{uuid.uuid4().hex[:6]}")
    try:
        acks.wait([client.publish(t, p, qos=1) for t, p in messages], timeout_s=120)
    finally:
        client.disconnect()
        client.loop_stop()


def ingest(database_url: str, broker_url: str, messages: list[tuple[str, bytes]]) -> Ingestor:
    ingestor = Ingestor(
        database_url,
        broker_url,
        client_id=f"hostile-{uuid.uuid4().hex[:6]}",
        window=PlausibleTime(),  # the product's default, not the suite's widened one (conftest)
    )
    ingestor.start()
    try:
        publish(broker_url, messages)
        assert ingestor.wait_for_messages(len(messages), 90)
    finally:
        ingestor.stop()
    return ingestor


def partitions(conn: psycopg.Connection) -> int:
    return conn.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'raw.readings'::regclass"
    ).fetchone()[0]


def test_former_killers_are_quarantined_and_good_messages_after_them_land(db, broker):
    database_url, conn = db
    killers = killer_payloads()
    messages = []
    for n, (payload, _) in enumerate(killers.values()):
        messages += [(TOPIC, payload), (TOPIC, good(n))]
    ingestor = ingest(database_url, broker.url, messages)
    assert ingestor.stats.messages_committed == len(messages)
    (landed,) = conn.execute(
        "SELECT count(*) FROM raw.readings WHERE machine_id = 'HYD-01'"
    ).fetchone()
    assert landed == len(killers)
    rows = conn.execute("SELECT reason, payload FROM raw.quarantine").fetchall()
    assert sorted(bytes(p) for _, p in rows) == sorted(p for p, _ in killers.values())
    expected = {}
    for _, reason in killers.values():
        expected[reason] = expected.get(reason, 0) + 1
    got = {}
    for reason, _ in rows:
        got[reason] = got.get(reason, 0) + 1
    assert got == expected


def test_a_message_with_many_bad_samples_is_stored_once_and_redrives_without_duplicates(db, broker):
    database_url, conn = db
    samples = [{"ts": now_ts(i), "metrics": {"power_kw": 1.0}} for i in range(2)]
    samples += [{"ts": now_ts(i), "metrics": {"volts": 230.0}} for i in range(2, 2002)]
    payload = json.dumps(samples).encode()
    ingest(database_url, broker.url, [(TOPIC, payload)])
    rows = conn.execute("SELECT reason, detail, payload FROM raw.quarantine").fetchall()
    assert len(rows) == 1
    reason, detail, stored = rows[0]
    assert (reason, bytes(stored)) == ("unknown_metric", payload)
    assert detail.startswith("2000 of 2002 samples rejected (unknown_metric 2000)")
    assert len(detail) < 2000
    assert conn.execute("SELECT count(*) FROM raw.readings").fetchone()[0] == 2

    conn.execute("INSERT INTO core.metrics (metric, unit, kind) VALUES ('volts', 'V', 'gauge')")
    try:
        result = redrive(conn)
        assert (result.examined, result.landed, result.readings_inserted) == (1, 1, 2000)
        assert conn.execute("SELECT count(*) FROM raw.readings").fetchone()[0] == 2002
    finally:  # the database is shared with other modules, whose 'volts' is an unknown metric
        conn.execute("DELETE FROM core.metrics WHERE metric = 'volts'")


def test_a_tiny_message_with_a_far_off_timestamp_creates_no_partition(db, broker):
    database_url, conn = db
    conn.execute("UPDATE core.sites SET commissioned_on = '2000-01-01'")  # only the window bites
    ingest(database_url, broker.url, [(TOPIC, good(0))])  # today's partition exists now
    before = partitions(conn)
    far = [
        {"ts": "2028-11-01T00:00:00+00:00", "metrics": {"power_kw": 1.0}},
        {"ts": "2024-11-01T00:00:00+00:00", "metrics": {"power_kw": 1.0}},
    ]
    ingest(database_url, broker.url, [(TOPIC, json.dumps(s).encode()) for s in far])
    assert partitions(conn) == before
    reasons = sorted(r for (r,) in conn.execute("SELECT reason FROM raw.quarantine"))
    assert reasons == ["future_timestamp", "too_old"]


def test_a_batch_creates_partitions_only_for_days_it_holds(warehouse):
    before = partitions(warehouse)
    today = dt.datetime.now(dt.UTC).replace(microsecond=0)
    stray = today - dt.timedelta(days=700)
    rows = [("HYD-01", "power_kw", today, 1.0), ("HYD-01", "power_kw", stray, 1.0)]
    land_batch(warehouse, rows, source="test", messages=1)
    assert partitions(warehouse) - before <= 2  # the two days, not the 700 between


def test_quarantine_list_shows_any_bytes_as_one_printable_line(
    warehouse, services, monkeypatch, capsys
):
    cut = "€".encode() * 60  # 3-byte characters: the preview boundary falls inside one
    payloads = [b"\xff\xfe\xfd not utf-8", b'{"ts": "\x00"}', cut, b"line\nbreak\x1b[31m"]
    bad = [QuarantinedInput(TOPIC, p, Rejection("malformed_json", "x")) for p in payloads]
    land_batch(warehouse, [], bad, source="test", messages=len(bad))
    previews = [row[6] for row in pending_entries(warehouse)]
    assert previews[0] == "\\xff\\xfe\\xfd not utf-8"
    assert previews[1] == '{"ts": "\\x00"}'
    assert previews[2].startswith("€" * (PREVIEW_BYTES // 3))
    assert previews[2].endswith(f"… ({len(cut)} bytes)")
    assert previews[3] == "line\\nbreak\\x1b[31m"

    monkeypatch.setenv("ENMS_DATABASE_URL", services.database_url)
    monkeypatch.setenv("ENMS_MQTT_URL", services.mqtt_url)
    assert cli.main(["quarantine", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 * len(payloads)
    assert out[1] == "    \\xff\\xfe\\xfd not utf-8"


def test_land_batch_refuses_readings_outside_a_stated_window(warehouse):
    before = partitions(warehouse)
    now = dt.datetime.now(dt.UTC)
    rows = [("HYD-01", "power_kw", now - dt.timedelta(days=900), 1.0)]
    with pytest.raises(ImplausibleTimeError):
        land_batch(warehouse, rows, source="test", messages=1, window=PlausibleTime(), now=now)
    assert partitions(warehouse) == before
    assert warehouse.execute("SELECT count(*) FROM raw.ingest_batches").fetchone()[0] == 0
