"""Day-ahead forecasts on the reference plant (issue 8, acceptance 1).

The reference plant (20 machines, sampled once a minute: benchmarks/history.py), ``--days`` of
fault-free history; ``load_forecasts`` is backfilled over the last ``--origins`` days in one run
(a rolling-origin backtest: each day from the hours before its midnight), then
``forecast_accuracy`` and ``forecast_champions``. Prints the champion per machine and site with
its CV(RMSE) and skill over seasonal naive, and a summary per machine type.

    .venv/bin/python benchmarks/eval_forecasts.py [--days 70] [--origins 14] [--seed 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
from history import FIRST_DAY, land_history, sampled_reference_plant, scratch_database

from enms_dagster.assets.forecasts import (
    build_load_forecasts,
    forecast_accuracy,
    forecast_champions,
)
from enms_dagster.db import connect
from enms_dagster.partitions import daily_partitions, plant_timezone
from enms_dagster.resources import WarehouseResource


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=70)
    parser.add_argument("--origins", type=int, default=14)
    parser.add_argument("--interval", type=int, default=60, help="sample interval, seconds")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()

    plant = sampled_reference_plant(args.interval)
    zone = ZoneInfo(plant_timezone())
    load_forecasts = build_load_forecasts(daily_partitions(zone.key, FIRST_DAY))
    with scratch_database() as url, tempfile.TemporaryDirectory() as home:
        _, end, summary = land_history(url, plant, args.days, args.seed)
        print(summary)
        last = (end.astimezone(zone) - dt.timedelta(days=1)).date()
        first = last - dt.timedelta(days=args.origins - 1)
        instance = dg.DagsterInstance.ephemeral(tempdir=home)
        resources = {"warehouse": WarehouseResource(database_url=url)}
        began = time.monotonic()
        backtest = dg.materialize(
            [load_forecasts],
            instance=instance,
            resources=resources,
            tags={
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
            },
        )
        assert backtest.success
        scored = dg.materialize(
            [forecast_accuracy, forecast_champions], instance=instance, resources=resources
        )
        assert scored.success
        print(
            f"{args.origins} origins ({first} .. {last}) forecast and scored in "
            f"{time.monotonic() - began:.0f} s (history from {FIRST_DAY:%Y-%m-%d})\n"
        )
        with connect(url) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT coalesce(m.machine_type, 'site') AS type, c.scope_id, c.champion, c.days, "
                "c.cv_rmse, c.skill FROM marts.forecast_champions c "
                "LEFT JOIN core.machines m ON m.machine_id = c.scope_id "
                "ORDER BY c.scope DESC, c.scope_id"
            )
            table = pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])
        print("| scope | type | champion | days | CV(RMSE) | skill vs naive |")
        print("|---|---|---|---|---|---|")
        for r in table.itertuples(index=False):
            print(
                f"| {r.scope_id} | {r.type} | {r.champion} | {r.days} | {r.cv_rmse:.1%} | "
                f"{r.skill:+.0%} |"
            )
        print("\n| type | champions | median CV(RMSE) | median skill |")
        print("|---|---|---|---|")
        for kind, rows in table.groupby("type", sort=True):
            champions = ", ".join(f"{m} ×{n}" for m, n in rows["champion"].value_counts().items())
            print(
                f"| {kind} | {champions} | {rows['cv_rmse'].median():.1%} | "
                f"{rows['skill'].median():+.0%} |"
            )


if __name__ == "__main__":
    main()
