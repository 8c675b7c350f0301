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

The worker is crash-only: any other exception ends it, ``failure`` says why, and ``enms ingest``
exits non-zero so that its supervisor restarts it; a message that keeps killing the worker is
quarantined as ``poison`` (see ``ingest.attempts``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
import psycopg

from enms_dagster.db import libpq_url
from enms_dagster.ingest.attempts import (
    Suspect,
    begin_attempt,
    clear_suspect,
    fold_attempts,
    mark_poisoned,
    message_fingerprint,
    note_attempt_error,
    settle_attempt,
)
from enms_dagster.ingest.landing import (
    QuarantinedInput,
    land_batch,
    load_registry_view,
    quarantine_message,
)
from enms_dagster.ingest.payload import PlausibleTime, Reading, Rejection, parse_message
from enms_dagster.settings import MqttAddress, Settings

log = logging.getLogger(__name__)

TELEMETRY_TOPIC = "enms/+/+/telemetry"
HEARTBEAT_S = 5.0
EXIT_WORKER_DIED = 70  # the landing worker died: the heartbeat row's last_error says why
EXIT_NETWORK_DIED = 71  # the MQTT network loop died
# Errors after which landing the same batch again can succeed (a lost or refused connection, a
# deadlock, a serialization failure, a cancelled statement): the worker keeps the batch, backs off
# and retries. Any other exception ends the worker.
RETRYABLE = psycopg.OperationalError


class IngestorFailed(RuntimeError):
    """The landing worker died; ``__cause__`` is what killed it."""


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


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


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
        far from now a reading may lie (default: the settings', ``ENMS_READINGS_MAX_AGE_DAYS``
        and ``ENMS_READINGS_MAX_AHEAD_S``)."""
        self.window = window or Settings.from_env().readings_window()
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
        self._failure: BaseException | None = None
        self._suspects: dict[bytes, Suspect] | None = None  # loaded by the worker at start
        self._attempt: tuple[list[bytes], uuid.UUID] | None = None  # the landing under way
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

    @property
    def failure(self) -> BaseException | None:
        """What killed the landing worker (None while it runs or after a clean stop)."""
        return self._failure

    def wait_for_messages(self, count: int, timeout_s: float) -> bool:
        """Block until ``count`` messages are committed (or the time runs out); raise
        ``IngestorFailed`` as soon as the worker is dead, since then none will be."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.stats.messages_committed >= count:
                return True
            if self._failure is not None:
                raise IngestorFailed(f"the landing worker died: {_describe(self._failure)}") from (
                    self._failure
                )
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
        """The worker thread. It ends on any error that retrying cannot cure, after recording
        it (best effort) on the heartbeat row and on the landing under way."""
        try:
            self._land_until_stopped()
        except BaseException as exc:
            log.exception("the landing worker died")
            self.record_status("crashed", _describe(exc))
            self._failure = exc

    def _land_until_stopped(self) -> None:
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
                if self._suspects is None:
                    self._suspects = fold_attempts(conn, self.client_id)
                if registry is None or time.monotonic() - registry_at > self.registry_refresh_s:
                    registry, registry_at = load_registry_view(conn), time.monotonic()
                self._land_pending(conn, registry, pending)
                backoff = 0.5
            except RETRYABLE as exc:
                with self.stats.lock:
                    self.stats.landing_errors += 1
                log.warning("database unavailable (%s); retrying in %.1f s", exc, backoff)
                if conn is not None:
                    conn.close()
                conn = None
                if self._stop.wait(backoff) and self.stats.landing_errors > 3:
                    break  # stopping and the database is still down: the broker keeps the rest
                backoff = min(backoff * 2, 10.0)
            except BaseException:
                if conn is not None:
                    conn.close()
                raise
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._heartbeat(conn, "stopped")
            conn.close()

    def _heartbeat(
        self, conn: psycopg.Connection, state: str = "running", error: str | None = None
    ) -> None:
        st = self.stats
        conn.execute(
            "INSERT INTO raw.ingestor_status (client_id, started_at, last_heartbeat, "
            "last_commit_at, messages_committed, readings_inserted, readings_duplicate, "
            "quarantined, queue_depth, landing_errors, state, stopped_at, last_error) "
            "VALUES (%s, %s, now(), %s, %s, %s, %s, %s, %s, %s, %s, "
            "CASE WHEN %s = 'running' THEN NULL ELSE now() END, %s) "
            "ON CONFLICT (client_id) DO UPDATE SET started_at = EXCLUDED.started_at, "
            "last_heartbeat = now(), last_commit_at = EXCLUDED.last_commit_at, "
            "messages_committed = EXCLUDED.messages_committed, "
            "readings_inserted = EXCLUDED.readings_inserted, "
            "readings_duplicate = EXCLUDED.readings_duplicate, "
            "quarantined = EXCLUDED.quarantined, queue_depth = EXCLUDED.queue_depth, "
            "landing_errors = EXCLUDED.landing_errors, state = EXCLUDED.state, "
            "stopped_at = EXCLUDED.stopped_at, "
            "last_error = coalesce(EXCLUDED.last_error, raw.ingestor_status.last_error)",
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
                state,
                state,
                error,
            ),
        )

    def _land(
        self,
        conn: psycopg.Connection,
        registry,
        batch: list[_Message],
        settle: Callable[[psycopg.Connection], None] | None = None,
    ) -> None:
        now = dt.datetime.now(dt.UTC)
        readings: list[Reading] = []
        quarantined: list[QuarantinedInput] = []
        for msg in batch:
            parsed = parse_message(msg.topic, msg.payload, registry, now, self.window)
            readings.extend(parsed.readings)
            record = quarantine_message(msg.topic, msg.payload, parsed)
            if record is not None:
                quarantined.append(record)
        self._commit(conn, batch, readings, quarantined, settle)

    def _commit(
        self,
        conn: psycopg.Connection,
        batch: list[_Message],
        readings: list[Reading],
        quarantined: list[QuarantinedInput],
        settle: Callable[[psycopg.Connection], None] | None,
    ) -> None:
        """Land in one transaction (with ``settle``'s bookkeeping), then acknowledge."""
        with conn.transaction():
            if settle is not None:
                settle(conn)
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

    def _land_pending(self, conn: psycopg.Connection, registry, pending: list[_Message]) -> None:
        """Land ``pending`` in order, removing each part once committed and acknowledged (so a
        retry after a lost connection starts where it stopped). Messages that were present when a
        worker died go one by one; the others together, under one attempt record."""
        suspects = self._suspects or {}
        fingerprints = [message_fingerprint(m.topic, m.payload) for m in pending]
        while pending:
            if fingerprints[0] in suspects:
                self._land_suspect(conn, registry, pending[0], fingerprints[0], suspects)
                n = 1
            else:
                n = next((i for i, f in enumerate(fingerprints) if f in suspects), len(pending))
                self._land_attempt(conn, registry, pending[:n], fingerprints[:n])
            del pending[:n], fingerprints[:n]

    def _land_attempt(
        self,
        conn: psycopg.Connection,
        registry,
        batch: list[_Message],
        fingerprints: list[bytes],
        settle_also: Callable[[psycopg.Connection], None] | None = None,
    ) -> None:
        """Land ``batch`` under an attempt record, reusing the record of a landing of the same
        messages that a lost connection interrupted (that one did not die)."""
        if self._attempt is None or self._attempt[0] != fingerprints:
            self._attempt = (fingerprints, uuid.uuid4())
        attempt_id = self._attempt[1]
        begin_attempt(conn, self.client_id, attempt_id, fingerprints)

        def settle(c: psycopg.Connection) -> None:
            settle_attempt(c, attempt_id)
            if settle_also is not None:
                settle_also(c)

        self._land(conn, registry, batch, settle)
        self._attempt = None

    def _land_suspect(
        self,
        conn: psycopg.Connection,
        registry,
        msg: _Message,
        fingerprint: bytes,
        suspects: dict[bytes, Suspect],
    ) -> None:
        """A message present when a worker died: quarantined unparsed as ``poison`` once it was
        there ``POISON_AFTER`` times, else landed on its own (and cleared if that commits)."""
        suspect = suspects[fingerprint]
        if suspect.is_poison:
            rejection = Rejection("poison", suspect.poison_detail)
            self._commit(
                conn,
                [msg],
                [],
                [QuarantinedInput(msg.topic, msg.payload, rejection)],
                lambda c: mark_poisoned(c, fingerprint),
            )
            log.error("quarantined a poison message on %s: %s", msg.topic, suspect.poison_detail)
            return
        self._land_attempt(
            conn, registry, [msg], [fingerprint], lambda c: clear_suspect(c, fingerprint)
        )
        del suspects[fingerprint]

    def record_status(self, state: str, error: str | None = None) -> None:
        """Write the heartbeat row with ``state`` (and the error on the landing under way, if
        any), best effort on a connection of its own: for when the worker's is unusable."""
        try:
            with psycopg.connect(self.database_url, autocommit=True, connect_timeout=3) as conn:
                conn.execute("SET statement_timeout = '3s'")
                if error is not None and self._attempt is not None:
                    note_attempt_error(conn, self._attempt[1], error)
                self._heartbeat(conn, state, error)
        except psycopg.Error as exc:
            log.warning("could not record the ingestor's state %r: %s", state, exc)


def run_ingestor(database_url: str, mqtt_url: str, **kwargs) -> int:
    """Run until SIGINT/SIGTERM (the ``enms ingest`` command) and return 0; or, as soon as the
    landing worker or the MQTT network loop dies, record why in ``raw.ingestor_status`` and
    return ``EXIT_WORKER_DIED`` / ``EXIT_NETWORK_DIED`` so that a supervisor restarts it."""
    import signal

    ingestor = Ingestor(database_url, mqtt_url, **kwargs)
    done = threading.Event()
    thread_errors: list[BaseException] = []

    def on_thread_exception(args: threading.ExceptHookArgs) -> None:
        threading.__excepthook__(args)
        thread_errors.append(args.exc_value or RuntimeError(f"{args.exc_type} in {args.thread}"))
        done.set()

    threading.excepthook = on_thread_exception  # the worker catches its own; this is paho's
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    ingestor.start()
    topics = " ".join(ingestor.topics)
    print(f"ingesting {topics} as {ingestor.client_id} (Ctrl-C stops)", flush=True)
    logged_at = time.monotonic()
    while not done.wait(0.5) and ingestor.failure is None:
        if time.monotonic() - logged_at >= 60:
            logged_at = time.monotonic()
            s = ingestor.stats
            log.warning(
                "committed %d messages, %d readings (%d duplicates), %d quarantined",
                s.messages_committed,
                s.readings_inserted,
                s.readings_duplicate,
                s.quarantined,
            )
    if ingestor.failure is not None:
        log.error("exiting: the landing worker died (%s)", _describe(ingestor.failure))
        return EXIT_WORKER_DIED  # the worker recorded why before it ended
    if thread_errors:
        ingestor.record_status("crashed", f"MQTT network loop: {_describe(thread_errors[0])}")
        log.error("exiting: the MQTT network loop died (%s)", _describe(thread_errors[0]))
        return EXIT_NETWORK_DIED
    ingestor.stop()
    return 0
