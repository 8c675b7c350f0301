"""How fast is one day of hourly energy, next to a plain scan of that day's raw readings?

On the reference plant (20 machines and a weather station, ~2 M readings a day) this lands 7 days
of simulated readings into a fresh database, times one day partition of ``hourly_energy`` (the
delete + insert transaction the asset runs) against ``count(*)`` of the same day's raw rows, then
lands 23 older days and times the same day again: the cost of a day must not grow with history.

    .venv/bin/python benchmarks/bench_hourly.py [--admin-dsn DSN] [--keep DBNAME] [--repeat N]

``--keep DBNAME`` reuses (or creates and keeps) a database, to iterate on the SQL without landing
again. Figures are ratios measured in the same run; nothing here asserts a wall-clock time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import resource
import statistics
import time
import uuid

import numpy as np
import psycopg
from psycopg import sql

from enms_dagster.db import migrate
from enms_dagster.hourly.transforms import rebuild_hourly_drivers, rebuild_hourly_energy
from enms_dagster.plant import load_plant
from enms_dagster.plant.store import save_plant
from enms_dagster.settings import DEFAULT_PLANT_FILE
from enms_dagster.simulator import STATE_NAMES, simulate  # noqa: F401  (state codes are ints)

DAY = dt.date(2026, 3, 10)  # the measured local day (a Tuesday), the last day landed
HISTORY_SHORT, HISTORY_LONG = 7, 30


def _copy_days(conn: psycopg.Connection, plant, first: dt.date, last: dt.date) -> int:
    """COPY simulated readings for the UTC days first..last straight into raw.readings."""
    start = dt.datetime.combine(first, dt.time(), dt.UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC)
    (batch_id,) = conn.execute(
        "INSERT INTO raw.ingest_batches (source, messages, readings_received, "
        "readings_inserted, quarantined) VALUES ('bench', 0, 0, 0, 0) RETURNING batch_id"
    ).fetchone()
    conn.execute("SELECT raw.ensure_reading_partitions(%s, %s)", (start, end))
    rows = 0
    with conn.cursor() as cur:
        for series in simulate(plant, start, end, seed=7):
            stamps = np.datetime_as_string(series.ts.astype("datetime64[s]")) + "+00"
            columns = dict(series.metrics)
            if series.state is not None:
                columns["state"] = series.state.astype(float)
            buf = io.StringIO()
            for metric, values in columns.items():
                body = "\n".join(
                    f"{series.machine.machine_id}\t{metric}\t{t}\t{v!r}\t{batch_id}"
                    for t, v in zip(
                        stamps.tolist(), np.asarray(values, float).tolist(), strict=True
                    )
                )
                buf.write(body + "\n")
                rows += len(stamps)
            with cur.copy(
                "COPY raw.readings (machine_id, metric, ts, value, batch_id) FROM STDIN"
            ) as copy:
                copy.write(buf.getvalue())
    conn.commit()
    return rows


def _analyze(conn: psycopg.Connection) -> None:
    conn.execute("ANALYZE raw.readings")
    for (part,) in conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'raw.readings'::regclass"
    ).fetchall():
        conn.execute(sql.SQL("ANALYZE raw.{}").format(sql.Identifier(part)))
    conn.commit()


def _timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _measure(conn: psycopg.Connection, zone, repeat: int) -> dict[str, float]:
    start = dt.datetime.combine(DAY, dt.time(), zone)
    end = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(), zone)
    scan = _timed(
        lambda: conn.execute(
            "SELECT count(*) FROM raw.readings WHERE ts > %s AND ts <= %s", (start, end)
        ).fetchone(),
        repeat,
    )
    conn.commit()
    conn.autocommit = True
    try:
        hourly = _timed(lambda: rebuild_hourly_energy(conn, start, end), repeat)
        drivers = _timed(lambda: rebuild_hourly_drivers(conn, start, end), repeat)
    finally:
        conn.autocommit = False
    (raw_rows,) = conn.execute(
        "SELECT count(*) FROM raw.readings WHERE ts > %s AND ts <= %s", (start, end)
    ).fetchone()
    return {"scan_s": scan, "hourly_s": hourly, "drivers_s": drivers, "raw_rows": raw_rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", default="", help="database name to reuse and keep")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    plant = load_plant(DEFAULT_PLANT_FILE)
    zone = plant.sites["plant-a"].zone
    name = args.keep or f"enms_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_dsn, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = psycopg.conninfo.make_conninfo(args.admin_dsn, dbname=name)
    try:
        migrate(dsn)
        with psycopg.connect(dsn) as conn:
            save_plant(conn, plant)
            conn.commit()
            (landed,) = conn.execute("SELECT count(*) FROM raw.readings").fetchone()
            short_first = DAY - dt.timedelta(days=HISTORY_SHORT - 1)
            long_first = DAY - dt.timedelta(days=HISTORY_LONG - 1)
            results = {}
            if not landed:
                t0 = time.perf_counter()
                n = _copy_days(conn, plant, short_first, DAY)
                print(
                    f"landed {n:,} readings ({HISTORY_SHORT} days) "
                    f"in {time.perf_counter() - t0:.0f} s"
                )
                _analyze(conn)
                results[HISTORY_SHORT] = _measure(conn, zone, args.repeat)
                t0 = time.perf_counter()
                n = _copy_days(conn, plant, long_first, short_first - dt.timedelta(days=1))
                print(f"landed {n:,} older readings in {time.perf_counter() - t0:.0f} s")
                _analyze(conn)
            results[HISTORY_LONG] = _measure(conn, zone, args.repeat)
        for days, r in results.items():
            print(
                f"{days:>2} days of history: {r['raw_rows']:,} raw rows in the day; "
                f"count(*) {r['scan_s']:.3f} s, hourly_energy {r['hourly_s']:.3f} s "
                f"(ratio {r['hourly_s'] / r['scan_s']:.2f}), hourly_drivers {r['drivers_s']:.3f} s"
            )
        if len(results) == 2:
            growth = results[HISTORY_LONG]["hourly_s"] / results[HISTORY_SHORT]["hourly_s"]
            print(
                f"hourly_energy cost, {HISTORY_LONG} vs {HISTORY_SHORT} days "
                f"of history: {growth:.2f}"
            )
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak memory of this process: {peak_mb:.0f} MB")
    finally:
        if not args.keep:
            with psycopg.connect(args.admin_dsn, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


if __name__ == "__main__":
    main()
