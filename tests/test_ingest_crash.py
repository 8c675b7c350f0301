"""The crash-only ingestor against a real Mosquitto of the test's own (persistence on) and the real
PostgreSQL: a message that kills the landing worker makes `enms ingest` exit non-zero, is
quarantined as poison after the second death, and every other message lands once. The failure is
injected through real messages: a trigger the test installs on raw.readings raises for a marked
value (as a bug in the landing path would); the ingestor has no fault hook."""

from __future__ import annotations

import signal
import threading
import time

import psycopg
import pytest

from enms_dagster.db import connect
from enms_dagster.ingest.service import EXIT_WORKER_DIED, Ingestor, IngestorFailed
from tests.conftest import reset_warehouse
from tests.test_ingest_faults import TOPIC, Publisher, ingest_process, landed, reading

pytestmark = pytest.mark.integration

KILLER = 666  # the reading whose landing raises (the trigger below)
KILLER_ERROR = "the test's killer reading"


@pytest.fixture
def db(local_services, small_plant):
    """The warehouse, emptied, with a trigger on raw.readings that raises for power_kw = 666 and
    sleeps for power_kw = 777 while public.test_stall holds a row; removed afterwards."""
    with connect(local_services.database_url, autocommit=True) as conn:
        reset_warehouse(conn, small_plant)
        conn.execute("TRUNCATE raw.ingest_attempts, raw.ingest_suspects, raw.ingestor_status")
        conn.execute("CREATE TABLE public.test_stall (stall boolean)")
        conn.execute(
            """
            CREATE FUNCTION public.test_faulty_landing() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.metric = 'power_kw' AND NEW.value = 666 THEN
                    RAISE EXCEPTION 'the test''s killer reading';
                END IF;
                IF NEW.metric = 'power_kw' AND NEW.value = 777
                        AND EXISTS (SELECT FROM public.test_stall) THEN
                    PERFORM pg_sleep(30);
                END IF;
                RETURN NULL;
            END $$
            """
        )
        conn.execute(
            "CREATE TRIGGER test_faulty_landing AFTER INSERT ON raw.readings "
            "FOR EACH ROW EXECUTE FUNCTION public.test_faulty_landing()"
        )
        try:
            yield local_services.database_url, conn
        finally:
            conn.execute("DROP TRIGGER test_faulty_landing ON raw.readings")
            conn.execute("DROP FUNCTION public.test_faulty_landing()")
            conn.execute("DROP TABLE public.test_stall")


def cut_stalled_landing(conn: psycopg.Connection, timeout_s: float = 60) -> int:
    """Terminate the connection of a landing sleeping in the trigger; how many were cut."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        cut = conn.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event = 'PgSleep'"
        ).fetchone()[0]
        if cut:
            return cut
        time.sleep(0.05)
    return 0


def status(conn: psycopg.Connection, client_id: str) -> tuple:
    return conn.execute(
        "SELECT state, last_error, stopped_at FROM raw.ingestor_status WHERE client_id = %s",
        (client_id,),
    ).fetchone()


def poison_rows(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT topic, payload, detail FROM raw.quarantine WHERE reason = 'poison'"
    ).fetchall()


N = 3000


def test_a_message_that_kills_the_worker_ends_as_poison_and_nothing_else_is_lost(db, broker):
    database_url, conn = db
    client_id = "ingest-poison"
    proc = ingest_process(database_url, broker.url, client_id)
    assert "ingesting" in proc.stdout.readline()
    publisher = Publisher(broker.url)
    sender = threading.Thread(
        target=publisher.publish, args=([(TOPIC, reading(i)) for i in range(N)], 200)
    )
    sender.start()
    exits, statuses, recoveries = [], [], []
    try:
        # the supervisor: restart the process whenever it exits, until everything is settled
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and len(exits) < 4:
            if proc.poll() is not None:
                exited_at = time.monotonic()
                exits.append(proc.returncode)
                statuses.append(status(conn, client_id))
                before = (landed(conn)[0], len(poison_rows(conn)))
                proc = ingest_process(database_url, broker.url, client_id)
                assert "ingesting" in proc.stdout.readline()
                while (landed(conn)[0], len(poison_rows(conn))) == before:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                recoveries.append(time.monotonic() - exited_at)
                continue
            if landed(conn)[0] >= N - 1 and poison_rows(conn):
                time.sleep(1)  # anything extra would show up now
                break
            time.sleep(0.05)
        sender.join(120)
        assert proc.poll() is None, "the last start must stay up"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        publisher.close()
    print(f"\nexits {exits}; exit to landing again after a restart: {recoveries} s")

    # once in a batch, once alone; the third delivery is quarantined
    assert exits == [EXIT_WORKER_DIED, EXIT_WORKER_DIED]
    for state, last_error, stopped_at in statuses:
        assert state == "crashed" and stopped_at is not None
        assert KILLER_ERROR in last_error
    assert landed(conn) == (N - 1, N - 1)
    (killer_landed,) = conn.execute(
        "SELECT count(*) FROM raw.readings WHERE value = %s", (KILLER,)
    ).fetchone()
    assert killer_landed == 0
    [(topic, payload, detail)] = poison_rows(conn)
    assert (topic, bytes(payload)) == (TOPIC, reading(KILLER))
    assert "2 times" in detail and KILLER_ERROR in detail
    (other_quarantine,) = conn.execute(
        "SELECT count(*) FROM raw.quarantine WHERE reason <> 'poison'"
    ).fetchone()
    assert other_quarantine == 0
    # innocent suspects were cleared when they landed; nothing is left in flight
    assert conn.execute(
        "SELECT count(*) FILTER (WHERE poisoned_at IS NULL), count(*) FROM raw.ingest_suspects"
    ).fetchone() == (0, 1)
    assert conn.execute("SELECT count(*) FROM raw.ingest_attempts").fetchone() == (0,)
    assert status(conn, client_id)[0] == "stopped"


def test_an_in_process_ingestor_reports_its_dead_worker(db, broker):
    database_url, conn = db
    ingestor = Ingestor(database_url, broker.url, client_id="ingest-dies")
    ingestor.start()
    publisher = Publisher(broker.url)
    try:
        publisher.publish([(TOPIC, reading(KILLER))])
        with pytest.raises(IngestorFailed, match=KILLER_ERROR):
            ingestor.wait_for_messages(1, 120)
        assert isinstance(ingestor.failure, psycopg.errors.RaiseException)
        state, last_error, _ = status(conn, "ingest-dies")
        assert state == "crashed" and KILLER_ERROR in last_error
    finally:
        publisher.close()
        ingestor.stop()


def test_a_connection_lost_mid_landing_is_retried_and_blames_no_message(db, broker):
    """An outage is not a crash: the worker keeps the batch and retries it under the same attempt
    record, so no message becomes a suspect, and a restart finds nothing to count."""
    database_url, conn = db
    client_id = "ingest-cut"
    ingestor = Ingestor(database_url, broker.url, client_id=client_id)
    ingestor.start()
    publisher = Publisher(broker.url)
    try:
        conn.execute("INSERT INTO public.test_stall VALUES (true)")
        publisher.publish([(TOPIC, reading(i)) for i in range(700, 800)])
        # the landing of 777 sleeps in the trigger: cut its connection there, twice
        assert cut_stalled_landing(conn) == 1, "the landing never reached the stalled reading"
        assert cut_stalled_landing(conn) == 1, "the landing was not retried"
        conn.execute("DELETE FROM public.test_stall")
        cut_stalled_landing(conn, timeout_s=2)  # a retry that began to sleep meanwhile
        assert ingestor.wait_for_messages(100, 120)
        assert ingestor.stats.landing_errors >= 2
        assert ingestor.failure is None
    finally:
        publisher.close()
        ingestor.stop()
    assert landed(conn) == (100, 100)
    assert conn.execute("SELECT count(*) FROM raw.ingest_attempts").fetchone() == (0,)
    restarted = Ingestor(database_url, broker.url, client_id=client_id)
    restarted.start()
    try:
        publisher = Publisher(broker.url)
        publisher.publish([(TOPIC, reading(5))])
        assert restarted.wait_for_messages(1, 60)
        publisher.close()
    finally:
        restarted.stop()
    assert conn.execute("SELECT count(*) FROM raw.ingest_suspects").fetchone() == (0,)
    assert poison_rows(conn) == []
