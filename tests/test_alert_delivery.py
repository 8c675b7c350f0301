"""Alert delivery through the outbox against this machine's PostgreSQL and Mosquitto and a
webhook receiver of the test's own: every alert reaches every channel at least once, MQTT once,
whatever the webhook answers, and no call waits on a slow channel beyond its budget."""

from __future__ import annotations

import datetime as dt
import uuid

import dagster as dg
import pandas as pd
import pytest

from enms_dagster.anomalies.alert_delivery import DeliveryPolicy, delivery_status
from enms_dagster.anomalies.alerts import alert_topic, publish_alerts
from enms_dagster.anomalies.store import store_anomalies
from enms_dagster.db import connect
from enms_dagster.plant import MachineLabel
from enms_dagster.resources import AlertsResource, WarehouseResource
from enms_dagster.sensors.alerts import anomaly_alerts_sensor
from tests.brokers import Mosquitto
from tests.test_alerts import Subscriber, recent_hour, store_batch
from tests.test_anomaly_events import flags_for
from tests.webhooks import DRIP, FlakyWebhook

pytestmark = pytest.mark.integration

# Short budgets so a test call is bounded tightly; retries become due by moving ``now`` on.
POLICY = DeliveryPolicy(
    retry_base_s=60, retry_cap_s=600, mqtt_budget_s=5, webhook_budget_s=2.5, webhook_request_s=2
)
LATER = dt.timedelta(hours=1)  # past any back-off of POLICY


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
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def subscriber(local_services, site):
    sub = Subscriber(local_services.mqtt_url, alert_topic(site))
    yield sub
    sub.close()


@pytest.fixture
def webhook():
    hook = FlakyWebhook()
    yield hook
    hook.close()


def two_problems(conn, site) -> None:
    """Two machines with a fault each: two alert messages."""
    labels = {
        m: MachineLabel(name, site, "Europe/Berlin")
        for m, name in [("CMP-01", "Compressor 1"), ("CMP-02", "Compressor 2")]
    }
    start = recent_hour(9)
    flags = pd.concat(
        [flags_for(start, 2), flags_for(start + pd.Timedelta(hours=4), 2, machine="CMP-02")],
        ignore_index=True,
    )
    end = start + pd.Timedelta(hours=6)
    store_anomalies(conn, start.to_pydatetime(), end.to_pydatetime(), flags, labels)


def outbox_ids(conn) -> set[str]:
    return {r[0] for r in conn.execute("SELECT alert_id::text FROM core.alert_outbox")}


def test_a_webhook_that_refuses_fails_garbles_and_drips_gets_every_alert_once_it_recovers(
    local_services, conn, site, subscriber, webhook
):
    two_problems(conn, site)
    now = dt.datetime.now(dt.UTC)
    reports = {}
    for mode in ["refuse", "error", "garbage", "drip", "ok"]:
        webhook.set_mode(mode)
        reports[mode] = publish_alerts(
            conn, local_services.mqtt_url, webhook.url, now=now, policy=POLICY
        )
        now += LATER
    assert len(reports["refuse"].queued) == 2
    assert [r.mqtt.delivered for r in reports.values()] == [2, 0, 0, 0, 0]

    def errors(mode: str) -> list[str]:
        return [e.split(": ", 1)[1] for e in reports[mode].webhook.attempt_errors]

    assert all(e.startswith("ConnectionRefusedError") for e in errors("refuse"))
    assert errors("error") == ["OSError: webhook answered HTTP 500 Internal Server Error"] * 2
    assert len(errors("garbage")) == 2  # BadStatusLine, whatever http.client makes of it
    drip = reports["drip"].webhook
    assert drip.budget_s == POLICY.webhook_budget_s
    assert drip.attempted >= 1 and drip.attempted + drip.deferred == 2 and drip.delivered == 0
    assert all(e.startswith("TimeoutError: no complete answer within") for e in errors("drip"))
    assert webhook.wait_for_drips(cut=drip.attempted), "the drip answers were not cut short"
    assert webhook.drips_finished == 0 and len(DRIP) > 100  # uncut, a drip takes minutes
    for mode in ["refuse", "error", "garbage", "drip"]:
        assert reports[mode].webhook.retrying == 2 and reports[mode].webhook.failed == 0
    assert (reports["ok"].webhook.delivered, reports["ok"].webhook.retrying) == (2, 0)

    again = publish_alerts(conn, local_services.mqtt_url, webhook.url, now=now, policy=POLICY)
    assert not again.did_something()
    ids = outbox_ids(conn)
    assert sorted(webhook.acknowledged) == sorted(ids)  # every alert, once acknowledged
    mqtt = subscriber.received()
    assert sorted(a["alert_id"] for a in mqtt) == sorted(ids)  # MQTT exactly once per alert
    by_id = {a["alert_id"]: a for a in mqtt}
    for headers, body in webhook.requests:  # repeats carry the same id and the same alert
        assert headers["idempotency-key"] == body["alert_id"]
        assert body == by_id[body["alert_id"]]


def test_a_broker_that_is_down_gets_its_alert_later_once_while_the_webhook_has_it_now(
    local_services, conn, site, webhook, tmp_path
):
    broker = Mosquitto(tmp_path / "broker")  # not started: its port is closed
    labels = {"CMP-01": MachineLabel("Compressor 1", site, "Europe/Berlin")}
    store_batch(conn, labels, recent_hour(4), 2)
    now = dt.datetime.now(dt.UTC)
    first = publish_alerts(conn, broker.url, webhook.url, now=now, policy=POLICY)
    assert (first.webhook.delivered, first.mqtt.delivered, first.mqtt.retrying) == (1, 0, 1)
    assert "ConnectionRefusedError" in first.mqtt.attempt_errors[0]

    broker.start()
    try:
        subscriber = Subscriber(broker.url, alert_topic(site))
        soon = publish_alerts(conn, broker.url, webhook.url, now=now + dt.timedelta(seconds=30))
        assert not soon.did_something()  # back-off: not due yet
        later = publish_alerts(conn, broker.url, webhook.url, now=now + LATER, policy=POLICY)
        assert (later.mqtt.delivered, later.mqtt.retrying, later.webhook.attempted) == (1, 0, 0)
        publish_alerts(conn, broker.url, webhook.url, now=now + 2 * LATER, policy=POLICY)
        received = subscriber.received()
        subscriber.close()
    finally:
        broker.stop()
    assert [a["alert_id"] for a in received] == webhook.acknowledged  # once on each channel


def test_a_delivery_gives_up_after_its_attempts_and_the_operator_sees_why(
    local_services, conn, site, subscriber, webhook
):
    webhook.set_mode("error")
    labels = {"CMP-01": MachineLabel("Compressor 1", site, "Europe/Berlin")}
    store_batch(conn, labels, recent_hour(4), 2)
    policy = DeliveryPolicy(max_attempts=2, webhook_budget_s=5)
    now = dt.datetime.now(dt.UTC)
    first = publish_alerts(conn, local_services.mqtt_url, webhook.url, now=now, policy=policy)
    assert (first.webhook.retrying, first.webhook.failed) == (1, 0)
    second = publish_alerts(
        conn, local_services.mqtt_url, webhook.url, now=now + LATER, policy=policy
    )
    assert (second.webhook.retrying, second.webhook.failed) == (0, 1)
    assert "HTTP 500" in second.webhook.gave_up[0]
    assert any("delivery gave up" in line for line in second.problems())
    webhook.set_mode("ok")
    third = publish_alerts(
        conn, local_services.mqtt_url, webhook.url, now=now + 2 * LATER, policy=policy
    )
    assert not third.did_something() and webhook.acknowledged == []
    lines = delivery_status(conn)
    assert lines[:2] == [
        "mqtt: 1 delivered, 0 pending, 0 failed",
        "webhook: 0 delivered, 0 pending, 1 failed",
    ]
    assert lines[2].startswith("failed webhook ") and "2 attempts" in lines[2]
    assert lines[2].endswith("OSError: webhook answered HTTP 500 Internal Server Error")
    assert len(subscriber.received()) == 1


def test_a_delivery_older_than_the_give_up_age_fails_even_when_the_webhook_is_gone(
    local_services, conn, site, subscriber, webhook
):
    webhook.set_mode("refuse")
    labels = {"CMP-01": MachineLabel("Compressor 1", site, "Europe/Berlin")}
    store_batch(conn, labels, recent_hour(4), 2)
    now = dt.datetime.now(dt.UTC)
    publish_alerts(conn, local_services.mqtt_url, webhook.url, now=now, policy=POLICY)
    late = now + POLICY.give_up_after
    report = publish_alerts(conn, local_services.mqtt_url, None, now=late, policy=POLICY)
    assert report.webhook.failed == 1 and report.webhook.attempted == 0
    assert "ConnectionRefusedError" in report.webhook.gave_up[0]


def test_a_webhook_configured_later_gets_new_alerts_not_the_history(
    local_services, conn, site, subscriber, webhook
):
    labels = {"CMP-01": MachineLabel("Compressor 1", site, "Europe/Berlin")}
    store_batch(conn, labels, recent_hour(9), 2)
    assert len(publish_alerts(conn, local_services.mqtt_url, policy=POLICY).queued) == 1
    assert not publish_alerts(conn, local_services.mqtt_url, webhook.url).did_something()
    store_batch(conn, labels, recent_hour(4), 2)  # a new fault of the same machine
    report = publish_alerts(conn, local_services.mqtt_url, webhook.url, policy=POLICY)
    assert (len(report.queued), report.webhook.delivered) == (1, 1)
    ((headers, body),) = webhook.requests
    assert body["alert_id"] == report.queued[0].payload["alert_id"]
    assert body["start"] == recent_hour(4).isoformat()
    assert len(subscriber.received()) == 2


def test_the_sensor_reports_each_channel_and_retries_the_webhook_on_a_later_tick(
    local_services, conn, site, subscriber, webhook, monkeypatch
):
    monkeypatch.delenv("ENMS_ALERT_WEBHOOK_URL", raising=False)
    webhook.set_mode("error")
    labels = {"CMP-01": MachineLabel("Compressor 1", site, "Europe/Berlin")}
    store_batch(conn, labels, recent_hour(3), 2)
    resources = {
        "warehouse": WarehouseResource(database_url=local_services.database_url),
        "alerts": AlertsResource(
            mqtt_url=local_services.mqtt_url, webhook_url=webhook.url, webhook_budget_s=5
        ),
    }

    def tick() -> dict[str, float] | None:
        with dg.build_sensor_context(resources=resources) as context:
            result = anomaly_alerts_sensor(context)
        if isinstance(result, dg.SkipReason):
            return None
        (observation,) = result.asset_events
        return {k: v.value for k, v in observation.metadata.items() if k.startswith(("m", "w"))}

    assert tick() == {
        "mqtt_delivered": 1, "mqtt_retrying": 0, "mqtt_failed": 0,
        "webhook_delivered": 0, "webhook_retrying": 1, "webhook_failed": 0,
    }  # fmt: skip
    assert tick() is None  # the webhook's retry is not due yet
    webhook.set_mode("ok")
    conn.execute("UPDATE core.alert_deliveries SET next_attempt_at = now()")  # time passes
    assert tick() == {
        "mqtt_delivered": 0, "mqtt_retrying": 0, "mqtt_failed": 0,
        "webhook_delivered": 1, "webhook_retrying": 0, "webhook_failed": 0,
    }  # fmt: skip
    assert len(subscriber.received()) == 1 and len(webhook.acknowledged) == 1
