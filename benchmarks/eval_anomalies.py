"""How well are injected faults found? (issue 7, acceptance 1)

The reference plant (20 machines, sampled once a minute: benchmarks/history.py): a fault-free
baseline period, then ``--days`` days with faults at ``--fault-rate`` per machine and week. The
baselines are fitted on the baseline period, the ``anomalies`` asset is materialized over the
evaluation window in one run, and its events are scored against the simulator's fault labels
at the event level: precision, recall and median detection delay per
fault kind, the events that overlap no fault per machine-week, and false alarms per
machine-week on machines without a fault (``--fault-free`` keeps some machines so).

Some faults leave every reading as it would have been: a power sensor frozen at 0 kW while the
machine is off anyway. The last table simulates each labelled machine with and without its
fault and gives the recall over the faults that changed at least one reading.

    .venv/bin/python benchmarks/eval_anomalies.py [--baseline-days 35] [--days 30]
        [--fault-rate 1.0] [--seed 5] [--fault-free 4 | --fault-free CMP-01,HYD-02]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import numpy as np
from history import FIRST_DAY, land_history, sampled_reference_plant, scratch_database

from enms_dagster.anomalies.evaluation import evaluate
from enms_dagster.anomalies.store import evaluation_report, read_events, read_fault_labels
from enms_dagster.assets.anomalies import build_anomalies
from enms_dagster.baselines.registry import fit_and_register
from enms_dagster.db import connect
from enms_dagster.partitions import daily_partitions, plant_timezone
from enms_dagster.plant import Plant
from enms_dagster.resources import PlantResource, WarehouseResource
from enms_dagster.settings import DEFAULT_PLANT_FILE
from enms_dagster.simulator import simulate
from enms_dagster.simulator.faults import KINDS_BY_TYPE, FaultLabel, plan_faults


def fault_free_machines(plant: Plant, spec: str) -> list[str]:
    """The machines to keep fault-free: ``spec`` is a count (that many, spread evenly over the
    sorted ids of the machines that can have faults: 4 of 20 is every 5th) or a comma-separated
    list of machine ids."""
    candidates = sorted(
        m.machine_id for m in plant.machines.values() if m.machine_type in KINDS_BY_TYPE
    )
    if not spec or spec == "0":
        return []
    if spec.isdigit():
        count = min(int(spec), len(candidates))
        step = len(candidates) / count
        return [candidates[int((i + 1) * step) - 1] for i in range(count)]
    chosen = [m.strip() for m in spec.split(",") if m.strip()]
    unknown = sorted(set(chosen) - set(candidates))
    if unknown:
        raise SystemExit(f"--fault-free: no such machine with faults: {', '.join(unknown)}")
    return chosen


def _readings(series_list) -> dict[str, np.ndarray]:
    columns: dict[str, list[np.ndarray]] = {"ts": []}
    for series in series_list:
        columns["ts"].append(series.ts)
        if series.state is not None:
            columns.setdefault("state", []).append(series.state)
        for name, values in series.metrics.items():
            columns.setdefault(name, []).append(values)
    return {name: np.concatenate(parts) for name, parts in columns.items()}


def observable_faults(
    plant: Plant, faults: Sequence[FaultLabel], seed: int
) -> dict[FaultLabel, bool]:
    """Whether each fault changed at least one reading in (start, end]: its machine simulated
    over the fault with all of its faults, and again without this one."""
    seen = {}
    for fault in faults:
        others = [f for f in faults if f.machine_id == fault.machine_id and f != fault]
        first = fault.start.replace(hour=0, minute=0, second=0, microsecond=0)
        last = fault.end + dt.timedelta(minutes=1)
        runs = [
            _readings(
                simulate(plant, first, last, seed, machine_ids=[fault.machine_id], faults=labels)
            )
            for labels in ([*others, fault], others)
        ]
        ts = runs[0]["ts"]
        inside = (ts > fault.start.timestamp()) & (ts <= fault.end.timestamp())
        seen[fault] = any(
            not np.array_equal(runs[0][name][inside], runs[1][name][inside]) for name in runs[0]
        )
    return seen


def observable_recall(url: str, start, end, seen: dict[FaultLabel, bool]) -> str:
    """Recall per fault kind over the faults that changed a reading."""
    with connect(url) as conn:
        events, labels = read_events(conn, start, end), read_fault_labels(conn, start, end)
    changed = {(f.machine_id, f.kind, f.start) for f, ok in seen.items() if ok}
    keys = zip(labels["machine_id"], labels["kind"], labels["start_ts"], strict=True)
    mask = np.array([(m, k, s.to_pydatetime()) in changed for m, k, s in keys], dtype=bool)
    scores = evaluate(events, labels[mask]).set_index("fault_kind")
    totals = labels.groupby("kind").size()
    lines = [
        f"{'fault kind':<24} {'labels':>6} {'changed a reading':>17} {'found':>6} {'recall':>7}"
    ]
    for kind in [*sorted(totals.index), "all"]:
        total = int(totals.sum() if kind == "all" else totals[kind])
        if kind in scores.index:
            row = scores.loc[kind]
            found, recall = int(row["found"]), f"{row['recall']:.0%}"
            observable = int(row["labels"])
        else:
            found, recall, observable = 0, "-", 0
        lines.append(f"{kind:<24} {total:>6} {observable:>17} {found:>6} {recall:>7}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-days", type=int, default=35)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--fault-rate", type=float, default=1.0, help="per machine and week")
    parser.add_argument("--interval", type=int, default=60, help="sample interval, seconds")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--fault-free",
        default="0",
        help="machines kept fault-free: a count spread over the plant (4: every 5th) or ids",
    )
    args = parser.parse_args()

    plant = sampled_reference_plant(args.interval)
    zone = ZoneInfo(plant_timezone())
    anomalies = build_anomalies(daily_partitions(zone.key, FIRST_DAY))
    eval_start = FIRST_DAY + dt.timedelta(days=args.baseline_days)
    eval_end = eval_start + dt.timedelta(days=args.days)
    kept = fault_free_machines(plant, args.fault_free)
    faults = [
        f
        for f in plan_faults(plant, eval_start, eval_end, args.seed, args.fault_rate)
        if f.machine_id not in kept
    ]
    with scratch_database() as url, tempfile.TemporaryDirectory() as home:
        _, _, summary = land_history(url, plant, args.baseline_days + args.days, args.seed, faults)
        print(f"{summary}; {len(faults)} faults injected after day {args.baseline_days}")
        if kept:
            print(f"kept fault-free: {', '.join(kept)}")
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
            if kept:
                events = read_events(conn, eval_start, eval_end)
                on_kept = events[events["machine_id"].isin(kept)]
                weeks = (eval_end - eval_start) / dt.timedelta(days=7)
                print(
                    f"\nfalse alarms on the {len(kept)} machines kept fault-free: {len(on_kept)} "
                    f"({len(on_kept) / (len(kept) * weeks):.2f} per machine-week)"
                )
                for e in on_kept.itertuples(index=False):
                    print(f"  {e.event_id}: {e.sentence}")
        seen = observable_faults(plant, faults, args.seed)
        print("\nrecall over the faults that changed at least one reading")
        print(observable_recall(url, eval_start, eval_end, seen))


if __name__ == "__main__":
    main()
