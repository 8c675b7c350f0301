"""Issue 14, finding 8: a fresh warehouse knows its plant after `enms db migrate` (and `enms
ingest` at start), so the first telemetry lands instead of being quarantined as unknown_machine;
and that registration only adds, so a plant registered from another file keeps its settings."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from enms_dagster.db import connect, migrate
from enms_dagster.plant import load_plant
from enms_dagster.plant.store import add_missing_plant, save_plant
from enms_dagster.settings import DEFAULT_PLANT_FILE
from enms_dagster.simulator.publish import connect_publisher
from tests.conftest import SMALL_PLANT, _conninfo_to_url, scratch_database

pytestmark = pytest.mark.integration


def enms_env(database_url: str, mqtt_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "ENMS_DATABASE_URL": database_url,
        "ENMS_MQTT_URL": mqtt_url,
        "ENMS_PLANT_FILE": str(SMALL_PLANT),
    }


def enms(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "enms_dagster.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def machines(database_url: str) -> set[str]:
    with connect(database_url) as conn:
        return {m for (m,) in conn.execute("SELECT machine_id FROM core.machines")}


def land_one_reading(database_url: str, env: dict[str, str], mqtt_url: str) -> tuple[int, int]:
    """Run the real `enms ingest`, publish one reading of HYD-01; return (readings, quarantined)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "enms_dagster.cli", "ingest", "--client-id", "ingest-plant"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for line in proc.stdout:  # subscribed before anything is published
            if line.startswith("ingesting"):
                break
        client, acks = connect_publisher(mqtt_url, f"pub-{uuid.uuid4().hex[:6]}")
        ts = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
        payload = json.dumps({"ts": ts.isoformat(), "metrics": {"power_kw": 12.5}})
        acks.wait([client.publish("enms/plant-a/HYD-01/telemetry", payload, qos=1)], 30)
        client.disconnect()
        client.loop_stop()
        deadline = time.monotonic() + 60
        with connect(database_url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                counts = conn.execute(
                    "SELECT (SELECT count(*) FROM raw.readings WHERE machine_id = 'HYD-01'), "
                    "(SELECT count(*) FROM raw.quarantine)"
                ).fetchone()
                if sum(counts):
                    return counts
                time.sleep(0.2)
        return counts
    finally:
        proc.terminate()
        proc.wait(30)


def test_enms_db_migrate_registers_the_plant_so_the_first_reading_lands(broker):
    with scratch_database() as dsn:
        url = _conninfo_to_url(dsn)
        env = enms_env(url, broker.url)
        done = enms("db", "migrate", env=env)
        assert done.returncode == 0, done.stderr
        assert "added" in done.stdout and "machines" in done.stdout
        assert machines(url) == set(load_plant(SMALL_PLANT).machines)
        assert land_one_reading(url, env, broker.url) == (1, 0)


def test_enms_ingest_registers_the_plant_before_it_subscribes(broker):
    with scratch_database() as dsn:
        url = _conninfo_to_url(dsn)
        migrate(url)  # the schema only, as an older `enms db migrate` left it
        assert machines(url) == set()
        assert land_one_reading(url, enms_env(url, broker.url), broker.url) == (1, 0)


def test_registering_adds_what_is_missing_and_changes_nothing_registered():
    small, reference = load_plant(SMALL_PLANT), load_plant(DEFAULT_PLANT_FILE)
    with scratch_database() as dsn:
        url = _conninfo_to_url(dsn)
        migrate(url)
        with connect(url, autocommit=True) as conn:
            save_plant(conn, small)
            conn.execute(
                "UPDATE core.machine_types SET sample_interval_s = 60 WHERE machine_type = 'hvac'"
            )
            conn.execute("DELETE FROM core.site_holidays WHERE holiday = '2026-12-25'")
            before = conn.execute("SELECT count(*) FROM core.machines").fetchone()[0]

            added = add_missing_plant(conn, reference)

            new = set(reference.machines) - set(small.machines)
            assert new and added["machines"] == len(new)
            assert added["sites"] == 0 and added["tariffs"] == 0
            assert conn.execute("SELECT count(*) FROM core.machines").fetchone()[0] == before + len(
                new
            )
            assert conn.execute(
                "SELECT sample_interval_s FROM core.machine_types WHERE machine_type = 'hvac'"
            ).fetchone() == (60,)
            assert conn.execute(
                "SELECT count(*) FROM core.site_holidays WHERE holiday = '2026-12-25'"
            ).fetchone() == (0,)
            assert add_missing_plant(conn, reference) == dict.fromkeys(added, 0)  # idempotent
