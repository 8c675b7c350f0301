"""Live alerts for anomaly events: JSON on ``enms/<site>/alerts`` (MQTT QoS 1) and optionally
a webhook POST of the same payload; acknowledgement. No Dagster in it.

An event alerts when it is new and once more each time its severity rises above the severity
last alerted; an acknowledged event never alerts again. Events of one machine whose hours
overlap are one problem seen by several detectors and go out as one message (``group_alerts``).
The pending events are locked, their messages written to the outbox (``core.alert_outbox``) and
the events marked alerted in one transaction; each channel then delivers from the outbox on its
own (``alert_delivery``): at least once per channel, retried with back-off, deduplicated by the
payload's ``alert_id``.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass, field

import pandas as pd
import psycopg
from psycopg import sql

from enms_dagster.anomalies.alert_delivery import (
    ChannelReport,
    DeliveryPolicy,
    alert_id_for,
    deliver_mqtt,
    deliver_webhook,
    enqueue_alert,
)
from enms_dagster.anomalies.contracts import SEVERITIES
from enms_dagster.anomalies.events import EVENT_COLUMNS, problem_groups

WEBHOOK_ENV = "ENMS_ALERT_WEBHOOK_URL"
# Events that ended longer ago than this are history, not news: a backfill of last month does
# not page anyone (they stay in marts.anomaly_events).
DEFAULT_STALE_AFTER = dt.timedelta(days=2)

# An event's columns, then the state an alert needs (the severity ladder arrives as %(levels)s).
_PENDING_COLUMNS = (*EVENT_COLUMNS, "first_seen", "last_updated", "alerted_severity")
_PENDING_SQL = sql.SQL("""
SELECT {columns}
FROM marts.anomaly_events
WHERE acknowledged_at IS NULL
  AND (%(since)s::timestamptz IS NULL OR end_ts >= %(since)s)
  AND array_position(%(levels)s::text[], severity) >= %(min_rank)s
  AND (alerted_severity IS NULL
       OR array_position(%(levels)s::text[], severity)
          > array_position(%(levels)s::text[], alerted_severity))
ORDER BY first_seen, event_id
FOR UPDATE SKIP LOCKED
""").format(columns=sql.SQL(", ").join(map(sql.Identifier, _PENDING_COLUMNS)))


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
    """What one call queued, and what each channel delivered, retries and gave up."""

    queued: list[Alert] = field(default_factory=list)  # messages written to the outbox now
    events: int = 0  # events recorded as alerted: the messages' and their related events
    mqtt: ChannelReport = field(default_factory=lambda: ChannelReport("mqtt", 0.0))
    webhook: ChannelReport = field(default_factory=lambda: ChannelReport("webhook", 0.0))

    @property
    def channels(self) -> tuple[ChannelReport, ChannelReport]:
        return (self.mqtt, self.webhook)

    def did_something(self) -> bool:
        """Anything queued, attempted or given up by this call."""
        return bool(self.queued) or any(c.attempted or c.failed for c in self.channels)

    def summary(self) -> str:
        new = sum(a.status == "new" for a in self.queued)
        text = f"{len(self.queued)} alerts ({new} new, {len(self.queued) - new} escalated)"
        if self.events > len(self.queued):
            text += f" covering {self.events} events"
        for c in self.channels:
            if c.attempted or c.failed or c.retrying:
                text += (
                    f"; {c.channel}: {c.delivered} delivered, {c.retrying} retrying, "
                    f"{c.failed} failed"
                )
                if c.attempt_errors:
                    text += f" (last error {c.attempt_errors[-1]})"
        return text

    def metadata(self) -> dict[str, int | float | str]:
        """Plain numbers per channel (Dagster plots them) and the summary."""
        numbers: dict[str, int | float | str] = {
            "alerts_queued": len(self.queued),
            "events_alerted": self.events,
        }
        for c in self.channels:
            numbers[f"{c.channel}_delivered"] = c.delivered
            numbers[f"{c.channel}_retrying"] = c.retrying
            numbers[f"{c.channel}_failed"] = c.failed
        numbers["summary"] = self.summary()
        if self.queued:
            numbers["alerts"] = ", ".join(
                f"{a.event_id} ({a.status} {a.severity})" for a in self.queued
            )
        return numbers

    def problems(self) -> list[str]:
        """One line per failed attempt and per delivery given up, for the log."""
        return [
            *(f"alert {c.channel} attempt failed: {e}" for c in self.channels
              for e in c.attempt_errors),
            *(f"alert {c.channel} delivery gave up: {e}" for c in self.channels
              for e in c.gave_up),
        ]  # fmt: skip


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
    """Alerts about one problem, together (``anomalies.events.problem_groups``: events of one
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
    """The group's first alert, its payload carrying the alert's stable ``alert_id`` and listing
    the others as ``related_events``."""
    lead = group[0]
    related = [
        {k: a.payload[k] for k in ("event_id", "status", "kind", "severity", "sentence")}
        for a in group[1:]
    ]
    payload = {
        "alert_id": alert_id_for(lead.event_id, lead.severity),
        **lead.payload,
        "related_events": related,
    }
    return Alert(lead.event_id, lead.topic, lead.status, lead.severity, payload)


def publish_alerts(
    conn: psycopg.Connection,
    mqtt_url: str,
    webhook_url: str | None = None,
    *,
    now: dt.datetime | None = None,
    min_severity: str = "low",
    stale_after: dt.timedelta | None = DEFAULT_STALE_AFTER,
    client_id: str | None = None,
    policy: DeliveryPolicy | None = None,
) -> AlertReport:
    """Queue every new or escalated, unacknowledged event of at least ``min_severity`` that
    ended after ``now - stale_after``, one message per problem (``group_alerts``: the other
    events of the problem ride along as ``related_events``), recording the events as alerted
    in the same transaction; then deliver what is due on each channel, each within its budget.

    A message gets a webhook delivery only when ``webhook_url`` is set as it is queued: a
    webhook configured later receives the alerts from then on, not the history."""
    now = now or dt.datetime.now(dt.UTC)
    policy = policy or DeliveryPolicy()
    report = AlertReport()
    channels = ["mqtt", "webhook"] if webhook_url else ["mqtt"]
    with conn.transaction():
        alerts = _pending(conn, now, min_severity, stale_after)
        for message in [_message(group) for group in group_alerts(alerts)] if alerts else []:
            if enqueue_alert(
                conn,
                message.payload["alert_id"],
                message.event_id,
                message.severity,
                message.status,
                message.topic,
                message.payload,
                channels,
                now,
            ):
                report.queued.append(message)
        with conn.cursor() as cur:
            cur.executemany(
                "UPDATE marts.anomaly_events SET alerted_severity = %s, alerted_at = %s "
                "WHERE event_id = %s",
                [(a.severity, now, a.event_id) for a in alerts],
            )
        report.events = len(alerts)
    report.mqtt = deliver_mqtt(
        conn, mqtt_url, policy, now, client_id or f"enms-alerts-{uuid.uuid4().hex[:8]}"
    )
    report.webhook = deliver_webhook(conn, webhook_url, policy, now)
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
