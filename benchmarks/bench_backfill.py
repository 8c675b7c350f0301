"""Direct backfill of the reference plant through ``land_batch``, against a plain binary COPY of
the same rows in the same run.

    .venv/bin/python benchmarks/bench_backfill.py --days 30

Creates a fresh database on the server in ENMS_BENCH_PG_DSN (default the local PostgreSQL),
backfills D days of the reference plant (20 machines and a weather station) with
``backfill_direct``, then generates the same rows again and binary-COPYs them into an unindexed
table, and once more into a table with raw.readings' primary key, and drops the database.
Prints rows, seconds, rates and the ratios landing ÷ COPY (both end to end, simulation
included, and COPY alone without the simulation time).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from enms_dagster.db import migrate  # noqa: E402
from enms_dagster.plant import load_plant  # noqa: E402
from enms_dagster.plant.store import save_plant  # noqa: E402
from enms_dagster.progress import Progress  # noqa: E402
from enms_dagster.settings import REPO_DIR  # noqa: E402
from enms_dagster.simulator import simulate  # noqa: E402
from enms_dagster.simulator.backfill import _batches, backfill_direct  # noqa: E402

ADMIN_DSN = os.environ.get("ENMS_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REFERENCE_PLANT = REPO_DIR / "enms_dagster" / "plant" / "reference_plant.yaml"


def copy_baseline(
    url: str, plant, start, end, seed, faults, batch_readings, keyed: bool = False
) -> tuple[int, float, float]:
    """Binary COPY of the same rows into a fresh table: (rows, total seconds, COPY seconds).
    ``keyed`` gives it raw.readings' primary key (machine, metric, ts), which exactly-once
    landing cannot do without; unkeyed is the raw write speed of the server."""
    rows = 0
    copy_s = 0.0
    began = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy")
        conn.execute(
            "CREATE TABLE bench_copy (machine_id text, metric text, ts timestamptz, "
            "value double precision" + (", PRIMARY KEY (machine_id, metric, ts))" if keyed else ")")
        )
        stream = simulate(plant, start, end, seed=seed, faults=faults)
        for batch, _, _ in _batches(stream, batch_readings):
            t0 = time.monotonic()
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy("COPY bench_copy FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["text", "text", "timestamptz", "float8"])
                    for row in batch:
                        copy.write_row(row)
            copy_s += time.monotonic() - t0
            rows += len(batch)
    return rows, time.monotonic() - began, copy_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--fault-rate", type=float, default=0.5, help="faults per machine-week")
    parser.add_argument("--workers", type=int, default=2, help="landing connections")
    parser.add_argument("--batch-readings", type=int, default=500_000)
    args = parser.parse_args()

    plant = load_plant(REFERENCE_PLANT)
    start = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=args.days)
    name = f"enms_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(ADMIN_DSN, dbname=name)
    try:
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            save_plant(conn, plant)
        print(f"backfilling {args.days} days of {len(plant.machines)} machines ...", flush=True)
        landed = backfill_direct(
            plant,
            start,
            end,
            url,
            seed=args.seed,
            fault_rate=args.fault_rate,
            batch_readings=args.batch_readings,
            workers=args.workers,
            progress=Progress("backfill", "readings"),
        )
        print()
        with psycopg.connect(url) as conn:
            (stored,) = conn.execute("SELECT count(*) FROM raw.readings").fetchone()
        print("binary COPY baselines of the same rows ...", flush=True)
        rows, copy_total_s, copy_only_s = copy_baseline(
            url, plant, start, end, args.seed, landed.faults, args.batch_readings
        )
        keyed_rows, keyed_total_s, keyed_only_s = copy_baseline(
            url, plant, start, end, args.seed, landed.faults, args.batch_readings, keyed=True
        )
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    land_rate = landed.readings / landed.seconds
    copy_rate = rows / copy_total_s
    print(f"days                      {args.days}")
    print(f"faults injected           {len(landed.faults)}")
    print(f"readings landed           {landed.inserted:,} (in raw.readings: {stored:,})")
    print(f"land_batch batches        {landed.batches} of ~{args.batch_readings:,}+ readings")
    print(f"backfill (land_batch)     {landed.seconds:8.1f} s  {land_rate:12,.0f} readings/s")
    print(f"COPY baseline, end to end {copy_total_s:8.1f} s  {copy_rate:12,.0f} readings/s")
    print(f"COPY baseline, COPY only  {copy_only_s:8.1f} s  {rows / copy_only_s:12,.0f} readings/s")
    print(f"ratio landing / COPY (end to end)  {land_rate / copy_rate:.2f}")
    print(f"ratio landing / COPY (COPY only)   {land_rate / (rows / copy_only_s):.2f}")
    keyed_rate = keyed_rows / keyed_total_s
    print(f"keyed COPY, end to end    {keyed_total_s:8.1f} s  {keyed_rate:12,.0f} readings/s")
    keyed_only_rate = keyed_rows / keyed_only_s
    print(f"keyed COPY, COPY only     {keyed_only_s:8.1f} s  {keyed_only_rate:12,.0f} readings/s")
    print(f"ratio landing / keyed COPY (end to end)  {land_rate / keyed_rate:.2f}")
    print(f"ratio landing / keyed COPY (COPY only)   {land_rate / keyed_only_rate:.2f}")
    assert rows == landed.readings == landed.inserted == stored, "every reading lands once"
    return 0


if __name__ == "__main__":
    sys.exit(main())
