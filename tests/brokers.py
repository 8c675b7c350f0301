"""A Mosquitto of the test's own, with persistence on and the queue limits the project ships,
which a test may stop and start again."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import local_server_missing

CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {data}/
autosave_interval 1
max_queued_messages 1000000
max_queued_bytes 0
max_inflight_messages 1000
persistent_client_expiration 1h
log_dest file {data}/mosquitto.log
"""


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

    def stop(self) -> None:
        """A clean stop: Mosquitto writes its persistence file on SIGTERM."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)
        self.proc = None
