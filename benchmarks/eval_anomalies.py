"""How well are injected faults found? (issue 7, acceptance 1)

The reference plant (20 machines, sampled once a minute: benchmarks/history.py): a fault-free
baseline period, then ``--days`` days with faults at ``--fault-rate`` per machine and week. The
baselines are fitted on the baseline period, the ``anomalies`` asset is materialized over the
evaluation window in one run, and its events are scored against the simulator's fault labels
at the event level (../shared/DOMAIN.md): precision, recall and median detection delay per
fault kind, and false alarms per machine-week on machines without a fault.

    .venv/bin/python benchmarks/eval_anomalies.py [--baseline-days 35] [--days 30]
        [--fault-rate 1.0] [--seed 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
from history import FIRST_DAY, land_history, sampled_reference_plant, scratch_database

from enms_dagster.anomaly_store import evaluation_report
from enms_dagster.assets.anomalies import anomalies
from enms_dagster.baselines import fit_and_register
from enms_dagster.partitions import PLANT_TIMEZONE
from enms_dagster.resources import PlantResource, WarehouseResource
from enms_dagster.settings import DEFAULT_PLANT_FILE
from enms_dagster.simulator.faults import plan_faults
from enms_dagster.warehouse import connect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-days", type=int, default=35)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--fault-rate", type=float, default=1.0, help="per machine and week")
    parser.add_argument("--interval", type=int, default=60, help="sample interval, seconds")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()

    plant = sampled_reference_plant(args.interval)
    zone = ZoneInfo(PLANT_TIMEZONE)
    eval_start = FIRST_DAY + dt.timedelta(days=args.baseline_days)
    eval_end = eval_start + dt.timedelta(days=args.days)
    faults = plan_faults(plant, eval_start, eval_end, args.seed, args.fault_rate)
    with scratch_database() as url, tempfile.TemporaryDirectory() as home:
        _, _, summary = land_history(url, plant, args.baseline_days + args.days, args.seed, faults)
        print(f"{summary}; {len(faults)} faults injected after day {args.baseline_days}")
        last_baseline_day = (eval_start.astimezone(zone) - dt.timedelta(days=1)).date()
        with connect(url, autocommit=True) as conn:
            fit_and_register(conn, plant, reason="evaluation", period=(None, last_baseline_day))
        began = time.monotonic()
        first = eval_start.astimezone(zone).date()
        last = (eval_end.astimezone(zone) - dt.timedelta(seconds=1)).date()
        result = dg.materialize(
            [anomalies],
            instance=dg.DagsterInstance.ephemeral(tempdir=home),
            resources={
                "warehouse": WarehouseResource(database_url=url),
                "plant": PlantResource(plant_file=str(Path(DEFAULT_PLANT_FILE))),
            },
            tags={
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
            },
        )
        print(f"anomalies for {first} .. {last} in {time.monotonic() - began:.0f} s\n")
        assert result.success
        with connect(url) as conn:
            print(evaluation_report(conn, eval_start, eval_end))


if __name__ == "__main__":
    main()
