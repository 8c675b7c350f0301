"""The MQTT ingestor: subscribes with QoS 1 on a persistent session and acknowledges a message
only after its readings (or its quarantine record) are committed.

Several ingestors are redundant, not a load-sharing group: each has its own session and gets
every message of its topics, and landing is idempotent, so any one of them alone lands
everything. (A shared subscription is not used: Mosquitto keeps routing a group's messages to
a member that died, and they are lost; docs/mqtt.md, "More than one ingestor".) Load is split
by topic: an ingestor can be limited to some sites.

The paho network thread only queues messages; a worker thread parses, lands and then acks.
If the database is down the worker keeps the batch, backs off and retries, and acks nothing
meanwhile, so the broker keeps (and after a crash redelivers) everything not yet committed.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
import psycopg

from enms_dagster.ingest.landing import (
    QuarantinedInput,
    land_batch,
    load_registry_view,
    quarantine_message,
)
from enms_dagster.ingest.payload import PlausibleTime, Reading, parse_message
from enms_dagster.settings import MqttAddress
from enms_dagster.warehouse import libpq_url

log = logging.getLogger(__name__)

TELEMETRY_TOPIC = "enms/+/+/telemetry"
HEARTBEAT_S = 5.0


def subscription_topics(sites: Sequence[str] = ()) -> list[str]:
    """The telemetry filters of an ingestor: every site's, or only those of the sites named
    (a partition of the plant; each partition needs its own redundant ingestors)."""
    for site in sites:
        if not site or any(c in site for c in "/+#\0"):
            raise ValueError(f"not a site id usable in a topic: {site!r}")
    if not sites:
        return [TELEMETRY_TOPIC]
    return [f"enms/{site}/+/telemetry" for site in sorted(set(sites))]


@dataclass
class IngestStats:
    messages_received: int = 0
    messages_committed: int = 0
    readings_inserted: int = 0
    readings_duplicate: int = 0
    quarantined: int = 0
    batches: int = 0
    landing_errors: int = 0
    last_commit_at: dt.datetime | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


@dataclass(frozen=True)
class _Message:
    topic: str
    payload: bytes
    mid: int
    qos: int


class Ingestor:
    def __init__(
        self,
        database_url: str,
        mqtt_url: str,
        *,
        client_id: str = "enms-ingestor",
        sites: Sequence[str] = (),
        max_batch_messages: int = 2000,
        max_batch_wait_s: float = 0.2,
        idle_gap_s: float = 0.01,
        registry_refresh_s: float = 30.0,
        persistent_session: bool = True,
        window: PlausibleTime | None = None,
    ) -> None:
        """``persistent_session=False`` is for short-lived in-process ingestors (the demo): the
        broker then neither keeps nor replays a session that outlives them. ``window`` is how
        far from now a reading may lie (default ``PlausibleTime()``)."""
        self.window = window or PlausibleTime()
        self.database_url = libpq_url(database_url)
        self.address = MqttAddress.from_url(mqtt_url)
        self.client_id = client_id
        self.topics = subscription_topics(sites)
        self.max_batch_messages = max_batch_messages
        self.max_batch_wait_s = max_batch_wait_s
        self.idle_gap_s = idle_gap_s
        self.started_at = dt.datetime.now(dt.UTC)
        self.registry_refresh_s = registry_refresh_s
        self.stats = IngestStats()
        self._queue: queue.Queue[_Message] = queue.Queue()
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._worker: threading.Thread | None = None
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=not persistent_session,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        if self.address.username:
            self._client.username_pw_set(self.address.username, self.address.password)
        self._client.max_inflight_messages_set(1000)
        self._client.reconnect_delay_set(min_delay=1, max_delay=10)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *args: self._subscribed.set()

    # paho network thread: never touches the database
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused connection: %s", reason_code)
            return
        if flags.session_present:
            log.info("resumed persistent session; broker redelivers unacknowledged messages")
        # Subscribing again on a resumed session is harmless (its queue stays) and gives it the
        # filters asked for now; filters it had before stay too (a new partition: new client id).
        client.subscribe([(topic, 1) for topic in self.topics])

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        self._queue.put(_Message(msg.topic, bytes(msg.payload), msg.mid, msg.qos))

    def start(self, wait_subscribed_s: float = 30.0) -> None:
        self._worker = threading.Thread(target=self._work, name="enms-ingest-worker", daemon=True)
        self._worker.start()
        self._client.connect(self.address.host, self.address.port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(wait_subscribed_s):
            raise TimeoutError(
                f"no subscription confirmed by {self.address.host}:{self.address.port} "
                f"within {wait_subscribed_s} s"
            )

    def stop(self, timeout_s: float = 30.0) -> None:
        """Land what is queued, then disconnect."""
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout_s)
        self._client.disconnect()
        self._client.loop_stop()

    def wait_for_messages(self, count: int, timeout_s: float) -> bool:
        """Block until ``count`` messages are committed (or the time runs out)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.stats.messages_committed >= count:
                return True
            time.sleep(0.05)
        return self.stats.messages_committed >= count

    # worker thread
    def _next_batch(self) -> list[_Message]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        # Collect until the flow pauses (the broker holds back more until we ack), the batch is
        # full, or it has waited long enough: a batch never delays the first message long.
        deadline = time.monotonic() + self.max_batch_wait_s
        while len(batch) < self.max_batch_messages:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(self._queue.get(timeout=min(self.idle_gap_s, remaining)))
            except queue.Empty:
                break
        return batch

    def _work(self) -> None:
        conn: psycopg.Connection | None = None
        registry, registry_at = None, 0.0
        heartbeat_at = 0.0
        backoff = 0.5
        pending: list[_Message] = []
        while True:
            if conn is not None and time.monotonic() - heartbeat_at > HEARTBEAT_S:
                try:
                    self._heartbeat(conn)
                    heartbeat_at = time.monotonic()
                except psycopg.OperationalError:
                    conn.close()
                    conn = None
            if not pending:
                if self._stop.is_set() and self._queue.empty():
                    break
                pending = self._next_batch()
                if not pending:
                    continue
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.database_url, autocommit=True)
                if heartbeat_at == 0.0:
                    self._heartbeat(conn)
                    heartbeat_at = time.monotonic()
                if registry is None or time.monotonic() - registry_at > self.registry_refresh_s:
                    registry, registry_at = load_registry_view(conn), time.monotonic()
                self._land(conn, registry, pending)
                pending = []
                backoff = 0.5
            except psycopg.OperationalError as exc:
                with self.stats.lock:
                    self.stats.landing_errors += 1
                log.warning("database unavailable (%s); retrying in %.1f s", exc, backoff)
                if conn is not None:
                    conn.close()
                conn = None
                if self._stop.wait(backoff) and self.stats.landing_errors > 3:
                    break  # stopping and the database is still down: the broker keeps the rest
                backoff = min(backoff * 2, 10.0)
        if conn is not None:
            conn.close()

    def _heartbeat(self, conn: psycopg.Connection) -> None:
        st = self.stats
        conn.execute(
            "INSERT INTO raw.ingestor_status (client_id, started_at, last_heartbeat, "
            "last_commit_at, messages_committed, readings_inserted, readings_duplicate, "
            "quarantined, queue_depth, landing_errors) "
            "VALUES (%s, %s, now(), %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (client_id) DO UPDATE SET started_at = EXCLUDED.started_at, "
            "last_heartbeat = now(), last_commit_at = EXCLUDED.last_commit_at, "
            "messages_committed = EXCLUDED.messages_committed, "
            "readings_inserted = EXCLUDED.readings_inserted, "
            "readings_duplicate = EXCLUDED.readings_duplicate, "
            "quarantined = EXCLUDED.quarantined, queue_depth = EXCLUDED.queue_depth, "
            "landing_errors = EXCLUDED.landing_errors",
            (
                self.client_id,
                self.started_at,
                st.last_commit_at,
                st.messages_committed,
                st.readings_inserted,
                st.readings_duplicate,
                st.quarantined,
                self._queue.qsize(),
                st.landing_errors,
            ),
        )

    def _land(self, conn: psycopg.Connection, registry, batch: list[_Message]) -> None:
        now = dt.datetime.now(dt.UTC)
        readings: list[Reading] = []
        quarantined: list[QuarantinedInput] = []
        for msg in batch:
            parsed = parse_message(msg.topic, msg.payload, registry, now, self.window)
            readings.extend(parsed.readings)
            record = quarantine_message(msg.topic, msg.payload, parsed)
            if record is not None:
                quarantined.append(record)
        result = land_batch(conn, readings, quarantined, source="mqtt", messages=len(batch))
        for msg in batch:
            if msg.qos > 0:
                self._client.ack(msg.mid, msg.qos)
        with self.stats.lock:
            self.stats.messages_received += len(batch)
            self.stats.messages_committed += len(batch)
            self.stats.readings_inserted += result.inserted
            self.stats.readings_duplicate += result.duplicates
            self.stats.quarantined += result.quarantined
            self.stats.batches += 1
            self.stats.last_commit_at = dt.datetime.now(dt.UTC)


def run_ingestor(database_url: str, mqtt_url: str, **kwargs) -> None:
    """Run until SIGINT/SIGTERM (the ``enms ingest`` command)."""
    import signal

    ingestor = Ingestor(database_url, mqtt_url, **kwargs)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    ingestor.start()
    topics = " ".join(ingestor.topics)
    print(f"ingesting {topics} as {ingestor.client_id} (Ctrl-C stops)", flush=True)
    while not done.wait(60):
        s = ingestor.stats
        log.warning(
            "committed %d messages, %d readings (%d duplicates), %d quarantined",
            s.messages_committed,
            s.readings_inserted,
            s.readings_duplicate,
            s.quarantined,
        )
    ingestor.stop()
