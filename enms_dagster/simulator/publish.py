"""Publish simulated telemetry over MQTT (QoS 1), as the machines themselves would."""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from enms_dagster.plant import Plant
from enms_dagster.settings import MqttAddress
from enms_dagster.simulator import SimulationTruth, simulate, to_payloads


@dataclass(frozen=True)
class PublishResult:
    messages: int
    readings: int
    truth: SimulationTruth
    seconds: float


def connect_publisher(mqtt_url: str, client_id: str) -> mqtt.Client:
    address = MqttAddress.from_url(mqtt_url)
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
    )
    if address.username:
        client.username_pw_set(address.username, address.password)
    client.max_inflight_messages_set(100)
    client.connect(address.host, address.port, keepalive=30)
    client.loop_start()
    return client


def publish_simulation(
    plant: Plant,
    start: dt.datetime,
    end: dt.datetime,
    mqtt_url: str,
    *,
    seed: int = 42,
    readings_per_message: int = 60,
    progress: Callable[[str], None] | None = None,
    client_id: str = "enms-simulator",
    backpressure: Callable[[int], None] | None = None,
) -> PublishResult:
    """Simulate [start, end) and publish every sample; return once the broker acknowledged all.

    ``backpressure(n)`` is called after every few hundred messages with the count published so
    far; a caller that can see the ingestor blocks there until it has caught up. A broker queues
    only so many messages for a subscriber that falls behind (Mosquitto: 1000 by default), so a
    backfill faster than the landing path must be paced, or the broker drops the excess.
    """
    truth = SimulationTruth()
    client = connect_publisher(mqtt_url, client_id)
    began = time.monotonic()
    messages = readings = 0
    pending: list[mqtt.MQTTMessageInfo] = []
    try:
        for series in simulate(plant, start, end, seed=seed, truth=truth):
            per_sample = len(series.metrics) + (series.state is not None)
            for payload in to_payloads(series, readings_per_message):
                pending.append(client.publish(series.topic, payload, qos=1))
                messages += 1
                if backpressure is not None and messages % 200 == 0:
                    backpressure(messages)
            readings += per_sample * len(series.ts)
            if len(pending) > 2000:
                _wait_all(pending)
                pending = []
            if progress:
                reached = dt.datetime.fromtimestamp(int(series.ts[-1]), dt.UTC)
                progress(
                    f"published {messages:,} messages, {readings:,} readings "
                    f"(up to {reached:%Y-%m-%d %H:%M} UTC)"
                )
        _wait_all(pending)
    finally:
        client.disconnect()
        client.loop_stop()
    return PublishResult(messages, readings, truth, time.monotonic() - began)


def _wait_all(infos: list[mqtt.MQTTMessageInfo], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    for info in infos:
        info.wait_for_publish(max(deadline - time.monotonic(), 0.1))
        if not info.is_published():
            raise TimeoutError(f"broker did not acknowledge message {info.mid} in {timeout_s} s")


def print_progress(line: str) -> None:
    sys.stderr.write("\r" + line[:110].ljust(110))
    sys.stderr.flush()


def run_realtime(
    plant: Plant,
    mqtt_url: str,
    *,
    seed: int = 42,
    tick_s: float = 1.0,
    stop: Callable[[], bool] = lambda: False,
    client_id: str = "enms-simulator",
) -> int:
    """Publish each sample when the wall clock reaches it, as real machines would; return the
    number of messages published when ``stop()`` turns true. Each UTC day is simulated once, so
    machine dynamics (pressure bands, cycles) run on unbroken and counters carry on overnight."""
    client = connect_publisher(mqtt_url, client_id)
    counters: dict[str, dict[str, float]] = {}
    published = 0
    day_series: list = []
    current_day = None
    last = time.time()
    try:
        while not stop():
            now = time.time()
            day = dt.datetime.fromtimestamp(now, dt.UTC).date()
            if day != current_day:
                start = dt.datetime.combine(day, dt.time(), dt.UTC)
                day_series = list(
                    simulate(
                        plant, start, start + dt.timedelta(days=1), seed=seed, counters=counters
                    )
                )
                current_day = day
            for series in day_series:
                due = (series.ts > last) & (series.ts <= now)
                if due.any():
                    for payload in to_payloads(_select(series, due), readings_per_message=1):
                        client.publish(series.topic, payload, qos=1)
                        published += 1
            last = now
            time.sleep(tick_s)
    finally:
        client.disconnect()
        client.loop_stop()
    return published


def _select(series, mask):
    from enms_dagster.simulator import MachineSeries

    return MachineSeries(
        series.machine,
        series.ts[mask],
        series.state[mask] if series.state is not None else None,
        {name: values[mask] for name, values in series.metrics.items()},
    )
