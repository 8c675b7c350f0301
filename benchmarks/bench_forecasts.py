"""How much faster are day-ahead forecasts of 20 machines in a process pool than in one process?

On the reference plant's 20 machines (sampled once a minute to keep the landing short) this lands
64 local days of simulated history into a fresh database and builds the hourly layer (in a child
process, so it does not inflate the memory figures). Then it makes the same forecasts as the
``load_forecasts`` asset does — all four models for every machine and target day — in this
process (``max_workers=1``) and in the asset's process pool (forked workers on Linux, one per CPU
unless ``--workers`` says otherwise; worker start-up counts), in ``--repeat`` alternating pairs,
and prints the median ratio of pool to one-process wall time (target ≤ 0.7 on 2 cores; the
median because other load on a shared machine moves single runs). It checks both forecast the
same numbers and reports peak memory: this process's peak RSS after the one-process runs and,
sampled during one more (untimed) pool run, the largest worker's unique memory (USS: a forked
worker shares the rest with this process) and this process's RSS plus every worker's USS.

    .venv/bin/python benchmarks/bench_forecasts.py [--admin-dsn DSN] [--keep DBNAME]
                                                   [--days N] [--workers N] [--repeat N]

``--keep DBNAME`` reuses (or creates and keeps) a database, to iterate without landing again.
Figures are ratios measured in the same run; nothing here asserts a wall-clock time.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import multiprocessing
import os
import resource
import statistics
import threading
import time
import uuid

import numpy as np
import psutil
import psycopg
from psycopg import sql

from enms_dagster.db import connect, migrate
from enms_dagster.forecasts.models import MODELS, ForecastSettings, run_forecasts
from enms_dagster.forecasts.store import load_forecast_tasks
from enms_dagster.hourly.transforms import rebuild_hourly_drivers, rebuild_hourly_energy
from enms_dagster.plant import load_plant
from enms_dagster.plant.store import save_plant
from enms_dagster.settings import DEFAULT_PLANT_FILE
from enms_dagster.simulator.backfill import backfill_direct

FIRST_DAY = dt.date(2026, 1, 5)  # a Monday
HISTORY_DAYS = 64  # 56 training days, a week of lags, and the first target day


def _coarse_reference_plant():
    """The reference plant (20 machines, a weather station) sampled once a minute."""
    plant = load_plant(DEFAULT_PLANT_FILE)
    types = {
        name: dataclasses.replace(t, sample_interval_s=60)
        for name, t in plant.machine_types.items()
    }
    return dataclasses.replace(plant, machine_types=types)


def _land(dsn: str, plant) -> None:
    zone = plant.sites["plant-a"].zone
    start = dt.datetime.combine(FIRST_DAY, dt.time(), zone).astimezone(dt.UTC)
    end = start + dt.timedelta(days=HISTORY_DAYS)
    with connect(dsn, autocommit=True) as conn:
        save_plant(conn, plant)
        (landed,) = conn.execute("SELECT count(*) FROM core.hourly_energy").fetchone()
    if landed:
        return
    t0 = time.perf_counter()
    result = backfill_direct(plant, start, end, dsn, seed=8)
    with connect(dsn, autocommit=True) as conn:
        rebuild_hourly_energy(conn, start, end)
        rebuild_hourly_drivers(conn, start, end)
    print(
        f"landed {result.inserted:,} readings ({HISTORY_DAYS} days, 20 machines) and built the "
        f"hourly layer in {time.perf_counter() - t0:.0f} s"
    )


class _PeakMemory(threading.Thread):
    """Samples this process and its children every 0.5 s; keeps the peak RSS of this process,
    the peak USS of the largest child and the peak of this RSS plus every child's USS (MB)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.me = psutil.Process()
        self.own = self.child = self.total = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            own = self.me.memory_info().rss / 2**20
            children = []
            for child in self.me.children(recursive=True):
                try:
                    children.append(child.memory_full_info().uss / 2**20)
                except psutil.Error:  # ended between listing and reading
                    pass
            self.own = max(self.own, own)
            self.child = max([self.child, *children])
            self.total = max(self.total, own + sum(children))

    def __enter__(self) -> _PeakMemory:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.join()


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _forecast(dsn: str, days: list[dt.date], machines: list[str], workers: int):
    """What the asset does between reading and writing: load the tasks, run them. Returns the
    wall time, the run, and the CPUs used on average (CPU time of this process, its workers and
    their Stan processes over the wall time: under 2 on 2 cores means other load took some)."""
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    with connect(dsn) as conn:
        tasks, _ = load_forecast_tasks(conn, days, ForecastSettings(), machines)
    run = run_forecasts(tasks, MODELS, ForecastSettings(), workers)
    wall = time.perf_counter() - t0
    return wall, run, (_cpu_seconds() - cpu0) / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", default="", help="database name to reuse and keep")
    parser.add_argument("--days", type=int, default=1, help="target days per machine")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeat", type=int, default=3, help="pairs of serial/pool runs")
    args = parser.parse_args()
    plant = _coarse_reference_plant()
    machines = sorted(m.machine_id for m in plant.machines.values() if m.rated_power_kw)
    name = args.keep or f"enms_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_dsn, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = psycopg.conninfo.make_conninfo(args.admin_dsn, dbname=name)
    try:
        migrate(dsn)
        lander = multiprocessing.get_context("spawn").Process(target=_land, args=(dsn, plant))
        lander.start()
        lander.join()
        if lander.exitcode:
            raise SystemExit(f"landing the history failed (exit code {lander.exitcode})")
        last = FIRST_DAY + dt.timedelta(days=HISTORY_DAYS - 1)
        days = [last - dt.timedelta(days=i) for i in range(args.days)][::-1]
        import prophet  # noqa: F401  (imported before timing: the serial run pays no import)

        tasks = len(machines) * len(days)
        print(
            f"{len(machines)} machines x {len(days)} day(s) x {len(MODELS)} models "
            f"({tasks} forecasts of a day), {args.repeat} alternating pairs of runs"
        )
        ratios, cpu_ratios = [], []
        for i in range(args.repeat):
            serial_s, serial, serial_cpus = _forecast(dsn, days, machines, 1)
            parallel_s, parallel, parallel_cpus = _forecast(dsn, days, machines, args.workers)
            ratios.append(parallel_s / serial_s)
            cpu_ratios.append(parallel_s * parallel_cpus / (serial_s * serial_cpus))
            same = np.allclose(
                serial.forecasts["forecast_kwh"].to_numpy(),
                parallel.forecasts["forecast_kwh"].to_numpy(),
            )
            print(
                f"  pair {i + 1}: one process {serial_s:5.1f} s ({serial_cpus:.1f} CPUs), "
                f"pool of {args.workers} {parallel_s:5.1f} s ({parallel_cpus:.1f} CPUs), "
                f"ratio {ratios[-1]:.2f}; same forecasts: {same}, "
                f"failures: {len(parallel.failures)}"
            )
        serial_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"ratio parallel / one process (median of {args.repeat}): "
            f"{statistics.median(ratios):.2f}  (target <= 0.7; load average now "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
        )
        print(
            f"CPU time of the pool / one process (median): {statistics.median(cpu_ratios):.2f} "
            "(the pool's overhead; wall-time gains need CPUs that other load leaves free)"
        )
        with _PeakMemory() as memory:
            _forecast(dsn, days, machines, args.workers)
        print(
            f"peak memory, one process: {serial_mb:.0f} MB RSS; pool: this process "
            f"{memory.own:.0f} MB RSS, largest worker {memory.child:.0f} MB USS, "
            f"together {memory.total:.0f} MB"
        )
    finally:
        if not args.keep:
            with psycopg.connect(args.admin_dsn, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


if __name__ == "__main__":
    main()
