"""README command one, `enms demo`, on both kinds of servers."""

import dataclasses
import time

import paho.mqtt.client as mqtt
import psycopg
import pytest

from enms_dagster.runtime.demo import run_demo
from enms_dagster.settings import MqttAddress, Settings
from tests.conftest import SMALL_PLANT

pytestmark = pytest.mark.integration


@pytest.fixture
def dagster_home(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def leave_stale_messages_for(client_id: str, mqtt_url: str, count: int) -> None:
    """A session of that client id left on the broker with telemetry queued for it."""
    address = MqttAddress.from_url(mqtt_url)
    sub = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=False,
        protocol=mqtt.MQTTv311,
    )
    sub.connect(address.host, address.port)
    sub.loop_start()
    sub.subscribe("enms/+/+/telemetry", qos=1)
    time.sleep(0.5)
    sub.disconnect()
    sub.loop_stop()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    pub.connect(address.host, address.port)
    pub.loop_start()
    sample = b'{"ts": "2026-01-05T10:00:00+00:00", "metrics": {"power_kw": 1.0}}'
    for _ in range(count):
        pub.publish("enms/plant-a/CMP-01/telemetry", sample, qos=1).wait_for_publish(10)
    pub.disconnect()
    pub.loop_stop()


def test_demo_uses_the_configured_servers(local_services, tmp_path, dagster_home, capsys):
    services = local_services
    # messages queued on the shared broker for the demo's client id must not be mistaken for
    # the demo's own (they once made it stop waiting too early)
    leave_stale_messages_for("enms-demo-ingestor", services.mqtt_url, 300)
    settings = Settings(services.database_url, services.mqtt_url, tmp_path / "state", SMALL_PLANT)
    result = run_demo(days=1, settings=settings, history_days=14)
    out = capsys.readouterr().out
    assert "PostgreSQL: ENMS_DATABASE_URL" in out and "MQTT:       ENMS_MQTT_URL" in out
    assert not (tmp_path / "state" / "postgres").exists()  # no embedded server was started
    # the rows are found through the real server, by a connection of our own
    with psycopg.connect(services.database_url) as conn:
        mart = dict(
            conn.execute(
                "SELECT machine_id, energy_kwh FROM marts.kpi_daily WHERE local_date = %s",
                (result.first_day,),
            ).fetchall()
        )
        (raw_rows,) = conn.execute("SELECT count(*) FROM raw.readings").fetchone()
    assert raw_rows >= result.readings_published
    assert mart == pytest.approx(result.mart_kwh)
    for machine, simulated in result.simulated_kwh.items():
        assert mart[machine] == pytest.approx(simulated, rel=0.01)
    # the newcomer's summary: KPIs, anomalies scored against the injected faults, the report
    assert "KPIs " in out and "plant-a" in out and "EnPI" in out
    assert "Found against the simulator's injected faults" in out
    assert result.faults > 0 and any(s["fault_kind"] == "all" for s in result.anomaly_scores)
    [report] = result.reports
    assert report.exists() and "<svg" in report.read_text()
    assert f"report:     {report}" in out and "enms ui" in out


def test_demo_with_nothing_configured_starts_embedded_servers_and_reuses_them(
    tmp_path, dagster_home, capsys, monkeypatch
):
    monkeypatch.delenv("ENMS_DATABASE_URL", raising=False)
    monkeypatch.delenv("ENMS_MQTT_URL", raising=False)
    settings = Settings(None, None, tmp_path / "state", SMALL_PLANT)
    first = run_demo(days=1, settings=settings, history_days=14)
    out = capsys.readouterr().out
    assert "PostgreSQL: embedded" in out and "embedded amqtt broker" in out
    assert (tmp_path / "state" / "postgres" / "PG_VERSION").exists()
    assert first.readings_inserted == first.readings_published > 0

    second = run_demo(days=1, settings=dataclasses.replace(settings), history_days=14)
    out = capsys.readouterr().out
    assert "schema:     current" in out  # the same database, already migrated
    assert second.readings_inserted == 0  # every reading was already there
    assert second.mart_kwh == pytest.approx(first.mart_kwh)
    assert "MTR-01" not in second.mart_kwh  # a meter without telemetry gets no invented energy
