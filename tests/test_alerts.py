"""Live alerts against this machine's PostgreSQL and Mosquitto: each event is sent once when it
appears and once more when it escalates, never after an acknowledgement."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import paho.mqtt.client as mqtt
import paho.mqtt.publish as mqtt_publish
import pandas as pd
import pytest

from enms_dagster.anomalies.alerts import acknowledge, alert_topic, publish_alerts
from enms_dagster.anomalies.store import read_events, store_anomalies
from enms_dagster.db import connect
from enms_dagster.plant import MachineLabel
from enms_dagster.resources import AlertsResource, WarehouseResource
from enms_dagster.sensors.alerts import anomaly_alerts_sensor
from enms_dagster.settings import MqttAddress
from tests.test_anomaly_events import flags_for

pytestmark = pytest.mark.integration

SENTINEL = b"end-of-test"


class Subscriber:
    """A QoS 1 subscriber on one topic that collects payloads until the sentinel arrives."""

    def __init__(self, mqtt_url: str, topic: str) -> None:
        address = MqttAddress.from_url(mqtt_url)
        self.mqtt_url, self.topic = mqtt_url, topic
        self.payloads: list[bytes] = []
        self._done = threading.Event()
        subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"enms-test-sub-{uuid.uuid4().hex[:8]}",
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(address.host, address.port)
        self.client.loop_start()
        assert subscribed.wait(10), "subscription not acknowledged"

    def _on_message(self, client, userdata, message) -> None:
        if message.payload == SENTINEL:
            self._done.set()
        else:
            self.payloads.append(message.payload)

    def received(self) -> list[dict]:
        """Everything that arrived before a sentinel published now: the broker keeps the order
        of what it acknowledged, so nothing sent earlier can still be on its way."""
        self._done.clear()
        address = MqttAddress.from_url(self.mqtt_url)
        mqtt_publish.single(self.topic, SENTINEL, qos=1, hostname=address.host, port=address.port)
        assert self._done.wait(10), "sentinel did not arrive"
        return [json.loads(p) for p in self.payloads]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def conn(local_services):
    with connect(local_services.database_url, autocommit=True) as c:
        c.execute(
            "TRUNCATE marts.anomalies, marts.anomaly_events, core.alert_outbox, "
            "core.alert_deliveries"
        )
        yield c


@pytest.fixture
def site():
    """A site id of this test's own, so its alert topic is quiet on a shared broker."""
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def subscriber(local_services, site):
    sub = Subscriber(local_services.mqtt_url, alert_topic(site))
    yield sub
    sub.close()


def recent_hour(hours_ago: int) -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(hours=hours_ago)


def store_batch(conn, labels, first: pd.Timestamp, hours: int, severity: str = "low"):
    """Flags for ``hours`` hours from ``first``, stored as the window they cover."""
    flags = flags_for(first, hours, severity=severity)
    end = first + pd.Timedelta(hours=hours)
    return store_anomalies(conn, first.to_pydatetime(), end.to_pydatetime(), flags, labels)


def test_a_ten_hour_fault_arriving_in_batches_alerts_once_then_once_when_it_escalates(
    local_services, conn, site, subscriber
):
    labels = {"CMP-01": MachineLabel("Compressor 1", site, "Europe/Berlin")}
    start = recent_hour(12)
    ends = []
    for offset, hours, severity in [(0, 3, "low"), (3, 3, "low"), (6, 4, "high")]:
        store_batch(conn, labels, start + pd.Timedelta(hours=offset), hours, severity)
        events = read_events(conn, start, start + pd.Timedelta(hours=10))
        assert len(events) == 1
        ends.append(events.iloc[0]["end_ts"])
        publish_alerts(conn, local_services.mqtt_url)
    assert ends == [start + pd.Timedelta(hours=h) for h in (3, 6, 10)]
    assert publish_alerts(conn, local_services.mqtt_url).queued == []

    alerts = subscriber.received()
    assert [(a["status"], a["severity"], a["previous_severity"]) for a in alerts] == [
        ("new", "low", None),
        ("escalated", "high", "low"),
    ]
    event_id = events.iloc[0]["event_id"]
    assert {a["event_id"] for a in alerts} == {event_id}
    assert alerts[0]["alert_id"] != alerts[1]["alert_id"]  # an escalation is news of its own
    assert alerts[0]["end"] == (start + pd.Timedelta(hours=3)).isoformat()
    assert alerts[1]["end"] == (start + pd.Timedelta(hours=10)).isoformat()
    assert alerts[1]["hours"] == 10 and alerts[1]["excess_kwh"] == pytest.approx(220.0)
    assert alerts[1]["sentence"].startswith("Compressor 1 (CMP-01) drew 220 kWh more")
    row = conn.execute(
        "SELECT alerted_severity, alerted_at IS NOT NULL FROM marts.anomaly_events"
    ).fetchone()
    assert row == ("high", True)


def test_one_problem_seen_by_several_detectors_is_one_message_listing_the_others(
    local_services, conn, site, subscriber
):
    labels = {
        m: MachineLabel(name, site, "Europe/Berlin")
        for m, name in [("CMP-01", "Compressor 1"), ("CMP-02", "Compressor 2")]
    }
    start = recent_hour(12)
    flags = pd.concat(
        [
            flags_for(start, 6, kind="out_of_hours", excess_kwh=22.0),  # left running ...
            flags_for(start + pd.Timedelta(hours=2), 6, kind="above_baseline", excess_kwh=30.0),
            flags_for(start, 3, kind="out_of_hours", machine="CMP-02"),  # another machine
        ],
        ignore_index=True,
    )
    end = start + pd.Timedelta(hours=8)
    store_anomalies(conn, start.to_pydatetime(), end.to_pydatetime(), flags, labels)
    report = publish_alerts(conn, local_services.mqtt_url)
    assert (len(report.queued), report.events) == (2, 3)
    assert report.summary() == (
        "2 alerts (2 new, 0 escalated) covering 3 events; mqtt: 2 delivered, 0 retrying, 0 failed"
    )

    alerts = {a["machine_id"]: a for a in subscriber.received()}
    assert set(alerts) == {"CMP-01", "CMP-02"}
    assert alerts["CMP-01"]["kind"] == "above_baseline"  # the costlier of the two
    assert [(r["kind"], r["status"]) for r in alerts["CMP-01"]["related_events"]] == [
        ("out_of_hours", "new")
    ]
    assert alerts["CMP-02"]["related_events"] == []
    unsent = conn.execute(
        "SELECT count(*) FROM marts.anomaly_events WHERE alerted_at IS NULL"
    ).fetchone()
    assert unsent == (0,)
    assert publish_alerts(conn, local_services.mqtt_url).queued == []


def test_an_acknowledged_event_is_not_sent_again_even_when_it_escalates(
    local_services, conn, site, subscriber
):
    labels = {"CMP-01": MachineLabel("Compressor 1", site, "Europe/Berlin")}
    start = recent_hour(6)
    store_batch(conn, labels, start, 2)
    assert len(publish_alerts(conn, local_services.mqtt_url).queued) == 1
    event_id = read_events(conn, start, start + pd.Timedelta(hours=2)).iloc[0]["event_id"]
    assert acknowledge(conn, event_id, "maintenance")
    assert not acknowledge(conn, "CMP-01.out_of_hours.19990101T0000Z", "maintenance")
    store_batch(conn, labels, start + pd.Timedelta(hours=2), 2, severity="high")
    assert publish_alerts(conn, local_services.mqtt_url).queued == []
    assert [a["status"] for a in subscriber.received()] == ["new"]
    by, severity = conn.execute(
        "SELECT acknowledged_by, severity FROM marts.anomaly_events WHERE event_id = %s",
        (event_id,),
    ).fetchone()
    assert (by, severity) == ("maintenance", "high")


def test_an_event_that_ended_days_ago_pages_nobody(local_services, conn, site, subscriber):
    labels = {"CMP-01": MachineLabel("Compressor 1", site, "Europe/Berlin")}
    store_batch(conn, labels, recent_hour(24 * 5), 3)  # a backfill of last week
    assert publish_alerts(conn, local_services.mqtt_url).queued == []
    assert subscriber.received() == []


class _Hook(BaseHTTPRequestHandler):
    bodies: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        length = int(self.headers["Content-Length"])
        _Hook.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook():
    _Hook.bodies = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/alerts", _Hook.bodies
    server.shutdown()
    server.server_close()


def test_the_same_payload_is_posted_to_the_webhook(local_services, conn, site, subscriber, webhook):
    url, bodies = webhook
    labels = {"CMP-01": MachineLabel("Compressor 1", site, "Europe/Berlin")}
    store_batch(conn, labels, recent_hour(4), 2)
    report = publish_alerts(conn, local_services.mqtt_url, url)
    assert report.webhook.attempt_errors == [] and report.webhook.delivered == 1
    assert bodies == subscriber.received()
    assert len(bodies) == 1 and bodies[0]["site_id"] == site


def test_a_failing_webhook_does_not_hold_back_the_mqtt_alert(
    local_services, conn, site, subscriber
):
    labels = {"CMP-01": MachineLabel("Compressor 1", site, "Europe/Berlin")}
    store_batch(conn, labels, recent_hour(4), 2)
    report = publish_alerts(conn, local_services.mqtt_url, "http://127.0.0.1:9/nothing-here")
    assert len(report.queued) == 1 and report.mqtt.delivered == 1
    assert (report.webhook.delivered, report.webhook.retrying) == (0, 1)
    assert "ConnectionRefusedError" in report.webhook.attempt_errors[0]
    assert len(subscriber.received()) == 1


def test_the_alert_sensor_sends_new_events_then_skips(
    local_services, conn, site, subscriber, monkeypatch
):
    monkeypatch.delenv("ENMS_ALERT_WEBHOOK_URL", raising=False)
    labels = {"CMP-01": MachineLabel("Compressor 1", site, "Europe/Berlin")}
    store_batch(conn, labels, recent_hour(3), 2)
    resources = {
        "warehouse": WarehouseResource(database_url=local_services.database_url),
        "alerts": AlertsResource(mqtt_url=local_services.mqtt_url),
    }
    with dg.build_sensor_context(resources=resources) as context:
        first = anomaly_alerts_sensor(context)
    assert isinstance(first, dg.SensorResult)
    (observation,) = first.asset_events
    assert observation.asset_key == dg.AssetKey("anomalies")
    assert observation.metadata["alerts_queued"].value == 1
    assert observation.metadata["mqtt_delivered"].value == 1
    with dg.build_sensor_context(resources=resources) as context:
        assert isinstance(anomaly_alerts_sensor(context), dg.SkipReason)
    assert len(subscriber.received()) == 1


def test_the_alert_sensor_is_stopped_by_default():
    assert anomaly_alerts_sensor.default_status == dg.DefaultSensorStatus.STOPPED
