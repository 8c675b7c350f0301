"""Fuzz the telemetry parser offline and through a live ingestor; print what became of it all.

    .venv/bin/python benchmarks/fuzz_payloads.py [--parser 100000] [--live 10000] [--seed 1]
    .venv/bin/python benchmarks/fuzz_payloads.py --atheris [--runs 200000]   # optional

Payloads are generated from a seed: good samples of the reference plant, known-bad mutations
(former killers, every rejection reason), messages mixing good and bad samples, random bytes, a
byte-level mutation fuzzer over valid payloads (bit flips, insertions of hostile tokens,
deletions, truncations, duplicated chunks) and structured adversarial JSON. Phase 1 parses
``--parser`` of them and counts exceptions; phase 2 publishes ``--live`` of them with QoS 1 to
a Mosquitto of its own, through ``Ingestor`` into a fresh database on the local PostgreSQL
(ENMS_BENCH_PG_DSN, default postgres@127.0.0.1:5432), and compares what landed with what the
offline parse expected: distinct good readings published = landed, one quarantine row with a
reason for every message with a rejection.

``--atheris`` runs coverage-guided byte fuzzing with atheris instead (not a project dependency:
``pip install atheris==3.0.0`` into a Python 3.11 venv; it installs cleanly here).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from paho.mqtt.client import topic_matches_sub
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from enms_dagster.ingest.payload import (  # noqa: E402
    MAX_PAYLOAD_BYTES,
    REASONS,
    ParsedMessage,
    PlausibleTime,
    RegistryView,
    parse_message,
    safe_text,
)
from enms_dagster.ingest.service import TELEMETRY_TOPIC  # noqa: E402
from enms_dagster.plant import Plant, load_plant  # noqa: E402
from enms_dagster.settings import DEFAULT_PLANT_FILE  # noqa: E402

ADMIN_DSN = os.environ.get("ENMS_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
KINDS = ("good", "known_bad", "mixed", "random_bytes", "mutated", "adversarial_json")
WEIGHTS = (30, 20, 5, 10, 25, 10)
HOSTILE_TOKENS = [
    b"1e999",
    b"-1e999",
    b"1" + b"0" * 5000,
    b"NaN",
    b"Infinity",
    b"[" * 3000,
    b"{" * 50,
    b'"\\ud800"',
    b'"\\u0000"',
    b"\x00",
    b"\xff\xfe",
    b"\xe2\x82",
    b'"9999-12-31T23:59:59-23:59"',
    b'"0001-01-01T00:00:00+23:59"',
    b"[]",
    b"{}",
    b"null",
    b"true",
    b'"state": []',
    b'"state": {"a": 1}',
]


@dataclass(frozen=True)
class Case:
    kind: str
    topic: str
    payload: bytes


def registry_of(plant: Plant) -> RegistryView:
    """The parser's view of a plant file (what the ingestor loads from core.* after save_plant)."""
    from zoneinfo import ZoneInfo

    return RegistryView(
        machine_sites={m.machine_id: m.site_id for m in plant.machines.values()},
        commissioned={
            m.machine_id: dt.datetime.combine(
                plant.sites[m.site_id].commissioned_on,
                dt.time(),
                ZoneInfo(plant.sites[m.site_id].timezone),
            )
            for m in plant.machines.values()
        },
        metrics=frozenset(plant.metrics) | {"state"},
    )


class Generator:
    """Seeded payloads; good timestamps are unique (a microsecond counter) so that every good
    reading is a new key in raw.readings."""

    def __init__(self, plant: Plant, now: dt.datetime, seed: int) -> None:
        self.rng = random.Random(seed)
        self.machines = sorted((m.machine_id, m.site_id) for m in plant.machines.values())
        self.metrics = sorted(m for m in plant.metrics if m != "state")
        self.base = now - dt.timedelta(hours=2)
        self.tick = 0

    def topic(self) -> tuple[str, str]:
        machine, site = self.rng.choice(self.machines)
        return f"enms/{site}/{machine}/telemetry", machine

    def good_sample(self) -> dict:
        self.tick += 1
        ts = self.base + dt.timedelta(microseconds=self.tick)
        metrics = {
            m: round(self.rng.uniform(-1e6, 1e6), 3) for m in self.rng.sample(self.metrics, 2)
        }
        sample = {"ts": ts.isoformat(), "metrics": metrics}
        if self.rng.random() < 0.5:
            sample["state"] = self.rng.choice(["off", "idle", "running"])
        return sample

    def bad_sample(self) -> dict | bytes:
        sample = self.good_sample()
        r = self.rng.randrange(12)
        metric = next(iter(sample["metrics"]))
        if r == 0:
            sample["ts"] = "yesterday"
        elif r == 1:
            sample["ts"] = "2026-03-10T11:00:00"
        elif r == 2:
            sample["ts"] = (self.base + dt.timedelta(days=3)).isoformat()
        elif r == 3:
            days = self.rng.choice([450, 3000])  # too old, or before commissioning too
            sample["ts"] = (self.base - dt.timedelta(days=days)).isoformat()
        elif r == 4:
            sample["metrics"]["volts_\x00"] = 1.0
        elif r == 5:
            sample["metrics"][metric] = "41.5"
        elif r == 6:
            sample["metrics"][metric] = True
        elif r == 7:
            sample["state"] = self.rng.choice(["asleep", [], {"x": 1}, 3])
        elif r == 8:
            sample["metrics"] = {}
            sample.pop("state", None)
        elif r == 9:
            sample["ts"] = "9999-12-31T23:59:59-23:59"
        elif r == 10:
            sample["metrics"] = {f"m{i}": 1.0 for i in range(300)}
        else:
            return b"not a sample"
        return sample

    def known_bad(self) -> bytes:
        r = self.rng.randrange(10)
        good = json.dumps(self.good_sample()).encode()
        if r == 0:
            return good.replace(b"}", b', "x": 1e999}', 1)
        if r == 1:
            return good[:-1] + b', "n": 1' + b"0" * self.rng.randrange(65, 6000) + b"}"
        if r == 2:
            depth = self.rng.randrange(9, 200_000)
            return b"[" * depth + b"]" * depth
        if r == 3:
            return b"\xff" + good
        if r == 4:
            return good[: self.rng.randrange(1, len(good))]
        if r == 5:
            return b"x" * (MAX_PAYLOAD_BYTES + 1)
        if r == 6:
            return b"[" + b",".join([b"{}"] * 5001) + b"]"
        if r == 7:
            return good.replace(b'"metrics"', b'"metrics": NaN, "m"', 1)
        bad = self.bad_sample()
        return bad if isinstance(bad, bytes) else json.dumps(bad).encode()

    def mixed(self) -> bytes:
        samples = [self.good_sample() for _ in range(self.rng.randrange(1, 5))]
        for _ in range(self.rng.randrange(1, 50)):
            bad = self.bad_sample()
            samples.insert(
                self.rng.randrange(len(samples) + 1), [] if isinstance(bad, bytes) else bad
            )
        return json.dumps(samples).encode()

    def random_bytes(self) -> bytes:
        return self.rng.randbytes(self.rng.choice([0, 1, 2, 8, 64, 512, 4096]))

    def mutated(self) -> bytes:
        n = self.rng.randrange(1, 4)
        data = bytearray(
            json.dumps(
                [self.good_sample() for _ in range(n)] if n > 1 else self.good_sample()
            ).encode()
        )
        for _ in range(self.rng.randrange(1, 4)):
            op = self.rng.randrange(6)
            at = self.rng.randrange(len(data) + 1)
            if op == 0 and data:
                i = self.rng.randrange(len(data))
                data[i] ^= 1 << self.rng.randrange(8)
            elif op == 1:
                data[at:at] = self.rng.choice(HOSTILE_TOKENS)
            elif op == 2:
                del data[at : at + self.rng.randrange(1, 16)]
            elif op == 3:
                del data[at:]
            elif op == 4:
                data[at:at] = data[: self.rng.randrange(1, 64)]
            else:
                data[at:at] = self.rng.randbytes(self.rng.randrange(1, 8))
        return bytes(data)

    def adversarial_value(self, depth: int = 0):
        r = self.rng.randrange(10 if depth < 6 else 7)
        if r == 0:
            return self.rng.choice([0, -1, 2**63, -(2**64), 10**60, 10**300])
        if r == 1:
            return self.rng.choice([1e308, -1e308, 5e-324, 0.0, -0.0, 1.5])
        if r == 2:
            return self.rng.choice(["\ud800", "\x00", "é" * 300, "2026-03-10T11:00:00Z", ""])
        if r == 3:
            return self.rng.choice([None, True, False])
        if r == 4:
            return self.rng.choice(["off", "idle", "running", "power_kw"])
        if r == 5:
            return self.good_sample()
        if r == 6:
            return "x" * self.rng.randrange(0, 3000)
        if r == 7:
            return [self.adversarial_value(depth + 1) for _ in range(self.rng.randrange(4))]
        keys = ["ts", "metrics", "state", "power_kw", "\ud800", "\x00"]
        return {
            self.rng.choice(keys): self.adversarial_value(depth + 1)
            for _ in range(self.rng.randrange(4))
        }

    def adversarial_json(self) -> bytes:
        doc = self.adversarial_value()
        if self.rng.random() < 0.5:
            doc = {
                "ts": self.adversarial_value(5),
                "metrics": {"power_kw": self.adversarial_value(5)},
                "state": self.adversarial_value(5),
            }
        return json.dumps(doc).encode("utf-8", "surrogatepass")

    def cases(self, count: int) -> Iterator[Case]:
        for _ in range(count):
            kind = self.rng.choices(KINDS, WEIGHTS)[0]
            topic, _ = self.topic()
            r = self.rng.random()
            if kind != "good" and r < 0.02:
                topic = self.rng.choice(["enms/x/NOPE-01/telemetry", "enms/a/b", "enms/+/\x00/t"])
            payload = (
                json.dumps(
                    self.good_sample() if r < 0.7 else [self.good_sample() for _ in range(5)]
                ).encode()
                if kind == "good"
                else getattr(self, kind)()
            )
            yield Case(kind, topic, payload)


def storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


@dataclass
class Tally:
    payloads: int = 0
    exceptions: int = 0
    violations: int = 0
    readings: int = 0
    quarantined: int = 0
    expectation_misses: int = 0
    reasons: Counter | None = None


def check(case: Case, out: ParsedMessage) -> bool:
    """The parser's contract for one message (see tests/test_payload_properties.py)."""
    if not (out.readings or out.rejections):
        return False
    if any(
        type(v) is not float or v != v or v in (float("inf"), float("-inf"))
        for *_, v in out.readings
    ):
        return False
    for r in out.rejections:
        if r.reason not in REASONS or r.reason == "parser_error" or not storable(r.detail):
            return False
    summary = out.quarantine_rejection()
    return summary is None or storable(summary.detail) and storable(safe_text(case.topic, 4096))


def run_parser(
    cases: list[Case], registry: RegistryView, now: dt.datetime, window: PlausibleTime
) -> tuple[Tally, list[ParsedMessage | None]]:
    tally = Tally(reasons=Counter())
    results: list[ParsedMessage | None] = []
    for case in cases:
        tally.payloads += 1
        try:
            out = parse_message(case.topic, case.payload, registry, now, window)
        except Exception:
            tally.exceptions += 1
            results.append(None)
            continue
        results.append(out)
        if not check(case, out):
            tally.violations += 1
        tally.readings += len(out.readings)
        if out.rejections:
            tally.quarantined += 1
            tally.reasons[out.rejections[0].reason] += 1
        expected_good = case.kind == "good"
        if case.kind in ("good", "known_bad") and expected_good != (not out.rejections):
            tally.expectation_misses += 1
    return tally, results


def run_live(cases: list[Case], results: list[ParsedMessage], plant: Plant) -> dict:
    from enms_dagster.db import migrate
    from enms_dagster.ingest.service import Ingestor
    from enms_dagster.plant.store import save_plant
    from enms_dagster.simulator.publish import connect_publisher
    from tests.brokers import Mosquitto

    expected_keys = {(m, metric, ts) for out in results for m, metric, ts, _ in out.readings}
    expected_quarantine = sum(1 for out in results if out.rejections)
    name = f"enms_bench_fuzz_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    database_url = psycopg.conninfo.make_conninfo(ADMIN_DSN, dbname=name)
    broker = Mosquitto(Path(tempfile.mkdtemp(prefix="enms-fuzz-")))
    broker.start()
    began = time.monotonic()
    try:
        migrate(database_url)
        with psycopg.connect(database_url, autocommit=True) as conn:
            save_plant(conn, plant)
        ingestor = Ingestor(database_url, broker.url, client_id=f"fuzz-{uuid.uuid4().hex[:6]}")
        ingestor.start()
        client, acks = connect_publisher(broker.url, f"fuzz-pub-{uuid.uuid4().hex[:6]}")
        try:
            for start in range(0, len(cases), 500):
                chunk = cases[start : start + 500]
                acks.wait([client.publish(c.topic, c.payload, qos=1) for c in chunk], timeout_s=300)
            committed = ingestor.wait_for_messages(len(cases), 600)
        finally:
            client.disconnect()
            client.loop_stop()
            ingestor.stop()
        worker_stopped = ingestor._worker is not None and not ingestor._worker.is_alive()
        with psycopg.connect(database_url) as conn:
            (landed,) = conn.execute("SELECT count(*) FROM raw.readings").fetchone()
            (rows, no_reason) = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE reason = '' OR reason IS NULL) "
                "FROM raw.quarantine"
            ).fetchone()
        return {
            "messages": len(cases),
            "committed": committed and ingestor.stats.messages_committed == len(cases),
            "readings_expected": len(expected_keys),
            "readings_landed": landed,
            "quarantine_expected": expected_quarantine,
            "quarantine_rows": rows,
            "quarantine_without_reason": no_reason,
            "worker_stopped_cleanly": worker_stopped,
            "seconds": time.monotonic() - began,
        }
    finally:
        broker.stop()
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def run_atheris(runs: int, registry: RegistryView, now: dt.datetime) -> None:
    import atheris

    machine, site = next(iter(registry.machine_sites.items()))
    topic = f"enms/{site}/{machine}/telemetry"

    def one_input(data: bytes) -> None:
        out = parse_message(topic, data, registry, now)
        if not check(Case("atheris", topic, data), out):
            raise AssertionError(f"contract broken by {data[:200]!r}: {out.rejections[:3]}")

    atheris.instrument_all()  # coverage of the already imported parser guides the mutations
    atheris.Setup([sys.argv[0], f"-runs={runs}"], one_input)
    atheris.Fuzz()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parser", type=int, default=100_000, help="payloads parsed offline")
    parser.add_argument("--live", type=int, default=10_000, help="payloads through a live ingestor")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--atheris", action="store_true", help="coverage-guided byte fuzzing")
    parser.add_argument("--runs", type=int, default=200_000, help="atheris runs")
    args = parser.parse_args()

    plant = load_plant(DEFAULT_PLANT_FILE)
    registry = registry_of(plant)
    now = dt.datetime.now(dt.UTC)
    if args.atheris:
        run_atheris(args.runs, registry, now)
        return
    window = PlausibleTime()
    generator = Generator(plant, now, args.seed)
    cases = list(generator.cases(args.parser))
    began = time.monotonic()
    tally, results = run_parser(cases, registry, now, window)
    parse_s = time.monotonic() - began
    kinds = Counter(c.kind for c in cases)
    print(
        f"phase 1: {tally.payloads:,} payloads through parse_message in {parse_s:.1f} s "
        f"({tally.payloads / parse_s:,.0f}/s)"
    )
    print("  by kind          " + ", ".join(f"{k} {kinds[k]:,}" for k in KINDS))
    print(f"  exceptions       {tally.exceptions}")
    print(
        f"  contract broken  {tally.violations}  "
        "(non-finite value, unknown reason, unstorable text)"
    )
    print(f"  good/known-bad classified otherwise than generated: {tally.expectation_misses}")
    print(f"  readings {tally.readings:,}; messages with a rejection {tally.quarantined:,}")
    print("  first reasons    " + ", ".join(f"{r} {n:,}" for r, n in tally.reasons.most_common()))
    if args.live:
        publishable = [
            (c, out)
            for c, out in zip(cases, results, strict=True)
            # the broker refuses wildcards and NUL, and routes only matching topics to us
            if out is not None
            and "\x00" not in c.topic
            and topic_matches_sub(TELEMETRY_TOPIC, c.topic)
        ][: args.live]
        live = run_live([c for c, _ in publishable], [out for _, out in publishable], plant)
        print(
            f"phase 2: {live['messages']:,} payloads published (QoS 1) to a live ingestor in "
            f"{live['seconds']:.1f} s; all committed: {live['committed']}"
        )
        print(
            f"  good readings published (distinct keys) {live['readings_expected']:,} = landed "
            f"{live['readings_landed']:,}: {live['readings_expected'] == live['readings_landed']}"
        )
        print(
            f"  messages expected bad {live['quarantine_expected']:,} = quarantine rows "
            f"{live['quarantine_rows']:,}: {live['quarantine_expected'] == live['quarantine_rows']}"
            f" (rows without a reason: {live['quarantine_without_reason']})"
        )
        print(f"  ingestor worker ran to a clean stop: {live['worker_stopped_cleanly']}")


if __name__ == "__main__":
    main()
