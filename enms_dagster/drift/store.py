"""Baseline drift in the warehouse: daily residuals of each machine against its active daily
baseline, and ``marts.drift_events``. No Dagster here; the maths is in
``enms_dagster.drift.cusum``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import psycopg
from psycopg.types.json import Jsonb

from enms_dagster.baselines.registry import active_models, expected_energy
from enms_dagster.drift.cusum import (
    DriftEvent,
    DriftSettings,
    detect_drift,
    residual_sigma,
)

DRIFT_DEFAULTS = DriftSettings()


def daily_residuals(
    conn: psycopg.Connection, settings: DriftSettings = DRIFT_DEFAULTS
) -> list[tuple[int, str, float, pd.DataFrame]]:
    """Per machine with an active daily baseline: (model_id, machine_id, σ, residual frame) for
    the complete local days (≥ 23 hours) after the baseline period, actual and expected kWh from
    ``enms_dagster.baselines.registry.expected_energy``."""
    models = active_models(conn, "daily", scope="machine")
    if not models:
        return []
    start_day = min(m.period_end for _, _, m in models) + dt.timedelta(days=1)
    (last_day,) = conn.execute(
        "SELECT max(local_date) FROM core.hourly_energy WHERE machine_id = ANY (%s)",
        ([m.scope_id for _, _, m in models],),
    ).fetchone()
    if last_day is None or last_day < start_day:
        return []
    start = dt.datetime.combine(start_day, dt.time(), dt.UTC)
    end = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), dt.UTC)
    expected = expected_energy(conn, start, end, resolution="daily")
    hours = pd.DataFrame(
        conn.execute(
            "SELECT machine_id, local_date, count(*) FROM core.hourly_energy "
            "WHERE local_date BETWEEN %s AND %s GROUP BY 1, 2",
            (start_day, last_day),
        ).fetchall(),
        columns=["scope_id", "local_date", "hours"],
    )
    complete = {(m, d) for m, d, h in hours.itertuples(index=False) if h >= 23}
    out = []
    for model_id, _, model in models:
        rows = expected[expected["scope_id"] == model.scope_id]
        days = [pd.Timestamp(d).date() for d in rows["hour_start"]]
        keep = [d > model.period_end and (model.scope_id, d) in complete for d in days]
        frame = pd.DataFrame(
            {
                "local_date": [d for d, k in zip(days, keep, strict=True) if k],
                "actual_kwh": rows["actual_kwh"].to_numpy(float)[keep],
                "expected_kwh": rows["expected_kwh"].to_numpy(float)[keep],
            }
        )
        s = model.statistics
        sigma = residual_sigma(s.rmse, s.residual_autocorrelation, s.mean_energy_kwh, settings)
        out.append((model_id, model.scope_id, sigma, frame))
    return out


def find_drift_events(
    conn: psycopg.Connection, settings: DriftSettings = DRIFT_DEFAULTS
) -> list[DriftEvent]:
    """Drift events of every machine against its active daily baseline (nothing is stored)."""
    events = []
    for model_id, machine_id, sigma, frame in daily_residuals(conn, settings):
        events.extend(detect_drift(frame, machine_id, model_id, sigma, settings))
    return events


def store_drift_events(conn: psycopg.Connection, events: Sequence[DriftEvent]) -> list[str]:
    """Insert events not stored yet (an event id found again is kept as first stored); return
    the ids inserted."""
    inserted = []
    with conn.transaction():
        for e in events:
            row = conn.execute(
                """
                INSERT INTO marts.drift_events (
                    event_id, machine_id, model_id, method, direction, change_start,
                    detected_on, delay_days, statistic, threshold, allowance, sigma_kwh,
                    mean_residual_kwh, mean_residual_share, evidence, residuals)
                VALUES (%s, %s, %s, 'cusum', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (event_id) DO NOTHING
                RETURNING event_id
                """,
                (
                    e.event_id, e.machine_id, e.model_id, e.direction, e.change_start,
                    e.detected_on, e.delay_days, e.statistic, e.threshold, e.allowance,
                    e.sigma_kwh, e.mean_residual_kwh, e.mean_residual_share, e.evidence,
                    Jsonb(e.residuals),
                ),
            ).fetchone()  # fmt: skip
            if row:
                inserted.append(row[0])
    return inserted


@dataclass(frozen=True)
class StoredDriftEvent:
    seq: int
    event_id: str
    machine_id: str
    direction: str
    change_start: dt.date
    detected_on: dt.date
    evidence: str


def drift_events_after(conn: psycopg.Connection, seq: int) -> list[StoredDriftEvent]:
    """Stored drift events with ``seq`` greater than the given one, oldest first."""
    rows = conn.execute(
        "SELECT seq, event_id, machine_id, direction, change_start, detected_on, evidence "
        "FROM marts.drift_events WHERE seq > %s ORDER BY seq",
        (seq,),
    ).fetchall()
    return [StoredDriftEvent(*row) for row in rows]
