"""How good are the baselines on the reference plant? (issue 6, acceptance 3)

Simulates 90 fault-free days of the reference plant (20 machines and the weather station),
lands them through ``land_batch``, builds the hourly layer and fits every machine and the site,
daily and hourly, with the default candidate drivers. Prints one Markdown row per model: kept
drivers, R², CV(RMSE), NMBE and pass/fail against ASHRAE 14 (daily models against the monthly
gates: CV(RMSE) ≤ 15 %, |NMBE| ≤ 5 %; hourly ≤ 30 %, ≤ 10 %). Machines sample once a minute
here (benchmarks/history.py).

    .venv/bin/python benchmarks/eval_baselines.py [--days 90] [--interval 60] [--seed 3]
"""

from __future__ import annotations

import argparse
import time

from history import land_history, sampled_reference_plant, scratch_database

from enms_dagster.baselines.model import ASHRAE14
from enms_dagster.baselines.registry import fit_and_register
from enms_dagster.db import connect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--interval", type=int, default=60, help="sample interval, seconds")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()

    plant = sampled_reference_plant(args.interval)
    with scratch_database() as url:
        _, _, summary = land_history(url, plant, args.days, args.seed)
        began = time.monotonic()
        with connect(url, autocommit=True) as conn:
            models = fit_and_register(conn, plant, reason="evaluation")
        print(f"{summary}; {len(models)} models fitted in {time.monotonic() - began:.0f} s\n")
        print("| scope | type | resolution | drivers | R² | CV(RMSE) | NMBE | ASHRAE 14 | valid |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in models:
            if r.model is None:
                print(f"| not fitted | | | {r.error} | | | | | |")
                continue
            m, s = r.model, r.model.statistics
            machine = plant.machines.get(m.scope_id)
            kind = machine.machine_type if machine else "site"
            cv_max, nmbe_max = ASHRAE14[m.resolution]
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


if __name__ == "__main__":
    main()
