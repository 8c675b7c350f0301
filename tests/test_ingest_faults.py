"""Nothing lost, nothing counted twice: the ingestor against a real Mosquitto of the test's own
(persistence on) and the real PostgreSQL, under crashes, restarts, outages and bad input.
Every test publishes a numbered sequence and checks that each number is in raw.readings once."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid

import psycopg
import pytest
from psycopg import sql

from enms_dagster.db import connect
from enms_dagster.ingest.quarantine import redrive, summarize
from enms_dagster.ingest.service import Ingestor
from enms_dagster.simulator.publish import connect_publisher

pytestmark = pytest.mark.integration

BASE = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)
TOPIC = "enms/plant-a/HYD-01/telemetry"


def reading(i: int) -> bytes:
    ts = (BASE + dt.timedelta(seconds=i)).isoformat()
    return json.dumps({"ts": ts, "metrics": {"power_kw": float(i)}}).encode()


class Publisher:
    """A QoS 1 publisher with a persistent session, so that what the broker has not
    acknowledged is sent again after a reconnect."""

    def __init__(self, url: str) -> None:
        self.client, self.acks = connect_publisher(
            url, f"test-pub-{uuid.uuid4().hex[:6]}", persistent_session=True
        )

    def publish(self, payloads: list[tuple[str, bytes]], pace_every: int = 0) -> None:
        infos = []
        for n, (topic, payload) in enumerate(payloads, 1):
            infos.append(self.client.publish(topic, payload, qos=1))
            if pace_every and n % pace_every == 0:
                time.sleep(0.05)
        self.acks.wait(infos, timeout_s=180)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def landed(conn: psycopg.Connection) -> tuple[int, int]:
    """(rows, distinct sequence numbers) of the test machine's power readings."""
    return conn.execute(
        "SELECT count(*), count(DISTINCT value) FROM raw.readings "
        "WHERE machine_id = 'HYD-01' AND metric = 'power_kw'"
    ).fetchone()


def wait_landed(conn, n: int, timeout_s: float = 120) -> tuple[int, int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = landed(conn)
        if got[0] >= n:
            time.sleep(0.5)  # anything extra would show up now
            return landed(conn)
        time.sleep(0.2)
    return landed(conn)


def start_ingestor(database_url: str, mqtt_url: str, client_id: str, **kw) -> Ingestor:
    ingestor = Ingestor(database_url, mqtt_url, client_id=client_id, **kw)
    ingestor.start()
    return ingestor


def ingest_process(database_url: str, mqtt_url: str, client_id: str) -> subprocess.Popen:
    env = {**os.environ, "ENMS_DATABASE_URL": database_url, "ENMS_MQTT_URL": mqtt_url}
    return subprocess.Popen(
        [sys.executable, "-m", "enms_dagster.cli", "ingest", "--client-id", client_id],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


N = 8000


def test_ingestor_killed_mid_stream_and_restarted_loses_nothing(db, broker):
    database_url, conn = db
    proc = ingest_process(database_url, broker.url, "ingest-kill")
    assert "ingesting" in proc.stdout.readline()  # subscribed before anything is published
    publisher = Publisher(broker.url)
    sender = threading.Thread(
        target=publisher.publish, args=([(TOPIC, reading(i)) for i in range(N)], 200)
    )
    sender.start()
    deadline = time.monotonic() + 60
    while landed(conn)[0] < N // 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    killed_at = landed(conn)[0]
    assert 0 < killed_at < N, "the kill must land mid-stream"
    proc = ingest_process(database_url, broker.url, "ingest-kill")
    try:
        sender.join(120)
        assert wait_landed(conn, N) == (N, N)
    finally:
        proc.terminate()
        proc.wait(20)
        publisher.close()


def test_broker_restarted_during_the_stream_loses_nothing(db, broker):
    database_url, conn = db
    ingestor = start_ingestor(database_url, broker.url, "ingest-broker-restart")
    publisher = Publisher(broker.url)
    try:
        publisher.publish([(TOPIC, reading(i)) for i in range(N // 2)])
        broker.stop()
        time.sleep(1)
        broker.start()
        publisher.publish([(TOPIC, reading(i)) for i in range(N // 2, N)])
        assert wait_landed(conn, N) == (N, N)
    finally:
        publisher.close()
        ingestor.stop()


def test_database_refusing_connections_for_20_s_loses_nothing(db, broker, local_services):
    database_url, conn = db
    name = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
    admin = psycopg.connect(
        psycopg.conninfo.make_conninfo(database_url, dbname="postgres"), autocommit=True
    )
    ingestor = start_ingestor(database_url, broker.url, "ingest-db-down")
    publisher = Publisher(broker.url)
    try:
        publisher.publish([(TOPIC, reading(i)) for i in range(N // 4)])
        admin.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name))
        )
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        outage = threading.Thread(
            target=publisher.publish, args=([(TOPIC, reading(i)) for i in range(N // 4, N)],)
        )
        outage.start()
        time.sleep(20)
        assert ingestor.stats.landing_errors > 0, "the outage was not noticed"
        assert ingestor._worker.is_alive()
        admin.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(name))
        )
        outage.join(60)
        with connect(database_url, autocommit=True) as fresh:
            assert wait_landed(fresh, N) == (N, N)
        assert ingestor._worker.is_alive()
    finally:
        admin.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(name))
        )
        admin.close()
        publisher.close()
        ingestor.stop()


def test_duplicate_and_out_of_order_deliveries_count_once(db, broker):
    database_url, conn = db
    ingestor = start_ingestor(database_url, broker.url, "ingest-dups")
    publisher = Publisher(broker.url)
    try:
        sequence = [i for i in range(N // 2) for _ in range(2)]
        random.Random(5).shuffle(sequence)
        publisher.publish([(TOPIC, reading(i)) for i in sequence])
        # and a batch message carrying readings already delivered one by one
        batch = [json.loads(reading(i)) for i in range(0, 600)]
        publisher.publish([(TOPIC, json.dumps(batch).encode())])
        assert ingestor.wait_for_messages(len(sequence) + 1, 60)
        assert landed(conn) == (N // 2, N // 2)
        assert ingestor.stats.readings_duplicate == N // 2 + 600
    finally:
        publisher.close()
        ingestor.stop()


BAD_INPUT = {
    "malformed_json": b'{"ts": "2026-03-10T00:00:00Z", "metrics": {',
    "invalid_utf8": b'{"ts": "2026-03-10T00:00:00Z", "metrics": {"power_kw": 1}}\xff',
    "non_finite_number": b'{"ts": "2026-03-10T00:00:00Z", "metrics": {"power_kw": NaN}}',
    "wrong_type": b'{"ts": "2026-03-10T00:00:00Z", "metrics": {"power_kw": "7"}}',
    "future_timestamp": b'{"ts": "2099-01-01T00:00:00Z", "metrics": {"power_kw": 1}}',
    "before_commissioning": b'{"ts": "2020-01-01T00:00:00Z", "metrics": {"power_kw": 1}}',
    "bad_timestamp": b'{"ts": "2026-03-10 00:00", "metrics": {"power_kw": 1}}',
    "unknown_metric": b'{"ts": "2026-03-10T00:00:00Z", "metrics": {"volts": 230}}',
    "oversized": b'{"pad": "' + b"x" * (300 * 1024) + b'"}',
}


def test_bad_input_is_quarantined_while_good_input_between_it_lands(db, broker):
    database_url, conn = db
    ingestor = start_ingestor(database_url, broker.url, "ingest-bad")
    publisher = Publisher(broker.url)
    newcomer = "enms/plant-a/NEW-01/telemetry"
    messages, good = [], 0
    for payload in BAD_INPUT.values():
        messages += [(TOPIC, reading(good)), (TOPIC, payload)]
        good += 1
    messages += [(newcomer, reading(i)) for i in range(5)]  # a machine not registered yet
    messages += [("enms/plant-b/HYD-01/telemetry", reading(99))]  # the wrong site
    messages += [(TOPIC, reading(good))]
    good += 1
    try:
        publisher.publish(messages)
        assert ingestor.wait_for_messages(len(messages), 60)
    finally:
        publisher.close()
        ingestor.stop()
    assert landed(conn) == (good, good)
    reasons = {reason: pending for _, reason, pending, _, _, _ in summarize(conn)}
    assert reasons == {**{r: 1 for r in BAD_INPUT}, "unknown_machine": 5, "topic_mismatch": 1}
    stored = conn.execute(
        "SELECT payload FROM raw.quarantine WHERE reason = 'invalid_utf8'"
    ).fetchone()[0]
    assert bytes(stored) == BAD_INPUT["invalid_utf8"]  # raw bytes kept for re-drive

    conn.execute(
        "INSERT INTO core.machines (machine_id, site_id, name, machine_type) "
        "VALUES ('NEW-01', 'plant-a', 'Newly registered pump', 'hydraulic_pump')"
    )
    result = redrive(conn, reason="unknown_machine")
    assert (result.landed, result.still_rejected, result.readings_inserted) == (5, 0, 5)
    (moved,) = conn.execute(
        "SELECT count(*) FROM raw.readings WHERE machine_id = 'NEW-01'"
    ).fetchone()
    assert moved == 5
    assert redrive(conn).landed == 0  # the rest is still bad: nothing else moves


def test_ingestor_reports_its_health(db, broker):
    database_url, conn = db
    ingestor = start_ingestor(database_url, broker.url, "ingest-health")
    publisher = Publisher(broker.url)
    try:
        publisher.publish([(TOPIC, reading(i)) for i in range(100)])
        assert ingestor.wait_for_messages(100, 30)
        time.sleep(6)  # one heartbeat interval
        row = conn.execute(
            "SELECT messages_committed, now() - last_heartbeat < interval '10 seconds' "
            "FROM raw.ingestor_status WHERE client_id = 'ingest-health'"
        ).fetchone()
        assert row == (100, True)
    finally:
        publisher.close()
        ingestor.stop()
