"""Publish simulated telemetry over MQTT (QoS 1), as the machines themselves would."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from enms_dagster.plant import Plant
from enms_dagster.progress import ProgressCallback
from enms_dagster.settings import MqttAddress
from enms_dagster.simulator import MachineSeries, SimulationTruth, simulate, to_payloads
from enms_dagster.simulator.faults import EfficiencyMeasure, FaultLabel


@dataclass(frozen=True)
class PublishResult:
    messages: int
    readings: int
    truth: SimulationTruth
    seconds: float


class AckTracker:
    """Counts the broker's PUBACKs by message id. Unlike ``MQTTMessageInfo.is_published`` it
    keeps waiting across a reconnect: paho sends again what was published while disconnected."""

    def __init__(self, client: mqtt.Client) -> None:
        self._acked: set[int] = set()
        self._cond = threading.Condition()
        client.on_publish = self._on_publish

    def _on_publish(self, client, userdata, mid, reason_code=None, properties=None) -> None:
        with self._cond:
            self._acked.add(mid)
            self._cond.notify_all()

    def wait(self, infos: list[mqtt.MQTTMessageInfo], timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            for info in infos:
                while info.mid not in self._acked:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError(
                            f"broker did not acknowledge message {info.mid} in {timeout_s} s"
                        )
                    self._cond.wait(min(remaining, 0.5))
                self._acked.discard(info.mid)


def connect_publisher(
    mqtt_url: str, client_id: str, persistent_session: bool = False
) -> tuple[mqtt.Client, AckTracker]:
    """A started QoS 1 publisher and its PUBACK tracker."""
    address = MqttAddress.from_url(mqtt_url)
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=not persistent_session,
        protocol=mqtt.MQTTv311,
    )
    if address.username:
        client.username_pw_set(address.username, address.password)
    client.max_inflight_messages_set(100)
    client.reconnect_delay_set(min_delay=0.2, max_delay=5)
    tracker = AckTracker(client)
    client.connect(address.host, address.port, keepalive=30)
    client.loop_start()
    return client, tracker


def publish_simulation(
    plant: Plant,
    start: dt.datetime,
    end: dt.datetime,
    mqtt_url: str,
    *,
    seed: int = 42,
    readings_per_message: int = 60,
    progress: ProgressCallback | None = None,
    client_id: str = "enms-simulator",
    backpressure: Callable[[int], None] | None = None,
    faults: Sequence[FaultLabel] = (),
    measures: Sequence[EfficiencyMeasure] = (),
    counters: dict[str, dict[str, float]] | None = None,
) -> PublishResult:
    """Simulate [start, end) and publish every sample; return once the broker acknowledged all.
    ``counters`` continues the energy and parts counters of an earlier simulation (see
    ``simulate``).

    ``backpressure(n)`` is called after every few hundred messages with the count published so
    far; a caller that can see the ingestor blocks there until it has caught up. A broker queues
    only so many messages for a subscriber that falls behind (Mosquitto: 1000 by default), so a
    backfill faster than the landing path must be paced, or the broker drops the excess.
    """
    truth = SimulationTruth()
    span = (end - start).total_seconds()
    client, acks = connect_publisher(mqtt_url, client_id)
    began = time.monotonic()
    messages = readings = 0
    pending: list[mqtt.MQTTMessageInfo] = []
    try:
        stream = simulate(
            plant, start, end, seed=seed, truth=truth, faults=faults, measures=measures,
            counters=counters,
        )  # fmt: skip
        for series in stream:
            per_sample = len(series.metrics) + (series.state is not None)
            for payload in to_payloads(series, readings_per_message):
                pending.append(client.publish(series.topic, payload, qos=1))
                messages += 1
                if backpressure is not None and messages % 200 == 0:
                    backpressure(messages)
            readings += per_sample * len(series.ts)
            if len(pending) > 2000:
                acks.wait(pending)
                pending = []
            if progress:
                reached = dt.datetime.fromtimestamp(int(series.ts[-1]), dt.UTC)
                progress(
                    min((reached - start).total_seconds() / span, 1.0),
                    readings,
                    f"{messages:,} messages, up to {reached:%Y-%m-%d %H:%M} UTC",
                )
        acks.wait(pending)
    finally:
        client.disconnect()
        client.loop_stop()
    return PublishResult(messages, readings, truth, time.monotonic() - began)


def run_realtime(
    plant: Plant,
    mqtt_url: str,
    *,
    seed: int = 42,
    tick_s: float = 1.0,
    stop: Callable[[], bool] = lambda: False,
    client_id: str = "enms-simulator",
    faults: Sequence[FaultLabel] = (),
    measures: Sequence[EfficiencyMeasure] = (),
) -> int:
    """Publish each sample when the wall clock reaches it, as real machines would; return the
    number of messages published when ``stop()`` turns true."""
    return run_accelerated(
        plant,
        mqtt_url,
        start=dt.datetime.now(dt.UTC),
        speed=1.0,
        seed=seed,
        tick_s=tick_s,
        stop=stop,
        client_id=client_id,
        faults=faults,
        measures=measures,
    )


def run_accelerated(
    plant: Plant,
    mqtt_url: str,
    *,
    start: dt.datetime,
    speed: float,
    seed: int = 42,
    tick_s: float = 1.0,
    stop: Callable[[], bool] = lambda: False,
    client_id: str = "enms-simulator",
    faults: Sequence[FaultLabel] = (),
    measures: Sequence[EfficiencyMeasure] = (),
    wall_clock: Callable[[], float] = time.time,
    progress: ProgressCallback | None = None,
) -> int:
    """Publish simulated time ``speed`` times faster than the wall clock, from ``start`` (in the
    past), until it catches up with now; from then on in real time. Each UTC day is simulated
    once, so machine dynamics run on unbroken and counters carry on overnight. Returns the
    number of messages published when ``stop()`` turns true. ``progress`` hears every tick
    (no fraction: the run has no end)."""
    client, _ = connect_publisher(mqtt_url, client_id)
    counters: dict[str, dict[str, float]] = {}
    published = 0
    day_series: list[MachineSeries] = []
    current_day = None
    began = time.monotonic()
    last = start.timestamp()
    batch = 1 if speed <= 1 else 60
    try:
        while not stop():
            now = min(start.timestamp() + (time.monotonic() - began) * speed, wall_clock())
            now = min(now, last + 86400)  # at most a day per tick: no day is skipped
            day = dt.datetime.fromtimestamp(now, dt.UTC).date()
            if day != current_day:
                # the samples left of the previous day first, then the new day's
                for series in day_series:
                    published += _publish_due(client, series, last, now, batch)
                first = dt.datetime.combine(day, dt.time(), dt.UTC)
                day_series = list(
                    simulate(
                        plant,
                        first,
                        first + dt.timedelta(days=1),
                        seed=seed,
                        counters=counters,
                        faults=faults,
                        measures=measures,
                    )
                )
                current_day = day
            for series in day_series:
                published += _publish_due(client, series, last, now, batch)
            last = now
            if progress:
                at = dt.datetime.fromtimestamp(now, dt.UTC)
                progress(None, published, f"simulated time {at:%Y-%m-%d %H:%M:%S} UTC")
            time.sleep(tick_s)
    finally:
        client.disconnect()
        client.loop_stop()
    return published


def _publish_due(client, series: MachineSeries, after: float, until: float, batch: int) -> int:
    due = (series.ts > after) & (series.ts <= until)
    if not due.any():
        return 0
    count = 0
    for payload in to_payloads(_select(series, due), readings_per_message=batch):
        client.publish(series.topic, payload, qos=1)
        count += 1
    return count


def _select(series: MachineSeries, mask) -> MachineSeries:
    return MachineSeries(
        series.machine,
        series.ts[mask],
        series.state[mask] if series.state is not None else None,
        {name: values[mask] for name, values in series.metrics.items()},
    )
