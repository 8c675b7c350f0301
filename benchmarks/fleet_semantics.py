"""What the broker does with a group of subscribers when one member dies for good.

    .venv/bin/python benchmarks/fleet_semantics.py [--messages 20000] [--rate 2000]

Starts a Mosquitto of its own (the project's settings: persistence on, raised queue limits)
and, per scenario, two subscriber processes that behave like ingestors: each prints the
number of every message it gets (its "commit") and only then acknowledges it. A publisher
sends a numbered QoS 1 stream; part-way through one member is SIGKILLed (or, for "hang",
SIGSTOPped: a host that vanished without closing its socket) and never comes back. Printed per
scenario: published, delivered (distinct numbers any member committed), lost, duplicate
deliveries, and the gap: the longest time a message published after the death waited for
its commit. These are the figures docs/mqtt.md ("More than one ingestor") quotes.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from enms_dagster.simulator.publish import connect_publisher  # noqa: E402
from tests.brokers import Mosquitto  # noqa: E402

TOPIC = "enms/plant-a/HYD-01/telemetry"


@dataclass(frozen=True)
class Scenario:
    name: str
    topic_filter: str
    mqtt5: bool
    clean: bool
    expiry_s: int = 0  # MQTT 5 session expiry interval
    death: str = "kill"  # "kill" (socket closed) or "hang" (SIGSTOP: broker waits for keepalive)


KEEPALIVE_S = 4  # Mosquitto drops a silent client after 1.5 x keepalive

SHARED = "$share/g/enms/+/+/telemetry"
SCENARIOS = [
    Scenario("shared, persistent 3.1.1", SHARED, False, False),
    Scenario("shared, MQTT 5 expiry 3 s", SHARED, True, False, 3),
    Scenario("shared, MQTT 5 expiry 3 s, hang", SHARED, True, False, 3, "hang"),
    Scenario("shared, clean 3.1.1", SHARED, False, True),
    Scenario("shared, clean 3.1.1, hang", SHARED, False, True, 0, "hang"),
    Scenario("each all, persistent 3.1.1", "enms/+/+/telemetry", False, False),
    Scenario("each all, persistent 3.1.1, hang", "enms/+/+/telemetry", False, False, 0, "hang"),
]


# ------------------------------------------------------------------ a member (subprocess)


def member(port: int, client_id: str, topic_filter: str, mqtt5: bool, clean: bool, expiry: int):
    """Print "ready", then "<number> <unix time>" per message before acknowledging it."""
    out = sys.stdout
    lock = threading.Lock()
    if mqtt5:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
    else:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
    client.max_inflight_messages_set(1000)

    def on_connect(c, userdata, flags, reason_code, properties):
        c.subscribe(topic_filter, qos=1)

    def on_subscribe(*args):
        with lock:
            out.write("ready\n")
            out.flush()

    def on_message(c, userdata, msg):
        with lock:
            out.write(f"{int(msg.payload)} {time.time():.4f}\n")
            out.flush()
        c.ack(msg.mid, msg.qos)

    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    if mqtt5:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = expiry
        client.connect(
            "127.0.0.1", port, keepalive=KEEPALIVE_S, clean_start=clean, properties=props
        )
    else:
        client.connect("127.0.0.1", port, keepalive=KEEPALIVE_S)
    client.loop_forever()


# ------------------------------------------------------------------ the experiment


class Member:
    def __init__(self, port: int, client_id: str, sc: Scenario) -> None:
        args = [port, client_id, sc.topic_filter, int(sc.mqtt5), int(sc.clean), sc.expiry_s]
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "member", *map(str, args)], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout.readline().strip() == "ready"
        self.got: list[tuple[int, float]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            n, t = line.split()
            self.got.append((int(n), float(t)))

    def end(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(10)


def run(sc: Scenario, broker: Mosquitto, messages: int, rate: float, settle_s: float) -> dict:
    # a group of its own: a dead persistent member of an earlier scenario stays in its group
    group = f"g{time.monotonic_ns()}"
    sc = dataclasses.replace(
        sc, topic_filter=sc.topic_filter.replace("$share/g/", f"$share/{group}/")
    )
    members = [Member(broker.port, f"m{i}-{os.getpid()}-{time.monotonic_ns()}", sc) for i in (0, 1)]
    client, acks = connect_publisher(broker.url, "fleet-pub")
    sent_at: list[float] = []
    died_at = None
    infos = []
    start = time.monotonic()
    for n in range(messages):
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if died_at is None and n == messages // 4:
            members[0].proc.send_signal(signal.SIGKILL if sc.death == "kill" else signal.SIGSTOP)
            died_at = time.time()
        sent_at.append(time.time())
        infos.append(client.publish(TOPIC, str(n).encode(), qos=1))
    acks.wait(infos, timeout_s=120)
    # wait until nothing more arrives for settle_s
    last, seen = time.monotonic(), -1
    while time.monotonic() - last < settle_s:
        count = sum(len(m.got) for m in members)
        if count != seen:
            seen, last = count, time.monotonic()
        time.sleep(0.2)
    client.disconnect()
    client.loop_stop()
    for m in members:
        m.end()
    first_commit: dict[int, float] = {}
    deliveries = 0
    for m in members:
        for n, t in m.got:
            deliveries += 1
            first_commit[n] = min(t, first_commit.get(n, t))
    after = [
        first_commit[n] - sent_at[n]
        for n in range(messages)
        if sent_at[n] >= died_at and n in first_commit
    ]
    return {
        "published": messages,
        "delivered": len(first_commit),
        "lost": messages - len(first_commit),
        "duplicates": deliveries - len(first_commit),
        "lost_after_death": sum(
            1 for n in range(messages) if sent_at[n] >= died_at and n not in first_commit
        ),
        "gap_s": max(after, default=0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--rate", type=float, default=2000, help="messages per second")
    parser.add_argument("--settle", type=float, default=12.0, help="quiet seconds that end a run")
    parser.add_argument("--log", action="store_true", help="print the broker's log at the end")
    parser.add_argument("--only", help="run the scenarios whose name contains this")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp) / "mosquitto")
        broker.start()
        try:
            print(f"{'scenario':36} published delivered   lost  (after death)  dups  gap s")
            for sc in SCENARIOS:
                if args.only and args.only not in sc.name:
                    continue
                r = run(sc, broker, args.messages, args.rate, args.settle)
                print(
                    f"{sc.name:36} {r['published']:9} {r['delivered']:9} {r['lost']:6} "
                    f"{r['lost_after_death']:14} {r['duplicates']:5} {r['gap_s']:6.2f}",
                    flush=True,
                )
        finally:
            broker.stop()
            if args.log:
                print((Path(tmp) / "mosquitto" / "mosquitto.log").read_text())


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "member":
        port, cid, flt, v5, clean, expiry = sys.argv[2:8]
        member(int(port), cid, flt, bool(int(v5)), bool(int(clean)), int(expiry))
    else:
        main()
