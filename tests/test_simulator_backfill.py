"""The simulator's modes against real servers: a direct backfill lands every reading once through
land_batch with its ground truth in the labels tables; `enms simulate --direct` does it from the
command line; the accelerated mode publishes simulated time faster than the wall clock."""

import datetime as dt
import json
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
import yaml

from enms_dagster import cli
from enms_dagster.plant import parse_plant
from enms_dagster.settings import MqttAddress
from enms_dagster.simulator.backfill import backfill_direct
from enms_dagster.simulator.faults import EfficiencyMeasure
from enms_dagster.simulator.publish import run_accelerated
from tests.conftest import SMALL_PLANT

pytestmark = pytest.mark.integration

DAY = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)


@pytest.fixture
def labelled(warehouse):
    """The warehouse with the ground-truth tables emptied too."""
    warehouse.execute("TRUNCATE core.fault_labels, core.efficiency_measures")
    return warehouse


def test_direct_backfill_lands_every_reading_once_and_counters_match_the_truth(
    labelled, services, small_plant
):
    warehouse = labelled
    measure = EfficiencyMeasure("CMP-01", DAY + dt.timedelta(hours=12), 0.1, "VSD retrofit")
    result = backfill_direct(
        small_plant, DAY, DAY + dt.timedelta(days=1), services.database_url, seed=3,
        measures=[measure], batch_readings=50_000,
    )  # fmt: skip
    (rows,) = warehouse.execute("SELECT count(*) FROM raw.readings").fetchone()
    assert rows == result.readings == result.inserted > 400_000
    assert result.batches > 1
    logged = warehouse.execute(
        "SELECT source, sum(readings_inserted) FROM raw.ingest_batches GROUP BY source"
    ).fetchall()
    assert logged == [("simulator", rows)]
    deltas = dict(
        warehouse.execute(
            "SELECT machine_id, max(value) - min(value) FROM raw.readings "
            "WHERE metric = 'energy_kwh_total' GROUP BY machine_id"
        ).fetchall()
    )
    for machine, kwh in result.truth.energy_kwh.items():
        assert deltas[machine] == pytest.approx(kwh, rel=0.01), machine
    assert warehouse.execute(
        "SELECT machine_id, start_ts, saving FROM core.efficiency_measures"
    ).fetchall() == [("CMP-01", measure.start, 0.1)]

    again = backfill_direct(
        small_plant, DAY, DAY + dt.timedelta(days=1), services.database_url, seed=3,
        measures=[measure],
    )  # fmt: skip
    assert again.inserted == 0
    assert warehouse.execute("SELECT count(*) FROM raw.readings").fetchone()[0] == rows


def test_every_injected_fault_is_recorded_in_the_labels_table(labelled, services, small_plant):
    warehouse = labelled
    start = DAY - dt.timedelta(days=6)
    result = backfill_direct(
        small_plant, start, start + dt.timedelta(days=2), services.database_url, seed=8,
        fault_rate=6.0,
    )  # fmt: skip
    assert len(result.faults) >= 5
    stored = warehouse.execute(
        "SELECT machine_id, kind, start_ts, end_ts, magnitude FROM core.fault_labels "
        "ORDER BY start_ts, machine_id, kind"
    ).fetchall()
    assert stored == [(f.machine_id, f.kind, f.start, f.end, f.magnitude) for f in result.faults]


def test_enms_simulate_direct_backfills_from_the_command_line(
    labelled, services, monkeypatch, capsys
):
    warehouse = labelled
    monkeypatch.setenv("ENMS_DATABASE_URL", services.database_url)
    monkeypatch.setenv("ENMS_MQTT_URL", services.mqtt_url)
    code = cli.main(
        ["simulate", "--plant", str(SMALL_PLANT), "--days", "1", "--direct", "--fault-rate", "3",
         "--seed", "4", "--saving", "HYD-01:2026-01-05:10"]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "landed" in out and "readings/s" in out
    (rows,) = warehouse.execute("SELECT count(*) FROM raw.readings").fetchone()
    assert rows > 400_000
    assert warehouse.execute("SELECT count(*) FROM core.efficiency_measures").fetchone()[0] == 1


def test_accelerated_mode_publishes_simulated_time_faster_than_the_wall_clock(services):
    doc = yaml.safe_load(SMALL_PLANT.read_text())
    site = f"acc-{uuid.uuid4().hex[:8]}"  # a site of its own: no other test's traffic
    doc["sites"][0]["site_id"] = site
    doc["machines"] = [dict(m, site=site) for m in doc["machines"] if m["type"] == "hydraulic_pump"]
    plant = parse_plant(doc)
    stamps: list[str] = []
    address = MqttAddress.from_url(services.mqtt_url)
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    sub.on_message = lambda c, u, msg: stamps.extend(s["ts"] for s in json.loads(msg.payload))
    sub.connect(address.host, address.port)
    sub.subscribe(f"enms/{site}/+/telemetry", qos=1)
    sub.loop_start()
    time.sleep(0.5)
    began = time.time()
    start = dt.datetime.fromtimestamp(began, dt.UTC) - dt.timedelta(hours=3)
    stop = threading.Event()
    threading.Timer(3.0, stop.set).start()
    try:
        published = run_accelerated(
            plant, services.mqtt_url, start=start, speed=3600, tick_s=0.2, stop=stop.is_set,
            client_id=f"enms-test-{site}",
        )  # fmt: skip
        time.sleep(1.0)
    finally:
        sub.disconnect()
        sub.loop_stop()
    wall = time.time() - began
    assert published > 0
    times = sorted(dt.datetime.fromisoformat(s).timestamp() for s in stamps)
    simulated = times[-1] - times[0]
    assert simulated > 100 * wall  # hours of telemetry in seconds
    assert times[-1] <= time.time() + 1  # never ahead of now: it goes on in real time
    assert len(set(times)) == len(times)  # no sample published twice
