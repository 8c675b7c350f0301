"""Live alerts for anomaly events: JSON on ``enms/<site>/alerts`` (MQTT QoS 1) and optionally
a webhook POST of the same payload; acknowledgement. No Dagster in it.

An event alerts when it is new and once more each time its severity rises above the severity
last alerted; an acknowledged event never alerts again. Events of one machine whose hours
overlap are one problem seen by several detectors and go out as one message (``group_alerts``).
The pending events are locked, published and the broker's PUBACKs awaited before
``alerted_severity`` / ``alerted_at`` are recorded in the same transaction: a failure leaves them
pending for the next attempt (at least once, and in practice once). Webhook failures are
reported but do not hold the alert back.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
import pandas as pd
import psycopg

from enms_dagster.analytics.anomalies import SEVERITIES
from enms_dagster.analytics.events import problem_groups
from enms_dagster.settings import MqttAddress

WEBHOOK_ENV = "ENMS_ALERT_WEBHOOK_URL"
# Events that ended longer ago than this are history, not news: a backfill of last month does
# not page anyone (they stay in marts.anomaly_events).
DEFAULT_STALE_AFTER = dt.timedelta(days=2)

_PENDING_SQL = """
SELECT event_id, site_id, machine_id, kind, method, start_ts, end_ts, hours, severity, score,
       expected_kwh, actual_kwh, excess_kwh, excess_cost, currency, sentence, first_seen,
       last_updated, alerted_severity
FROM marts.anomaly_events
WHERE acknowledged_at IS NULL
  AND (%(since)s::timestamptz IS NULL OR end_ts >= %(since)s)
  AND array_position(%(levels)s::text[], severity) >= %(min_rank)s
  AND (alerted_severity IS NULL
       OR array_position(%(levels)s::text[], severity)
          > array_position(%(levels)s::text[], alerted_severity))
ORDER BY first_seen, event_id
FOR UPDATE SKIP LOCKED
"""


def alert_topic(site_id: str) -> str:
    return f"enms/{site_id}/alerts"


def webhook_url_from_env(environ: dict[str, str] | None = None) -> str | None:
    """``ENMS_ALERT_WEBHOOK_URL``, or None when unset: alerts then go to MQTT only."""
    env = os.environ if environ is None else environ
    return env.get(WEBHOOK_ENV) or None


@dataclass(frozen=True)
class Alert:
    event_id: str
    topic: str
    status: str  # "new" or "escalated"
    severity: str
    payload: dict


@dataclass
class AlertReport:
    sent: list[Alert] = field(default_factory=list)  # one per message
    webhook_errors: list[str] = field(default_factory=list)
    events: int = 0  # events recorded as alerted: the messages' and their related events

    def summary(self) -> str:
        new = sum(a.status == "new" for a in self.sent)
        text = f"{len(self.sent)} alerts ({new} new, {len(self.sent) - new} escalated)"
        if self.events > len(self.sent):
            text += f" covering {self.events} events"
        if self.webhook_errors:
            text += f"; webhook failed {len(self.webhook_errors)}x: {self.webhook_errors[0]}"
        return text


def _iso(value) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value is not None else None


def _number(value) -> float | None:
    return round(float(value), 3) if value is not None else None


def alert_payload(row: dict) -> dict:
    """The JSON object an alert carries (MQTT and webhook alike)."""
    return {
        "event_id": row["event_id"],
        "status": "new" if row["alerted_severity"] is None else "escalated",
        "site_id": row["site_id"],
        "machine_id": row["machine_id"],
        "kind": row["kind"],
        "method": row["method"],
        "severity": row["severity"],
        "previous_severity": row["alerted_severity"],
        "start": _iso(row["start_ts"]),
        "end": _iso(row["end_ts"]),
        "hours": row["hours"],
        "expected_kwh": _number(row["expected_kwh"]),
        "actual_kwh": _number(row["actual_kwh"]),
        "excess_kwh": _number(row["excess_kwh"]),
        "excess_cost": _number(row["excess_cost"]),
        "currency": row["currency"],
        "score": _number(row["score"]),
        "sentence": row["sentence"],
        "first_seen": _iso(row["first_seen"]),
        "last_updated": _iso(row["last_updated"]),
    }


def _pending(
    conn: psycopg.Connection,
    now: dt.datetime,
    min_severity: str,
    stale_after: dt.timedelta | None,
) -> list[Alert]:
    if min_severity not in SEVERITIES:
        raise ValueError(f"min_severity must be one of {SEVERITIES}, not {min_severity!r}")
    cur = conn.execute(
        _PENDING_SQL,
        {
            "since": now - stale_after if stale_after is not None else None,
            "levels": list(SEVERITIES),
            "min_rank": SEVERITIES.index(min_severity) + 1,
        },
    )
    columns = [c.name for c in cur.description]
    alerts = []
    for values in cur.fetchall():
        payload = alert_payload(dict(zip(columns, values, strict=True)))
        alerts.append(
            Alert(
                payload["event_id"],
                alert_topic(payload["site_id"]),
                payload["status"],
                payload["severity"],
                payload,
            )
        )
    return alerts


def group_alerts(alerts: list[Alert]) -> list[list[Alert]]:
    """Alerts about one problem, together (``analytics.events.problem_groups``: events of one
    machine whose hours overlap), so an operator gets one message for it; the alert to send
    comes first in each group."""
    frame = pd.DataFrame(
        {
            "machine_id": [a.payload["machine_id"] for a in alerts],
            "start_ts": [dt.datetime.fromisoformat(a.payload["start"]) for a in alerts],
            "end_ts": [dt.datetime.fromisoformat(a.payload["end"]) for a in alerts],
            "severity": [a.severity for a in alerts],
            "excess_kwh": [a.payload["excess_kwh"] for a in alerts],
        }
    )
    return [[alerts[pos] for pos in group] for group in problem_groups(frame)]


def _message(group: list[Alert]) -> Alert:
    """The group's first alert, its payload listing the others as ``related_events``."""
    lead = group[0]
    related = [
        {k: a.payload[k] for k in ("event_id", "status", "kind", "severity", "sentence")}
        for a in group[1:]
    ]
    return Alert(
        lead.event_id, lead.topic, lead.status, lead.severity,
        {**lead.payload, "related_events": related},
    )  # fmt: skip


def publish_mqtt(
    mqtt_url: str, messages: list[tuple[str, bytes]], client_id: str, timeout_s: float = 30.0
) -> None:
    """Publish each (topic, payload) with QoS 1 and return once the broker acknowledged all
    (PUBACK); raise when it does not within ``timeout_s``."""
    address = MqttAddress.from_url(mqtt_url)
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=True,
        protocol=mqtt.MQTTv311,
    )
    if address.username:
        client.username_pw_set(address.username, address.password)
    connected = threading.Event()
    refused: list[str] = []

    def on_connect(client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:
            refused.append(str(reason_code))
        connected.set()

    client.on_connect = on_connect
    deadline = time.monotonic() + timeout_s
    client.connect(address.host, address.port, keepalive=30)
    client.loop_start()
    try:
        if not connected.wait(timeout_s) or refused:
            raise ConnectionError(f"MQTT broker {address.host}:{address.port} refused: {refused}")
        infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(max(deadline - time.monotonic(), 0.01))
            if not info.is_published():
                raise TimeoutError(f"broker did not acknowledge alert {info.mid} in {timeout_s} s")
    finally:
        client.disconnect()
        client.loop_stop()


def post_webhook(url: str, payload: dict, timeout_s: float = 10.0) -> None:
    """POST the payload as JSON; raise on a non-2xx answer or a network error."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        if not 200 <= response.status < 300:
            raise OSError(f"webhook answered {response.status}")


def publish_alerts(
    conn: psycopg.Connection,
    mqtt_url: str,
    webhook_url: str | None = None,
    *,
    now: dt.datetime | None = None,
    min_severity: str = "low",
    stale_after: dt.timedelta | None = DEFAULT_STALE_AFTER,
    client_id: str | None = None,
    timeout_s: float = 30.0,
) -> AlertReport:
    """Send every new or escalated, unacknowledged event of at least ``min_severity`` that ended
    after ``now - stale_after``, one message per problem (``group_alerts``: the other events of
    the problem ride along as ``related_events``), then record every event as sent."""
    now = now or dt.datetime.now(dt.UTC)
    report = AlertReport()
    with conn.transaction():
        alerts = _pending(conn, now, min_severity, stale_after)
        if not alerts:
            return report
        messages = [_message(group) for group in group_alerts(alerts)]
        publish_mqtt(
            mqtt_url,
            [(a.topic, json.dumps(a.payload).encode()) for a in messages],
            client_id or f"enms-alerts-{uuid.uuid4().hex[:8]}",
            timeout_s,
        )
        if webhook_url:
            for alert in messages:
                try:
                    post_webhook(webhook_url, alert.payload)
                except OSError as exc:
                    report.webhook_errors.append(f"{alert.event_id}: {exc}")
        with conn.cursor() as cur:
            cur.executemany(
                "UPDATE marts.anomaly_events SET alerted_severity = %s, alerted_at = now() "
                "WHERE event_id = %s",
                [(a.severity, a.event_id) for a in alerts],
            )
        report.sent = messages
        report.events = len(alerts)
    return report


def acknowledge(conn: psycopg.Connection, event_id: str, by: str) -> bool:
    """Mark an event acknowledged by ``by`` (the first acknowledgement stands); it never alerts
    again. False when there is no such event."""
    with conn.transaction():
        conn.execute(
            "UPDATE marts.anomaly_events SET acknowledged_at = now(), acknowledged_by = %s "
            "WHERE event_id = %s AND acknowledged_at IS NULL",
            (by, event_id),
        )
        found = conn.execute(
            "SELECT 1 FROM marts.anomaly_events WHERE event_id = %s", (event_id,)
        ).fetchone()
    return found is not None
