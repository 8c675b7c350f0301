"""Reading the inputs of anomaly detection (hourly energy, and what the raw-reading detectors
need from ``anomalies/sql``) and storing its flags and events, with no Dagster in it (the asset
``anomalies`` and the CLI call these).

Flags are replaced a window at a time (delete + insert). Events are then recomputed from the
stored flags around the window and reconciled with the stored events (``anomalies/events.py``),
so an event that spans midnight stays one event whichever of its days is computed first, and
recomputing a window with the same data changes nothing.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from enms_dagster.anomalies.contracts import (
    COUNTER_STEP_COLUMNS,
    DEFAULT_THRESHOLDS,
    FLAG_COLUMNS,
    FROZEN_RUN_COLUMNS,
    NOISE_METRICS,
    RESET_METRICS,
    SIGNAL_NOISE_COLUMNS,
    Thresholds,
)
from enms_dagster.anomalies.evaluation import evaluate, evaluate_detectors, format_evaluation
from enms_dagster.anomalies.events import EVENT_COLUMNS, STATE_COLUMNS, group_runs, reconcile_events
from enms_dagster.anomalies.raw_signals import RawSignals
from enms_dagster.baselines.registry import expected_energy
from enms_dagster.db.sql_files import read_sql
from enms_dagster.plant import MachineLabel

# Any constant works; it serializes concurrent runs of the anomalies asset.
_EVENTS_LOCK_KEY = 5_005_009
# How far beyond the window a run of identical power readings is followed, so that a run
# crossing midnight is judged whole whichever day is computed first.
_FROZEN_RUN_MARGIN = dt.timedelta(hours=1)


def _frame(cursor: psycopg.Cursor) -> pd.DataFrame:
    columns = [c.name for c in cursor.description]
    return pd.DataFrame(cursor.fetchall(), columns=columns)


def read_residuals(
    conn: psycopg.Connection, start: dt.datetime, end: dt.datetime, hourly: pd.DataFrame
) -> tuple[pd.DataFrame | None, str]:
    """Actual and baseline-expected kWh per machine and hour from the active baseline model, and
    a note for the asset's metadata. ``None`` while there is no baseline: the residual detectors
    are then skipped and the note says why."""
    expected = expected_energy(conn, start, end, resolution="hourly")
    if expected is None or expected.empty:
        return None, "residual detectors skipped: no active baseline model"
    frame = expected.rename(columns={"scope_id": "machine_id"})
    frame = frame[frame["machine_id"].isin(set(hourly["machine_id"]))]
    frame = frame.assign(
        hour_start=pd.to_datetime(frame["hour_start"], utc=True),
        actual_kwh=pd.to_numeric(frame["actual_kwh"], errors="coerce").astype(float),
        expected_kwh=pd.to_numeric(frame["expected_kwh"], errors="coerce").astype(float),
    )
    frame = frame.merge(
        hourly[["machine_id", "machine_type", "hour_start", "local_date", "is_shift"]],
        on=["machine_id", "hour_start"],
    )
    models = ", ".join(sorted({str(m) for m in frame.get("model_id", pd.Series()).dropna()}))
    return frame, f"residuals against baseline model(s) {models or '?'}"


def update_signal_noise(
    conn: psycopg.Connection,
    start: dt.datetime,
    end: dt.datetime,
    reference_start: dt.datetime | None = None,
) -> int:
    """Recompute ``core.hourly_signal_noise`` for the machine-hours of [start, end) from raw
    readings (delete + insert), and compute the hours of [reference_start, start) that have
    hourly energy but were never computed (a first run, or days landed late), so the reference
    is read from the table instead of weeks of raw readings. Returns the rows written."""
    metrics = list(NOISE_METRICS)
    written = 0
    with conn.transaction():
        # concurrent runs of the asset may share reference hours
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_EVENTS_LOCK_KEY,))
        spans = [(start, end)]
        if reference_start is not None and reference_start < start:
            first, last = conn.execute(
                "SELECT min(e.hour_start), max(e.hour_start) FROM core.hourly_energy e "
                "WHERE e.hour_start >= %(from)s AND e.hour_start < %(to)s AND NOT EXISTS ("
                "    SELECT 1 FROM core.hourly_signal_noise n WHERE n.machine_id = e.machine_id"
                "    AND n.metric = ANY(%(metrics)s) AND n.hour_start = e.hour_start)",
                {"from": reference_start, "to": start, "metrics": metrics},
            ).fetchone()
            if first is not None:
                spans.insert(0, (first, last + dt.timedelta(hours=1)))
        for low, high in spans:
            conn.execute(
                "DELETE FROM core.hourly_signal_noise WHERE hour_start >= %s AND hour_start < %s",
                (low, high),
            )
            cursor = conn.execute(
                read_sql("enms_dagster.anomalies", "hourly_signal_noise"),
                {"metrics": metrics, "start": low, "end": high},
            )
            written += cursor.rowcount
    return written


def _typed(frame: pd.DataFrame, columns, timestamps, numbers) -> pd.DataFrame:
    frame = frame.reindex(columns=list(columns))
    for column in timestamps:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    for column in numbers:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame


def read_raw_signals(
    conn: psycopg.Connection,
    since: dt.datetime,
    start: dt.datetime,
    end: dt.datetime,
    th: Thresholds = DEFAULT_THRESHOLDS,
) -> RawSignals:
    """The raw-reading detectors' input: unrecorded counter resets and runs of identical power
    readings in [start, end) (from raw readings, one pass per machine), and the hourly noise
    of [since, end) (from ``core.hourly_signal_noise``: run ``update_signal_noise`` first)."""
    steps = _frame(
        conn.execute(
            read_sql("enms_dagster.anomalies", "counter_steps_back"),
            {"metrics": list(RESET_METRICS), "start": start, "end": end},
        )
    )
    runs = _frame(
        conn.execute(
            read_sql("enms_dagster.anomalies", "frozen_power_runs"),
            {
                "start": start,
                "end": end,
                "margin": _FROZEN_RUN_MARGIN,
                "min_samples": th.frozen_min_samples,
                "min_duration": dt.timedelta(minutes=th.frozen_min_minutes),
            },
        )
    )
    noise = _frame(
        conn.execute(
            "SELECT machine_id, metric, hour_start, samples, mean_value, noise "
            "FROM core.hourly_signal_noise WHERE hour_start >= %s AND hour_start < %s "
            "ORDER BY machine_id, metric, hour_start",
            (since, end),
        )
    )
    return RawSignals(
        _typed(steps, COUNTER_STEP_COLUMNS, ("ts", "prev_ts"), ("prev_value", "value")),
        _typed(
            runs,
            FROZEN_RUN_COLUMNS,
            ("first_ts", "last_ts"),
            ("power_kw", "samples", "running_samples", "idle_samples", "off_samples"),
        ),
        _typed(noise, SIGNAL_NOISE_COLUMNS, ("hour_start",), ("samples", "mean_value", "noise")),
    )


def _py(value):
    """A value psycopg can send: numpy scalars unwrapped, NaN / NaT as NULL."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


@dataclass
class StoreResult:
    flags: int
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def _local_dates(flags: pd.DataFrame, labels: dict[str, MachineLabel]) -> pd.Series:
    zones = flags["machine_id"].map(lambda m: labels[m].timezone if m in labels else "UTC")
    return pd.Series(
        [ts.tz_convert(zone).date() for ts, zone in zip(flags["hour_start"], zones, strict=True)],
        index=flags.index,
        dtype=object,
    )


_EVENT_TIMESTAMPS = (
    "start_ts",
    "end_ts",
    "first_seen",
    "last_updated",
    "alerted_at",
    "acknowledged_at",
)
_FLAG_NUMBERS = (
    "score",
    "threshold",
    "expected_kwh",
    "actual_kwh",
    "excess_kwh",
    "excess_cost",
    "observed",
    "normal",
)


def _columns(names) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, names))


def _read_events_where(
    conn: psycopg.Connection, where: str, params, lock: bool = False
) -> pd.DataFrame:
    query = sql.SQL("SELECT {} FROM marts.anomaly_events WHERE {}{}").format(
        _columns(EVENT_COLUMNS + STATE_COLUMNS),
        sql.SQL(where),
        sql.SQL(" FOR UPDATE" if lock else ""),
    )
    frame = _frame(conn.execute(query, params))
    for column in _EVENT_TIMESTAMPS:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def store_anomalies(
    conn: psycopg.Connection,
    start: dt.datetime,
    end: dt.datetime,
    flags: pd.DataFrame,
    labels: dict[str, MachineLabel],
    *,
    now: dt.datetime | None = None,
    currency: str = "EUR",
    max_gap_h: int = 0,
) -> StoreResult:
    """Replace the flags of [start, end) and bring the events they touch up to date, in one
    transaction; ``flags`` must lie in the window (FLAG_COLUMNS + excess_cost)."""
    now = now or dt.datetime.now(dt.UTC)
    gap = dt.timedelta(hours=max_gap_h)
    if "excess_cost" not in flags:
        flags = flags.assign(excess_cost=np.nan)
    outside = ~flags["hour_start"].between(pd.Timestamp(start), pd.Timestamp(end), "left")
    if outside.any():
        raise ValueError(f"{int(outside.sum())} flags lie outside [{start}, {end})")
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_EVENTS_LOCK_KEY,))
        conn.execute(
            "DELETE FROM marts.anomalies WHERE hour_start >= %s AND hour_start < %s", (start, end)
        )
        columns = [*FLAG_COLUMNS, "excess_cost", "local_date"]
        rows = flags.assign(local_date=_local_dates(flags, labels))[columns]
        with conn.cursor() as cur:
            cur.executemany(
                sql.SQL("INSERT INTO marts.anomalies ({}) VALUES ({})").format(
                    _columns(columns), sql.SQL(", ").join([sql.Placeholder()] * len(columns))
                ),
                [tuple(_py(v) for v in row) for row in rows.itertuples(index=False)],
            )
        # Events the window touches (adjacent ones too: they may now join a run of the window).
        touching = _read_events_where(
            conn, "start_ts <= %s AND end_ts >= %s", (end + gap, start - gap), lock=True
        )
        low = min([pd.Timestamp(start), *touching["start_ts"]]) - gap
        high = max([pd.Timestamp(end), *touching["end_ts"]]) + gap
        stored = _frame(
            conn.execute(
                sql.SQL(
                    "SELECT {} FROM marts.anomalies WHERE hour_start >= %s AND hour_start < %s"
                ).format(_columns([*FLAG_COLUMNS, "excess_cost"])),
                (low, high),
            )
        )
        stored["hour_start"] = pd.to_datetime(stored["hour_start"], utc=True)
        for column in _FLAG_NUMBERS:  # an all-NULL column would come back as objects
            stored[column] = pd.to_numeric(stored[column], errors="coerce").astype(float)
        runs = group_runs(stored, max_gap_h)
        keep = [_keep(run, start, end, touching) for run in runs.itertuples(index=False)]
        runs = runs.loc[np.array(keep, dtype=bool)]
        changes = reconcile_events(runs, touching, labels, now, currency)
        if changes.deleted:
            conn.execute(
                "DELETE FROM marts.anomaly_events WHERE event_id = ANY(%s)", (changes.deleted,)
            )
        _upsert_events(conn, changes.upserts)
        conn.execute(
            "UPDATE marts.anomalies a SET event_id = e.event_id FROM marts.anomaly_events e "
            "WHERE a.machine_id = e.machine_id AND a.kind = e.kind "
            "AND a.hour_start >= e.start_ts AND a.hour_start < e.end_ts "
            "AND a.hour_start >= %s AND a.hour_start < %s "
            "AND a.event_id IS DISTINCT FROM e.event_id",
            (low, high),
        )
    return StoreResult(len(flags), changes.created, changes.updated, changes.deleted)


def _keep(run, start, end, touching: pd.DataFrame) -> bool:
    """A run the window decides: it has hours in the window or overlaps an event it touches
    (other runs in the loaded range belong to events this window leaves alone)."""
    if run.start_ts < pd.Timestamp(end) and run.end_ts > pd.Timestamp(start):
        return True
    same = touching[(touching["machine_id"] == run.machine_id) & (touching["kind"] == run.kind)]
    return bool(((same["start_ts"] < run.end_ts) & (same["end_ts"] > run.start_ts)).any())


def _upsert_events(conn: psycopg.Connection, events: pd.DataFrame) -> None:
    if events.empty:
        return
    columns = list(EVENT_COLUMNS + STATE_COLUMNS)
    updates = sql.SQL(", ").join(
        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in columns[1:]
    )
    query = sql.SQL(
        "INSERT INTO marts.anomaly_events ({}) VALUES ({}) ON CONFLICT (event_id) DO UPDATE SET {}"
    ).format(_columns(columns), sql.SQL(", ").join([sql.Placeholder()] * len(columns)), updates)
    with conn.cursor() as cur:
        cur.executemany(
            query, [tuple(_py(v) for v in row) for row in events[columns].itertuples(index=False)]
        )


def read_events(conn: psycopg.Connection, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """Events overlapping [start, end), oldest first."""
    frame = _read_events_where(conn, "start_ts < %s AND end_ts > %s", (end, start))
    return frame.sort_values(["start_ts", "event_id"], ignore_index=True)


def read_fault_labels(
    conn: psycopg.Connection, start: dt.datetime, end: dt.datetime
) -> pd.DataFrame:
    """Labelled faults (core.fault_labels) overlapping [start, end)."""
    frame = _frame(
        conn.execute(
            "SELECT machine_id, kind, start_ts, end_ts, magnitude FROM core.fault_labels "
            "WHERE start_ts < %s AND end_ts > %s ORDER BY start_ts, machine_id",
            (end, start),
        )
    )
    frame["start_ts"] = pd.to_datetime(frame["start_ts"], utc=True)
    frame["end_ts"] = pd.to_datetime(frame["end_ts"], utc=True)
    return frame


def run_evaluation(conn: psycopg.Connection, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """Score the stored events of [start, end) against the fault labels of the same period
    (``anomalies.evaluation.evaluate``); the monitored machines are those with hourly energy."""
    events = read_events(conn, start, end)
    labels = read_fault_labels(conn, start, end)
    machines = [
        m
        for (m,) in conn.execute(
            "SELECT DISTINCT machine_id FROM core.hourly_energy "
            "WHERE hour_start >= %s AND hour_start < %s",
            (start, end),
        )
    ]
    return evaluate(events, labels, machines=machines, start=start, end=end)


def evaluation_report(conn: psycopg.Connection, start: dt.datetime, end: dt.datetime) -> str:
    """What ``enms evaluate anomalies`` prints: scores per fault kind, then precision per
    detector."""
    scores = run_evaluation(conn, start, end)
    lines = [f"anomaly events {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC", ""]
    lines.append(format_evaluation(scores))
    events, labels = read_events(conn, start, end), read_fault_labels(conn, start, end)
    if len(events):
        lines += ["", f"{'detector':<18} {'method':<18} {'events':>6} {'true':>5} {'precision':>9}"]
        for row in evaluate_detectors(events, labels).itertuples(index=False):
            lines.append(
                f"{row.kind:<18} {row.method:<18} {row.events:>6} {row.true_events:>5} "
                f"{row.precision:>9.0%}"
            )
    return "\n".join(lines)
