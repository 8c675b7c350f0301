"""End-to-end MQTT ingestion throughput, as a ratio to two references measured in the same run.

    .venv/bin/python benchmarks/bench_ingest.py [--hours 2] [--per-message 60]

Starts a Mosquitto of its own (the project's queue settings, persistence on) and a fresh
database on the local PostgreSQL (ENMS_BENCH_PG_DSN, default postgres@127.0.0.1:5432), then
pushes the same simulated reference-plant telemetry three ways:
  e2e     publish (QoS 1) -> Mosquitto -> ingestor -> committed in raw.readings
  broker  publish (QoS 1) -> Mosquitto -> a bare paho subscriber that does nothing
  copy    the same rows, already parsed, by one binary COPY into raw.readings
and prints readings per second for each and e2e / min(broker, copy) (target >= 0.5).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from enms_dagster.db import migrate  # noqa: E402
from enms_dagster.ingest.landing import load_registry_view  # noqa: E402
from enms_dagster.ingest.payload import parse_message  # noqa: E402
from enms_dagster.ingest.service import Ingestor  # noqa: E402
from enms_dagster.plant import load_plant  # noqa: E402
from enms_dagster.plant.store import save_plant  # noqa: E402
from enms_dagster.settings import DEFAULT_PLANT_FILE  # noqa: E402
from enms_dagster.simulator import simulate, to_payloads  # noqa: E402
from enms_dagster.simulator.publish import connect_publisher  # noqa: E402
from tests.brokers import Mosquitto  # noqa: E402

ADMIN_DSN = os.environ.get("ENMS_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def publish_all(url: str, messages: list[tuple[str, bytes]]) -> None:
    client, acks = connect_publisher(url, f"bench-pub-{uuid.uuid4().hex[:6]}")
    try:
        for start in range(0, len(messages), 2000):
            acks.wait([client.publish(t, p, qos=1) for t, p in messages[start : start + 2000]])
    finally:
        client.disconnect()
        client.loop_stop()


def time_broker(url: str, messages: list[tuple[str, bytes]]) -> float:
    done = threading.Event()
    got = [0]

    def on_message(client, userdata, msg):
        got[0] += 1
        if got[0] == len(messages):
            done.set()

    sub = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=mqtt.MQTTv311
    )
    sub.on_message = on_message
    host, port = url.removeprefix("mqtt://").split(":")
    sub.connect(host, int(port))
    sub.subscribe("enms/+/+/telemetry", qos=1)
    sub.loop_start()
    time.sleep(0.5)
    began = time.perf_counter()
    publish_all(url, messages)
    assert done.wait(600), f"bare subscriber got {got[0]} of {len(messages)}"
    elapsed = time.perf_counter() - began
    sub.disconnect()
    sub.loop_stop()
    return elapsed


def time_e2e(database_url: str, url: str, messages: list[tuple[str, bytes]]) -> float:
    ingestor = Ingestor(database_url, url, client_id=f"bench-ingest-{uuid.uuid4().hex[:6]}")
    ingestor.start()
    try:
        began = time.perf_counter()
        publish_all(url, messages)
        assert ingestor.wait_for_messages(len(messages), 600), ingestor.stats
        return time.perf_counter() - began
    finally:
        ingestor.stop()


def time_copy(database_url: str, rows: list[tuple]) -> float:
    with psycopg.connect(database_url) as conn:
        conn.execute("TRUNCATE raw.readings")
        lo, hi = min(r[2] for r in rows), max(r[2] for r in rows)
        conn.execute("SELECT raw.ensure_reading_partitions(%s, %s)", (lo, hi))
        conn.commit()
        began = time.perf_counter()
        with conn.cursor().copy(
            "COPY raw.readings (machine_id, metric, ts, value, batch_id) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["text", "text", "timestamptz", "float8", "int8"])
            for row in rows:
                copy.write_row((*row, 0))
        conn.commit()
        return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=float, default=2.0, help="simulated hours of the plant")
    parser.add_argument("--per-message", type=int, default=60, help="samples per MQTT message")
    args = parser.parse_args()

    plant = load_plant(DEFAULT_PLANT_FILE)
    start = dt.datetime(2026, 3, 10, 6, tzinfo=dt.UTC)
    end = start + dt.timedelta(hours=args.hours)
    messages = [
        (series.topic, payload)
        for series in simulate(plant, start, end, seed=1)
        for payload in to_payloads(series, args.per_message)
    ]

    name = f"enms_bench_ingest_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    database_url = psycopg.conninfo.make_conninfo(ADMIN_DSN, dbname=name)
    broker = Mosquitto(Path(tempfile.mkdtemp(prefix="enms-bench-")))
    broker.start()
    try:
        migrate(database_url)
        with psycopg.connect(database_url, autocommit=True) as conn:
            save_plant(conn, plant)
            registry = load_registry_view(conn)
        now = end + dt.timedelta(days=1)
        rows = [r for t, p in messages for r in parse_message(t, p, registry, now).readings]

        broker_s = time_broker(broker.url, messages)
        e2e_s = time_e2e(database_url, broker.url, messages)
        with psycopg.connect(database_url) as conn:
            (landed,) = conn.execute("SELECT count(*) FROM raw.readings").fetchone()
        assert landed == len(rows), (landed, len(rows))
        copy_s = time_copy(database_url, rows)
    finally:
        broker.stop()
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    n = len(rows)
    rates = {"e2e": n / e2e_s, "broker": n / broker_s, "copy": n / copy_s}
    print(f"{len(messages):,} messages, {n:,} readings ({args.per_message} samples/message)")
    for label, seconds in (("e2e", e2e_s), ("broker", broker_s), ("copy", copy_s)):
        print(f"{label:<7} {seconds:8.2f} s  {rates[label]:>12,.0f} readings/s")
    slower = min(rates["broker"], rates["copy"])
    ratio = rates["e2e"] / slower
    verdict = "PASS" if ratio >= 0.5 else "FAIL"
    print(f"e2e / min(broker, copy) = {ratio:.2f}  (target >= 0.5) {verdict}")


if __name__ == "__main__":
    main()
