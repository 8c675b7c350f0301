"""What Mosquitto's autosave settings cost and what they keep, measured on the real broker.

    .venv/bin/python benchmarks/bench_broker_persistence.py --messages 20000

For each variant of the persistence settings (the rest of deploy/mosquitto/mosquitto.conf as
shipped), starts a mosquitto of its own and measures:

- crash after subscribe: a persistent QoS 1 subscriber subscribes, the broker is SIGKILLed 0.5 s
  later and started again, 10 messages are published, the subscriber reconnects with its client
  id (without subscribing again): how many it receives (10 = the subscription survived);
- online: N QoS 1 messages to that subscriber while it is connected: seconds, and how many
  times and how many bytes the broker wrote its database;
- offline: N QoS 1 messages queued for it while it is away: the same figures.

Prints one row per variant with its rates as a ratio of the first variant's (the old setting).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.brokers import persistence_settings  # noqa: E402

# name: (autosave_interval, autosave_on_changes); the first is the baseline of the ratios
VARIANTS = {
    "time-30": ("30", "false"),
    "changes-1": ("1", "true"),
    "changes-100": ("100", "true"),
    "time-1": ("1", "false"),
    "time-2": ("2", "false"),
    "time-5": ("5", "false"),
}
TOPIC = "bench/persistence"


class Broker:
    def __init__(self, directory: Path, settings: dict[str, str]) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.directory = directory
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true"]
        lines += [f"{k} {v}" for k, v in settings.items()]
        lines += [f"persistence_location {directory}/", f"log_dest file {directory}/log"]
        lines += ["log_type all"]
        if os.geteuid() == 0:
            lines.append("user root")
        (directory / "mosquitto.conf").write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.directory / "mosquitto.conf")])
        for _ in range(150):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("mosquitto did not start")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()

    def written_bytes(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
        return 0

    def saves(self) -> int:
        return (self.directory / "log").read_text().count("Saving in-memory database")


class Subscriber:
    def __init__(self, port: int, client_id: str) -> None:
        self.port, self.client_id = port, client_id
        self.received = 0
        self.lock = threading.Lock()
        self.client = None

    def connect(self, subscribe: bool) -> None:
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False
        )
        self.client.max_inflight_messages_set(1000)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        if subscribe:
            self.client.subscribe(TOPIC, qos=1)
            subscribed.wait(10)

    def _on_message(self, client, userdata, message) -> None:
        with self.lock:
            self.received += 1

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def wait_for(self, n: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.received >= n:
                return True
            time.sleep(0.01)
        return False


def publish(port: int, n: int) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{time.time_ns()}")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    payload = b'{"ts": "2026-03-10T00:00:00+00:00", "metrics": {"power_kw": 12.5}}' * 4
    infos = [client.publish(TOPIC, payload, qos=1) for _ in range(n)]
    for info in infos:
        info.wait_for_publish(120)
    client.disconnect()
    client.loop_stop()


def measure(name: str, overrides: dict[str, str], n: int) -> dict[str, float]:
    settings = {**persistence_settings(), **overrides}
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp), settings)
        broker.start()
        sub = Subscriber(broker.port, "bench-sub")
        sub.connect(subscribe=True)
        time.sleep(0.5)
        broker.kill()
        sub.disconnect()
        broker.start()
        publish(broker.port, 10)
        sub.received = 0
        sub.connect(subscribe=False)
        sub.wait_for(10, 5)
        survived = sub.received
        sub.client.subscribe(TOPIC, qos=1)  # from here on the subscription exists either way
        time.sleep(0.5)

        result = {"crash_after_subscribe_received": survived}
        for phase in ("online", "offline"):
            if phase == "offline":
                sub.disconnect()
            saves, written, start = broker.saves(), broker.written_bytes(), time.perf_counter()
            sub.received = 0
            publish(broker.port, n)
            if phase == "online":
                sub.wait_for(n, 300)
            seconds = time.perf_counter() - start
            result[f"{phase}_msg_per_s"] = n / seconds
            result[f"{phase}_saves"] = broker.saves() - saves
            result[f"{phase}_mb_written"] = (broker.written_bytes() - written) / 1e6
        broker.stop()
    print(f"{name:<12} " + "  ".join(f"{k}={v:,.1f}" for k, v in result.items()), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="comma-separated, from " + ", ".join(VARIANTS) + " (the first is the baseline)",
    )
    args = parser.parse_args()
    results = {}
    for name in args.variants.split(","):
        interval, on_changes = VARIANTS[name]
        overrides = {"autosave_interval": interval, "autosave_on_changes": on_changes}
        results[name] = measure(name, overrides, args.messages)
    base = next(iter(results.values()))
    print("\nrates as a ratio of the first variant (same run):")
    for name, r in results.items():
        print(
            f"{name:<12} online {r['online_msg_per_s'] / base['online_msg_per_s']:.2f}  "
            f"offline {r['offline_msg_per_s'] / base['offline_msg_per_s']:.2f}"
        )


if __name__ == "__main__":
    main()
