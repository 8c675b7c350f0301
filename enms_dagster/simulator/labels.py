"""Write the simulator's ground truth (fault labels, efficiency measures) to the warehouse."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from enms_dagster.simulator.faults import EfficiencyMeasure, FaultLabel


def save_ground_truth(
    conn: psycopg.Connection,
    faults: Sequence[FaultLabel],
    measures: Sequence[EfficiencyMeasure] = (),
    *,
    seed: int | None = None,
) -> int:
    """Upsert labels and measures in one transaction (re-running a backfill changes nothing);
    return how many rows were written."""
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO core.fault_labels (machine_id, kind, start_ts, end_ts, magnitude, "
            "detail, seed) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (machine_id, kind, start_ts) DO UPDATE SET end_ts = EXCLUDED.end_ts, "
            "magnitude = EXCLUDED.magnitude, detail = EXCLUDED.detail, seed = EXCLUDED.seed",
            [(f.machine_id, f.kind, f.start, f.end, f.magnitude, f.detail, seed) for f in faults],
        )
        cur.executemany(
            "INSERT INTO core.efficiency_measures (machine_id, start_ts, saving, description, "
            "seed) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (machine_id, start_ts) DO UPDATE SET "
            "saving = EXCLUDED.saving, description = EXCLUDED.description, seed = EXCLUDED.seed",
            [(m.machine_id, m.start, m.saving, m.description, seed) for m in measures],
        )
    return len(faults) + len(measures)
