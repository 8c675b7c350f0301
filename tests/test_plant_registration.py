"""Issue 14, finding 8: a fresh warehouse knows its plant after `enms db migrate` (and `enms
ingest` at start), so the first telemetry lands instead of being quarantined as unknown_machine;
and that registration only adds, so a plant registered from another file keeps its settings.
Issue 16: the plant file is remembered per state folder, and no registration changes the sample
interval of machines with readings unless told to."""

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
from enms_dagster.ingest.landing import land_batch
from enms_dagster.plant import load_plant
from enms_dagster.plant.store import SampleIntervalChangeError, add_missing_plant, save_plant
from enms_dagster.settings import DEFAULT_PLANT_FILE
from enms_dagster.simulator.publish import connect_publisher
from tests.conftest import COARSE_PLANT, SMALL_PLANT, _conninfo_to_url, scratch_database

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


def interval(conn, machine_type: str) -> int:
    return conn.execute(
        "SELECT sample_interval_s FROM core.machine_types WHERE machine_type = %s", (machine_type,)
    ).fetchone()[0]


def test_other_sample_intervals_over_landed_readings_are_refused_unless_asked_for():
    small, coarse = load_plant(SMALL_PLANT), load_plant(COARSE_PLANT)  # compressor 1 s, 60 s
    with scratch_database() as dsn:
        url = _conninfo_to_url(dsn)
        migrate(url)
        with connect(url, autocommit=True) as conn:
            save_plant(conn, small)
            save_plant(conn, coarse)  # no readings yet: nothing is judged by the intervals
            save_plant(conn, small)
            ts = dt.datetime.now(dt.UTC).replace(microsecond=0)
            land_batch(conn, [("CMP-01", "power_kw", ts, 10.0)], source="test", messages=1)

            with pytest.raises(SampleIntervalChangeError) as refused:
                save_plant(conn, coarse, source="plant file coarse_plant.yaml")
            message = str(refused.value)
            assert message.startswith("plant file coarse_plant.yaml would change")
            assert "(compressor 1 s -> 60 s)" in message  # hvac has no readings: not named
            assert message.endswith(
                "set ENMS_PLANT_CHANGE_INTERVALS=1 to change the intervals anyway"
            )
            assert (interval(conn, "compressor"), interval(conn, "hvac")) == (1, 10)  # unchanged

            save_plant(conn, coarse, change_intervals=True)
            assert interval(conn, "compressor") == 60


def test_simulate_uses_the_remembered_plant_file_and_refuses_one_of_other_intervals(tmp_path):
    with scratch_database() as dsn:
        url = _conninfo_to_url(dsn)
        env = {
            **{k: v for k, v in os.environ.items() if k != "ENMS_PLANT_FILE"},
            "ENMS_DATABASE_URL": url,
            "ENMS_STATE_DIR": str(tmp_path),
        }
        chosen = enms("simulate", "--direct", "--days", "1", "--plant", str(COARSE_PLANT), env=env)
        assert chosen.returncode == 0, chosen.stderr
        assert chosen.stdout.splitlines()[0] == f"plant file {COARSE_PLANT} (--plant)"

        again = enms("simulate", "--direct", "--days", "1", env=env)
        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines()[0] == (
            f"plant file {COARSE_PLANT} (remembered in {tmp_path / 'plant_file'}, chosen by "
            "enms simulate --plant; ENMS_PLANT_FILE overrides it, deleting that file goes back "
            "to the reference plant)"
        )

        other = enms("simulate", "--direct", env={**env, "ENMS_PLANT_FILE": str(SMALL_PLANT)})
        assert other.returncode == 2
        assert other.stderr.startswith(f"enms: plant file {SMALL_PLANT} would change the sample")
        assert "ENMS_PLANT_CHANGE_INTERVALS=1" in other.stderr and "Traceback" not in other.stderr
        with connect(url) as conn:
            assert interval(conn, "compressor") == 60

        forced = {**env, "ENMS_PLANT_FILE": str(SMALL_PLANT), "ENMS_PLANT_CHANGE_INTERVALS": "1"}
        assert enms("simulate", "--direct", env=forced).returncode == 0
        with connect(url) as conn:
            assert interval(conn, "compressor") == 1


def test_the_plant_registry_asset_refuses_other_intervals_and_the_cli_says_it_in_one_line():
    import dagster as dg

    from enms_dagster.assets.plant import plant_registry
    from enms_dagster.cli import explain_error
    from enms_dagster.resources import PlantResource, WarehouseResource

    with scratch_database() as dsn:
        url = _conninfo_to_url(dsn)
        migrate(url)
        with connect(url, autocommit=True) as conn:
            save_plant(conn, load_plant(SMALL_PLANT))
            ts = dt.datetime.now(dt.UTC).replace(microsecond=0)
            land_batch(conn, [("HVAC-01", "power_kw", ts, 10.0)], source="test", messages=1)
        resources = {
            "warehouse": WarehouseResource(database_url=url),
            "plant": PlantResource(plant_file=str(COARSE_PLANT)),
        }
        with pytest.raises(Exception) as refused:
            dg.materialize([plant_registry], resources=resources)
        assert explain_error(refused.value) == (
            f"plant file {COARSE_PLANT} would change the sample interval of machines that have "
            "readings (hvac 10 s -> 60 s): their hours were landed at the registered interval "
            "and would all fail completeness. Use the plant file that registered them, or set "
            "ENMS_PLANT_CHANGE_INTERVALS=1 to change the intervals anyway"
        )
        with connect(url) as conn:
            assert interval(conn, "hvac") == 10


def test_migrate_says_which_plant_file_and_that_the_registry_keeps_other_intervals(tmp_path):
    with scratch_database() as dsn:
        url = _conninfo_to_url(dsn)
        migrate(url)
        with connect(url, autocommit=True) as conn:
            save_plant(conn, load_plant(COARSE_PLANT))
        env = {**os.environ, "ENMS_DATABASE_URL": url, "ENMS_STATE_DIR": str(tmp_path)}
        done = enms("db", "migrate", env={**env, "ENMS_PLANT_FILE": str(SMALL_PLANT)})
        assert done.returncode == 0, done.stderr
        out = done.stdout.splitlines()
        assert f"plant file {SMALL_PLANT} (set by ENMS_PLANT_FILE)" in out
        assert out[-1] == (
            "plant: the registry keeps its sample intervals, registered from another plant file "
            "(registered -> this file: compressor 60 s -> 1 s, conveyor_motor 60 s -> 10 s, "
            "hvac 60 s -> 10 s, hydraulic_pump 60 s -> 30 s, injection_moulding 60 s -> 30 s, "
            "meter 60 s -> 900 s)"
        )
