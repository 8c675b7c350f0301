"""A Mosquitto of the test's own, with the persistence and queue settings the project ships
(read from deploy/mosquitto/mosquitto.conf, so they cannot drift), which a test may stop, kill
and start again."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from enms_dagster.settings import REPO_DIR
from tests.conftest import local_server_missing

SHIPPED_CONFIG = REPO_DIR / "deploy" / "mosquitto" / "mosquitto.conf"
# What a test broker takes from the shipped file: how it persists and queues. Listener,
# authentication, paths and logging are the test's own.
_SHIPPED_KEYS = (
    "persistence",
    "autosave_interval",
    "autosave_on_changes",
    "persistent_client_expiration",
    "max_queued_messages",
    "max_queued_bytes",
    "max_inflight_messages",
)

CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence_location {data}/
log_dest file {data}/mosquitto.log
"""


def persistence_settings(path: Path = SHIPPED_CONFIG) -> dict[str, str]:
    """The persistence and queue settings of the shipped broker config."""
    settings = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        if key in _SHIPPED_KEYS:
            settings[key] = value.strip()
    return settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    def __init__(self, directory: Path) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            local_server_missing("mosquitto not installed (apt-get install mosquitto)")
        self.binary = binary
        self.port = free_port()
        self.data = directory
        self.data.mkdir(parents=True, exist_ok=True)
        self.config = directory / "mosquitto.conf"
        config = CONFIG.format(port=self.port, data=directory)
        config += "".join(f"{k} {v}\n" for k, v in persistence_settings().items())
        if os.geteuid() == 0:
            config += "user root\n"  # as root it would drop to 'mosquitto', locked out of tmp
        self.config.write_text(config)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.config)])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        pytest.fail(f"mosquitto did not start: {(self.data / 'mosquitto.log').read_text()}")

    def kill(self) -> None:
        """A crash: SIGKILL, so nothing is written that was not written already."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(15)
        self.proc = None

    def stop(self) -> None:
        """A clean stop: Mosquitto writes its persistence file on SIGTERM."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)
        self.proc = None
