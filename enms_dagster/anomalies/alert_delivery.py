"""Delivery of alert messages from the outbox (``core.alert_outbox``): each channel (MQTT,
webhook) delivers every message on its own and marks it delivered only when the channel
acknowledged it (MQTT PUBACK, webhook 2xx). A failed attempt of any kind is recorded with its
error and retried on a later call with exponential back-off, until the delivery gives up after
``max_attempts`` attempts or ``give_up_after``. Every call is bounded by a time budget per
channel, whatever the other side does. No Dagster in it.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import psycopg
from psycopg.types.json import Jsonb

from enms_dagster.settings import MqttAddress

CHANNELS = ("mqtt", "webhook")
# uuid5 namespace of alert ids: the same event at the same severity is the same alert.
_ALERT_NAMESPACE = uuid.UUID("5b0c7c8e-3f4a-4d55-9a51-2f1e0a6c7d10")
_ERROR_CHARS = 500


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard a channel tries. Back-off after the n-th failed attempt is
    ``min(retry_base_s * 2**(n-1), retry_cap_s)``; a delivery gives up (``failed``) after
    ``max_attempts`` attempts or once its alert is older than ``give_up_after``. One call spends
    at most ``mqtt_budget_s`` on MQTT and ``webhook_budget_s`` on all webhook requests
    together (each request at most ``webhook_request_s``)."""

    retry_base_s: float = 60.0
    retry_cap_s: float = 3600.0
    max_attempts: int = 20
    give_up_after: dt.timedelta = dt.timedelta(hours=24)
    mqtt_budget_s: float = 10.0
    webhook_budget_s: float = 20.0
    webhook_request_s: float = 10.0

    def retry_delay(self, attempts: int) -> dt.timedelta:
        """The wait after the ``attempts``-th failed attempt (1, 2, ...)."""
        exponent = min(max(attempts, 1) - 1, 62)
        return dt.timedelta(seconds=min(self.retry_base_s * 2.0**exponent, self.retry_cap_s))

    def after_failure(self, attempts: int, age: dt.timedelta) -> dt.timedelta | None:
        """The wait before the next attempt after ``attempts`` failed ones on an alert of
        ``age``; None when the delivery gives up."""
        if attempts >= self.max_attempts or age >= self.give_up_after:
            return None
        return self.retry_delay(attempts)


def alert_id_for(event_id: str, severity: str) -> str:
    """The stable id of the alert about ``event_id`` at ``severity``: receivers dedupe by it."""
    return str(uuid.uuid5(_ALERT_NAMESPACE, f"{event_id}/{severity}"))


def describe_error(exc: BaseException) -> str:
    """The exception as one line of printable text (a garbled answer quoted in it may hold NUL
    bytes and control characters, which PostgreSQL text and logs do not take)."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    return text[:_ERROR_CHARS]


def alert_body(payload: dict) -> bytes:
    """The bytes every channel sends for a payload."""
    return json.dumps(payload).encode()


# --- channels -------------------------------------------------------------------------------


def publish_mqtt(
    mqtt_url: str, messages: list[tuple[str, bytes]], client_id: str, budget_s: float
) -> list[str | None]:
    """Publish each (topic, payload) with QoS 1 within ``budget_s`` in all; per message None
    when the broker acknowledged it (PUBACK), else why not. Never raises."""
    deadline = time.monotonic() + budget_s
    client = None
    try:
        address = MqttAddress.from_url(mqtt_url)
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        client.connect_timeout = budget_s
        if address.username:
            client.username_pw_set(address.username, address.password)
        connected = threading.Event()
        refused: list[str] = []

        def on_connect(client, userdata, flags, reason_code, properties=None) -> None:
            if reason_code.is_failure:
                refused.append(str(reason_code))
            connected.set()

        client.on_connect = on_connect
        client.connect(address.host, address.port, keepalive=30)
        client.loop_start()
        if not connected.wait(_left(deadline)):
            raise TimeoutError(f"no CONNACK from {address.host}:{address.port} in {budget_s} s")
        if refused:
            raise ConnectionRefusedError(f"broker {address.host}:{address.port}: {refused[0]}")
        infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
        results: list[str | None] = []
        for info in infos:
            try:
                info.wait_for_publish(_left(deadline))
                acked = info.is_published()
            except Exception as exc:  # not queued, or the connection broke
                results.append(describe_error(exc))
                continue
            results.append(None if acked else f"no PUBACK within the {budget_s} s budget")
        return results
    except Exception as exc:
        return [describe_error(exc)] * len(messages)
    finally:
        if client is not None:
            try:
                client.disconnect()
            except Exception:  # noqa: S110 - closing a client that never connected
                pass
            client.loop_stop()


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.01)


def post_webhook(url: str, body: bytes, alert_id: str, timeout_s: float) -> None:
    """POST ``body`` as JSON with ``Idempotency-Key: alert_id``; raise unless a 2xx status
    arrives within ``timeout_s`` in all (connect, send and the whole status line and headers,
    however slowly the server drips them)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"webhook URL must be http(s)://host/..., not {url!r}")
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname, parts.port, timeout=timeout_s)
    expired = threading.Event()

    def cut() -> None:  # a deadline on the whole exchange, not on each socket read
        expired.set()
        sock = connection.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(timeout_s, cut)
    timer.daemon = True
    timer.start()
    try:
        connection.request(
            "POST",
            (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
            body=body,
            headers={"Content-Type": "application/json", "Idempotency-Key": alert_id},
        )
        response = connection.getresponse()
        status, reason = response.status, response.reason
    except Exception as exc:
        if expired.is_set():
            raise TimeoutError(f"no complete answer within {timeout_s:.1f} s") from exc
        raise
    finally:
        timer.cancel()
        connection.close()
    if not 200 <= status < 300:
        raise OSError(f"webhook answered HTTP {status} {reason}".rstrip())


# --- the outbox -----------------------------------------------------------------------------


@dataclass
class ChannelReport:
    """What one call did on one channel. ``retrying`` counts the channel's deliveries still
    pending afterwards (waiting for back-off or for budget), ``failed`` those it gave up now."""

    channel: str
    budget_s: float
    delivered: int = 0
    attempt_errors: list[str] = field(default_factory=list)  # "alert_id: error", this call
    gave_up: list[str] = field(default_factory=list)  # "alert_id (event): last error"
    deferred: int = 0  # due, but the budget was spent before their turn
    retrying: int = 0

    @property
    def failed(self) -> int:
        return len(self.gave_up)

    @property
    def attempted(self) -> int:
        return self.delivered + len(self.attempt_errors)


_INSERT_ALERT = """
INSERT INTO core.alert_outbox (alert_id, event_id, severity, status, topic, payload, created_at)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (alert_id) DO NOTHING
RETURNING alert_id
"""

_DUE = """
SELECT d.alert_id::text, d.attempts, o.event_id, o.topic, o.payload, o.created_at
FROM core.alert_deliveries d JOIN core.alert_outbox o USING (alert_id)
WHERE d.channel = %(channel)s AND d.state = 'pending' AND d.next_attempt_at <= %(now)s
  AND NOT (d.alert_id::text = ANY(%(tried)s))
ORDER BY d.next_attempt_at, o.created_at, d.alert_id
LIMIT %(limit)s
FOR UPDATE OF d SKIP LOCKED
"""


@dataclass(frozen=True)
class _Due:
    alert_id: str
    attempts: int
    event_id: str
    topic: str
    payload: dict
    created_at: dt.datetime


def enqueue_alert(
    conn: psycopg.Connection,
    alert_id: str,
    event_id: str,
    severity: str,
    status: str,
    topic: str,
    payload: dict,
    channels: list[str],
    now: dt.datetime,
) -> bool:
    """Write the message and a pending delivery per channel, inside the caller's transaction;
    False when this alert is already in the outbox (the same event at the same severity)."""
    inserted = conn.execute(
        _INSERT_ALERT,
        (alert_id, event_id, severity, status, topic, Jsonb(payload), now),
    ).fetchone()
    if inserted is None:
        return False
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO core.alert_deliveries (alert_id, channel, next_attempt_at) "
            "VALUES (%s, %s, %s)",
            [(alert_id, channel, now) for channel in channels],
        )
    return True


def _due(conn: psycopg.Connection, channel: str, now, tried: list[str], limit: int) -> list[_Due]:
    cur = conn.execute(_DUE, {"channel": channel, "now": now, "tried": tried, "limit": limit})
    return [_Due(*row) for row in cur.fetchall()]


def _record(
    conn: psycopg.Connection,
    channel: str,
    due: _Due,
    error: str | None,
    policy: DeliveryPolicy,
    now: dt.datetime,
    report: ChannelReport,
) -> None:
    attempts = due.attempts + 1
    if error is None:
        report.delivered += 1
        conn.execute(
            "UPDATE core.alert_deliveries SET state = 'delivered', attempts = %s, "
            "last_attempt_at = %s, delivered_at = %s WHERE alert_id = %s AND channel = %s",
            (attempts, now, now, due.alert_id, channel),
        )
        return
    report.attempt_errors.append(f"{due.alert_id}: {error}")
    wait = policy.after_failure(attempts, now - due.created_at)
    if wait is None:
        report.gave_up.append(f"{due.alert_id} ({due.event_id}): {error}")
    conn.execute(
        "UPDATE core.alert_deliveries SET state = %s, attempts = %s, last_attempt_at = %s, "
        "last_error = %s, next_attempt_at = %s WHERE alert_id = %s AND channel = %s",
        (
            "failed" if wait is None else "pending",
            attempts,
            now,
            error,
            now + (wait or dt.timedelta(0)),
            due.alert_id,
            channel,
        ),
    )


def _give_up_old(
    conn: psycopg.Connection, channel: str, policy: DeliveryPolicy, now, report: ChannelReport
) -> None:
    """Deliveries of alerts older than ``give_up_after`` fail even when never attempted (the
    channel was unconfigured since, or always out of budget)."""
    rows = conn.execute(
        "UPDATE core.alert_deliveries d SET state = 'failed', "
        "  last_error = coalesce(d.last_error, 'never attempted') "
        "FROM core.alert_outbox o "
        "WHERE o.alert_id = d.alert_id AND d.channel = %s AND d.state = 'pending' "
        "  AND o.created_at <= %s "
        "RETURNING d.alert_id::text, o.event_id, d.last_error",
        (channel, now - policy.give_up_after),
    ).fetchall()
    report.gave_up += [f"{a} ({e}): {err}" for a, e, err in rows]


def _count_pending(conn: psycopg.Connection, channel: str) -> int:
    return conn.execute(
        "SELECT count(*) FROM core.alert_deliveries WHERE channel = %s AND state = 'pending'",
        (channel,),
    ).fetchone()[0]


def deliver_mqtt(
    conn: psycopg.Connection,
    mqtt_url: str,
    policy: DeliveryPolicy,
    now: dt.datetime,
    client_id: str,
) -> ChannelReport:
    """Publish the due MQTT deliveries in one connection within ``policy.mqtt_budget_s``."""
    report = ChannelReport("mqtt", policy.mqtt_budget_s)
    with conn.transaction():
        _give_up_old(conn, "mqtt", policy, now, report)
    with conn.transaction():
        due = _due(conn, "mqtt", now, [], limit=10_000)
        if due:
            messages = [(d.topic, alert_body(d.payload)) for d in due]
            errors = publish_mqtt(mqtt_url, messages, client_id, policy.mqtt_budget_s)
            for item, error in zip(due, errors, strict=True):
                _record(conn, "mqtt", item, error, policy, now, report)
    report.retrying = _count_pending(conn, "mqtt")
    return report


def deliver_webhook(
    conn: psycopg.Connection, url: str | None, policy: DeliveryPolicy, now: dt.datetime
) -> ChannelReport:
    """POST the due webhook deliveries one by one until ``policy.webhook_budget_s`` is spent;
    the rest stay due for the next call. Without a URL nothing is attempted (old deliveries
    still give up by age)."""
    report = ChannelReport("webhook", policy.webhook_budget_s)
    with conn.transaction():
        _give_up_old(conn, "webhook", policy, now, report)
    deadline = time.monotonic() + policy.webhook_budget_s
    tried: list[str] = []
    while url:
        left = deadline - time.monotonic()
        with conn.transaction():
            if left <= 0:
                report.deferred = len(_due(conn, "webhook", now, tried, limit=10_000))
                break
            due = _due(conn, "webhook", now, tried, limit=1)
            if not due:
                break
            item = due[0]
            tried.append(item.alert_id)
            try:
                body = alert_body(item.payload)
                post_webhook(url, body, item.alert_id, min(policy.webhook_request_s, left))
                error = None
            except Exception as exc:  # any failure is a failed attempt, recorded
                error = describe_error(exc)
            _record(conn, "webhook", item, error, policy, now, report)
    report.retrying = _count_pending(conn, "webhook")
    return report


def delivery_status(conn: psycopg.Connection, limit: int = 20) -> list[str]:
    """Lines for an operator: per channel the deliveries by state, then the undelivered ones
    (failed first) with their attempts and last error."""
    lines = []
    counts = dict.fromkeys(CHANNELS, None)
    for channel, state, n in conn.execute(
        "SELECT channel, state, count(*) FROM core.alert_deliveries GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall():
        counts[channel] = {**(counts[channel] or {}), state: n}
    for channel, by_state in counts.items():
        by_state = by_state or {}
        lines.append(
            f"{channel}: {by_state.get('delivered', 0)} delivered, "
            f"{by_state.get('pending', 0)} pending, {by_state.get('failed', 0)} failed"
        )
    for row in conn.execute(
        "SELECT d.state, d.channel, d.alert_id::text, o.event_id, d.attempts, d.next_attempt_at, "
        "       d.last_error "
        "FROM core.alert_deliveries d JOIN core.alert_outbox o USING (alert_id) "
        "WHERE d.state <> 'delivered' "
        "ORDER BY d.state = 'pending', o.created_at DESC LIMIT %s",
        (limit,),
    ).fetchall():
        state, channel, alert_id, event_id, attempts, next_at, error = row
        when = f", next try {next_at:%Y-%m-%d %H:%M:%S %Z}" if state == "pending" else ""
        lines.append(
            f"{state} {channel} {alert_id} ({event_id}): {attempts} attempts{when}; "
            f"last error: {error or '-'}"
        )
    return lines
