"""How good are the baselines on the reference plant? (issue 6, acceptance 3)

Simulates 90 fault-free days of the reference plant (20 machines and the weather station),
lands them through ``land_batch``, builds the hourly layer and fits every machine and the site,
daily and hourly, with the default candidate drivers. Prints one Markdown row per model: kept
drivers, R², CV(RMSE), NMBE and pass/fail against ASHRAE 14 (daily models against the monthly
gates: CV(RMSE) ≤ 15 %, |NMBE| ≤ 5 %; hourly ≤ 30 %, ≤ 10 %).

The machines sample once a minute here (``--interval``) instead of their native 1–30 s so that
90 days land in a minute or two; the hourly kWh they produce are the same physics.

    .venv/bin/python benchmarks/eval_baselines.py [--days 90] [--interval 60] [--admin-dsn DSN]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import time
import uuid

import psycopg
from psycopg import sql

from enms_dagster.baselines import fit_and_register
from enms_dagster.plant import load_plant
from enms_dagster.plant.store import save_plant
from enms_dagster.settings import DEFAULT_PLANT_FILE
from enms_dagster.simulator.backfill import backfill_direct
from enms_dagster.transforms import rebuild_hourly_drivers, rebuild_hourly_energy
from enms_dagster.warehouse import connect, migrate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--interval", type=int, default=60, help="sample interval, seconds")
    parser.add_argument("--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()

    plant = load_plant(DEFAULT_PLANT_FILE)
    plant = dataclasses.replace(
        plant,
        machine_types={
            name: dataclasses.replace(t, sample_interval_s=args.interval)
            for name, t in plant.machine_types.items()
        },
    )
    name = f"enms_eval_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(args.admin_dsn, dbname=name)
    try:
        migrate(url)
        with connect(url, autocommit=True) as conn:
            save_plant(conn, plant)
        start = dt.datetime(2026, 1, 4, 23, tzinfo=dt.UTC)  # local midnight, Monday 5 January
        end = start + dt.timedelta(days=args.days)
        began = time.monotonic()
        landed = backfill_direct(plant, start, end, url, seed=args.seed)
        with connect(url, autocommit=True) as conn:
            rebuild_hourly_energy(conn, start, end)
            rebuild_hourly_drivers(conn, start, end)
            prepared = time.monotonic() - began
            began = time.monotonic()
            models = fit_and_register(conn, plant, reason="evaluation")
            fitted = time.monotonic() - began
        print(
            f"{landed.readings:,} readings over {args.days} days landed and aggregated in "
            f"{prepared:.0f} s; {len(models)} models fitted in {fitted:.0f} s\n"
        )
        print("| scope | type | resolution | drivers | R² | CV(RMSE) | NMBE | ASHRAE 14 | valid |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in models:
            if r.model is None:
                print(f"| not fitted | | | {r.error} | | | | | |")
                continue
            m, s = r.model, r.model.statistics
            kind = (
                plant.machines[m.scope_id].machine_type if m.scope_id in plant.machines else "site"
            )
            cv_max, nmbe_max = {"daily": (0.15, 0.05), "hourly": (0.30, 0.10)}[m.resolution]
            ashrae = "pass" if s.cv_rmse <= cv_max and abs(s.nmbe) <= nmbe_max else "FAIL"
            drivers = ", ".join(
                f"{d} ({m.balance_points_c[d]:g} °C)" if d in m.balance_points_c else d
                for d in m.drivers
            )
            print(
                f"| {m.scope_id} | {kind} | {m.resolution} | {drivers} | {s.r2:.3f} | "
                f"{s.cv_rmse:.1%} | {s.nmbe:+.2%} | {ashrae} | "
                f"{'yes' if m.valid else '; '.join(m.failures)} |"
            )
    finally:
        with psycopg.connect(args.admin_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    main()
