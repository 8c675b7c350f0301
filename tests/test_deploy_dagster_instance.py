"""deploy/dagster.yaml, exactly as shipped, as a real Dagster instance on a real PostgreSQL.

The compose stack points the DAGSTER_POSTGRES_* variables at its TimescaleDB container; here
they point at the local PostgreSQL (127.0.0.1:5432, user postgres, trust auth by default;
ENMS_TEST_PG_HOST/PORT/USER/PASSWORD override), in a database made for the test and dropped
after it. A materialization round-trips through the PostgreSQL event log, which is what
breaks when the storage's `scheme: postgresql+psycopg2` is missing (see the second test).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import yaml
from psycopg import sql

from tests.conftest import local_server_missing

REPO = Path(__file__).resolve().parents[1]
DAGSTER_YAML = REPO / "deploy" / "dagster.yaml"

PG = {
    "host": os.environ.get("ENMS_TEST_PG_HOST", "127.0.0.1"),
    "port": int(os.environ.get("ENMS_TEST_PG_PORT", "5432")),
    "user": os.environ.get("ENMS_TEST_PG_USER", "postgres"),
    "password": os.environ.get("ENMS_TEST_PG_PASSWORD", ""),
}

pytestmark = pytest.mark.integration


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
            **{k: v for k, v in PG.items() if v != ""},
        )
    except psycopg.OperationalError as exc:
        local_server_missing(
            f"no PostgreSQL at {PG['host']}:{PG['port']} ({exc}). Start it, e.g. "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        )


@pytest.fixture
def database() -> Iterator[str]:
    name = f"enms_dagster_instance_test_{uuid.uuid4().hex[:12]}"
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with _admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _dagster_home(tmp_path: Path, monkeypatch, database: str, config_text: str | None) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    if config_text is None:
        shutil.copy(DAGSTER_YAML, home / "dagster.yaml")  # byte for byte what the image copies
    else:
        (home / "dagster.yaml").write_text(config_text)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_POSTGRES_HOST", PG["host"])
    monkeypatch.setenv("DAGSTER_POSTGRES_PORT", str(PG["port"]))
    monkeypatch.setenv("DAGSTER_POSTGRES_USER", PG["user"])
    monkeypatch.setenv("DAGSTER_POSTGRES_PASSWORD", PG["password"])  # "" under trust auth
    monkeypatch.setenv("DAGSTER_POSTGRES_DB", database)
    return home


@dg.asset(key=["enms", "deploy_smoke"])
def deploy_smoke() -> int:
    return 42


def _materialization_rows(database: str, run_id: str) -> int:
    with psycopg.connect(
        dbname=database, connect_timeout=10, **{k: v for k, v in PG.items() if v != ""}
    ) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM event_logs "
            "WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
            (run_id,),
        ).fetchone()
    return count


def test_shipped_instance_config_materializes_into_postgresql(tmp_path, monkeypatch, database):
    _dagster_home(tmp_path, monkeypatch, database, None)

    with dg.DagsterInstance.get() as instance:
        # The storages, coordinator and launcher the compose stack relies on.
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert type(instance.run_launcher).__name__ == "DefaultRunLauncher"
        assert type(instance.scheduler).__name__ == "DagsterDaemonScheduler"
        assert instance.run_monitoring_enabled
        run_queue = instance.get_concurrency_config().run_queue_config
        assert run_queue is not None and run_queue.max_concurrent_runs == 4
        assert instance.event_log_storage.postgres_url.startswith("postgresql+psycopg2://")

        result = dg.materialize([deploy_smoke], instance=instance)
        assert result.success
        event = instance.get_latest_materialization_event(dg.AssetKey(["enms", "deploy_smoke"]))
        assert event is not None and event.run_id == result.run_id
        run = instance.get_run_by_id(result.run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS

    # Written to the test database on the server, not to some local fallback.
    assert _materialization_rows(database, result.run_id) == 1


def test_without_psycopg2_scheme_the_event_log_breaks(tmp_path, monkeypatch, database):
    """Why deploy/dagster.yaml sets `scheme`: with SQLAlchemy 2.1, a bare postgresql:// URL
    uses psycopg 3, and the event log's `NOTIFY run_events, $1` is a PostgreSQL syntax error.

    If this starts failing, dagster-postgres or SQLAlchemy no longer hit that trap and the
    scheme line could go (keeping it is harmless while psycopg2 is installed).
    """
    config = yaml.safe_load(DAGSTER_YAML.read_text())
    del config["storage"]["postgres"]["postgres_db"]["scheme"]
    _dagster_home(tmp_path, monkeypatch, database, yaml.safe_dump(config))

    with dg.DagsterInstance.get() as instance:
        assert instance.event_log_storage.postgres_url.startswith("postgresql://")
        with pytest.raises(Exception, match=r"NOTIFY run_events"):
            dg.materialize([deploy_smoke], instance=instance)
