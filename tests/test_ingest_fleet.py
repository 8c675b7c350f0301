"""More than one ingestor: redundant members, each with its own persistent session, every one
landing every message of its topics; a member that dies for good costs nothing. Against a
Mosquitto of the test's own (the project's settings) and the real PostgreSQL."""

from __future__ import annotations

import itertools
import os
import signal
import statistics
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enms_dagster.cli import main
from enms_dagster.ingest.landing import QuarantinedInput, quarantine_fingerprint
from enms_dagster.ingest.payload import Rejection
from enms_dagster.ingest.service import Ingestor, subscription_topics
from tests.test_ingest_faults import TOPIC, Publisher, landed, reading, wait_landed


def ingest_process(database_url: str, mqtt_url: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "ENMS_DATABASE_URL": database_url, "ENMS_MQTT_URL": mqtt_url}
    return subprocess.Popen(
        [sys.executable, "-m", "enms_dagster.cli", "ingest", *args],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def bad(i: int) -> bytes:
    """A message the ingestor must quarantine (malformed JSON), distinct per number."""
    return b'{"ts": "2026-03-10T00:00:00Z", "n": %d, "metrics": {' % i


def report_gap(conn, number: list[int | None], sent_at: list[float], killed_at: float) -> None:
    """Print how long readings waited for their commit (batch start) before and after the kill,
    and the longest pause in landing after it: the gap a member's death opens. Printed, not
    asserted (tests never assert wall-clock times); docs/mqtt.md quotes these figures."""
    committed = dict(
        conn.execute(
            "SELECT r.value::int, extract(epoch FROM b.committed_at)::float8 FROM raw.readings r "
            "JOIN raw.ingest_batches b USING (batch_id) WHERE r.machine_id = 'HYD-01'"
        ).fetchall()
    )
    waits: dict[str, list[float]] = {"before": [], "after": []}
    for n, t in zip(number, sent_at, strict=True):
        if n is not None:
            waits["after" if t >= killed_at else "before"].append(committed[n] - t)
    commits = sorted({t for t in committed.values() if t >= killed_at} | {killed_at})
    pause = max(b - a for a, b in itertools.pairwise(commits)) if len(commits) > 1 else 0.0
    w = {k: sorted(v) or [0.0] for k, v in waits.items()}
    errors = conn.execute(
        "SELECT client_id, landing_errors FROM raw.ingestor_status ORDER BY client_id"
    ).fetchall()
    print(
        f"\nfleet of 2, one SIGKILLed: {len(waits['after'])} readings published after the kill. "
        f"Wait for commit, median / max: before the kill {statistics.median(w['before']):.2f} / "
        f"{w['before'][-1]:.2f} s, after {statistics.median(w['after']):.2f} / "
        f"{w['after'][-1]:.2f} s; longest pause in landing after the kill {pause:.2f} s; "
        f"all landed {max(committed.values()) - sent_at[-1]:.2f} s after the last publish; "
        f"landing errors {errors}"
    )


FLEET_N = 30_000
BAD_EVERY = 1000  # one quarantined message per this many readings


@pytest.mark.integration
def test_one_of_two_ingestors_killed_for_good_loses_and_doubles_nothing(db, broker):
    database_url, conn = db
    members = [
        ingest_process(database_url, broker.url, "--client-id", f"fleet-{name}")
        for name in ("a", "b")
    ]
    victim, survivor = members
    try:
        for proc in members:
            assert "ingesting" in proc.stdout.readline()  # subscribed before anything is sent
        stream, number = [], []  # what is published, and the reading number of each message
        for i in range(FLEET_N):
            stream.append((TOPIC, reading(i)))
            number.append(i)
            if i % BAD_EVERY == 0:
                stream.append((TOPIC, bad(i)))
                number.append(None)
        publisher = Publisher(broker.url)
        sent_at: list[float] = []

        def publish() -> None:
            infos = []
            for n, (topic, payload) in enumerate(stream, 1):
                sent_at.append(time.time())
                infos.append(publisher.client.publish(topic, payload, qos=1))
                if n % 200 == 0:
                    time.sleep(0.05)
            publisher.acks.wait(infos, timeout_s=120)

        sender = threading.Thread(target=publish)
        sender.start()
        deadline = time.monotonic() + 60
        while landed(conn)[0] < FLEET_N // 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        killed_at = time.time()
        assert landed(conn)[0] < FLEET_N * 3 // 4, "the kill must land mid-stream"
        sender.join(120)
        publisher.close()
        assert wait_landed(conn, FLEET_N, timeout_s=60) == (FLEET_N, FLEET_N)
        (quarantined,) = conn.execute("SELECT count(*) FROM raw.quarantine").fetchone()
        assert quarantined == FLEET_N // BAD_EVERY
        report_gap(conn, number, sent_at, killed_at)
        assert survivor.poll() is None
    finally:
        for proc in members:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(20)


@pytest.mark.integration
def test_two_redundant_ingestors_each_land_everything_once(db, broker):
    database_url, conn = db
    ingestors = [Ingestor(database_url, broker.url, client_id=f"ingest-{x}") for x in "ab"]
    for ingestor in ingestors:
        ingestor.start()
    publisher = Publisher(broker.url)
    n = 8000
    try:
        publisher.publish([(TOPIC, reading(i)) for i in range(n)] + [(TOPIC, bad(0))])
        for ingestor in ingestors:
            assert ingestor.wait_for_messages(n + 1, 60)
        assert landed(conn) == (n, n)
        assert sum(i.stats.readings_inserted for i in ingestors) == n
        assert sum(i.stats.readings_duplicate for i in ingestors) == n
        assert sum(i.stats.quarantined for i in ingestors) == 1
        (rows,) = conn.execute("SELECT count(*) FROM raw.quarantine").fetchone()
        assert rows == 1
    finally:
        publisher.close()
        for ingestor in ingestors:
            ingestor.stop()


@pytest.mark.integration
def test_an_ingestor_limited_to_a_site_gets_only_that_sites_telemetry(db, broker):
    database_url, conn = db
    ingestor = Ingestor(database_url, broker.url, client_id="ingest-site", sites=["plant-a"])
    ingestor.start()
    publisher = Publisher(broker.url)
    try:
        other = [("enms/plant-b/HYD-01/telemetry", reading(i)) for i in range(50)]
        own = [(TOPIC, reading(i)) for i in range(50)]
        # per publisher the broker keeps the order: once the last one is in, all are
        publisher.publish([m for pair in zip(other, own, strict=True) for m in pair])
        assert ingestor.wait_for_messages(50, 30)
        time.sleep(0.5)
        assert ingestor.stats.messages_committed == 50
        assert landed(conn) == (50, 50)
        (rows,) = conn.execute("SELECT count(*) FROM raw.quarantine").fetchone()
        assert rows == 0  # plant-b's messages would be topic_mismatch had they come
    finally:
        publisher.close()
        ingestor.stop()


def test_the_share_group_option_is_refused_with_the_reason(capsys):
    assert main(["ingest", "--share-group", "ingest"]) == 2
    err = capsys.readouterr().err
    assert "--share-group is withdrawn" in err and "--client-id" in err


def test_site_filters_take_only_site_ids_usable_in_a_topic():
    assert subscription_topics() == ["enms/+/+/telemetry"]
    assert subscription_topics(["b", "a", "b"]) == ["enms/a/+/telemetry", "enms/b/+/telemetry"]
    for bad_site in ("", "a/b", "+", "#", "a\0"):
        with pytest.raises(ValueError):
            subscription_topics([bad_site])


@pytest.mark.integration
def test_a_resumed_session_gets_the_filters_asked_for_now(db, broker):
    database_url, conn = db
    before = Ingestor(database_url, broker.url, client_id="ingest-moved", sites=["plant-z"])
    before.start()
    before.stop()  # its persistent session stays, subscribed to plant-z only
    after = Ingestor(database_url, broker.url, client_id="ingest-moved")
    after.start()
    publisher = Publisher(broker.url)
    try:
        publisher.publish([(TOPIC, reading(i)) for i in range(20)])
        assert after.wait_for_messages(20, 30)
        assert landed(conn) == (20, 20)
    finally:
        publisher.close()
        after.stop()


texts = st.text(max_size=20)
inputs = st.tuples(
    st.sampled_from(["mqtt", "import"]) | texts,
    st.none() | texts,
    texts,
    texts,
    st.none() | st.binary(max_size=20),
)  # source, topic, reason, detail, payload


@given(inputs, inputs)
def test_two_rejections_share_a_fingerprint_only_when_they_are_the_same(a, b):
    """The same rejection of the same input, whatever an MQTT detail says about the clock of
    the ingestor that judged it."""

    def fingerprint(source, topic, reason, detail, payload):
        return quarantine_fingerprint(
            source, QuarantinedInput(topic, payload, Rejection(reason, detail))
        )

    def identity(source, topic, reason, detail, payload):
        return (source, topic, reason, None if source == "mqtt" else detail, payload)

    assert (fingerprint(*a) == fingerprint(*b)) == (identity(*a) == identity(*b))
