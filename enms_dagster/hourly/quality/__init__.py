"""Data quality with Great Expectations 1.x, as plain functions (no Dagster here).

Each check computes the few rows it needs in PostgreSQL (one window's rows or per-machine
aggregates), validates that small DataFrame with one expectation in an ephemeral GX context, and
returns a :class:`CheckOutcome` that says what failed, where and how many rows. The Dagster asset
checks in ``enms_dagster/assets/hourly.py`` wrap these and record the outcome per local day in
``core.check_results``, which retention reads.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import psycopg

if TYPE_CHECKING:
    import pandas as pd

# Clock skew tolerated before a reading counts as coming from the future.
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
# Counter kWh and integrated power may differ by this much (absolute kWh or share of power kWh).
COUNTER_TOLERANCE_KWH = 0.05
COUNTER_TOLERANCE_SHARE = 0.02
# An hour with less than this share of its expected samples is reported (a warning).
MIN_COMPLETENESS = 0.9


@dataclass(frozen=True)
class CheckOutcome:
    """What a check found: passed or not, rows looked at, failing rows and a few examples."""

    passed: bool
    checked_rows: int
    failed_rows: int
    examples: list[dict[str, Any]] = field(default_factory=list)
    failed_dates: frozenset[dt.date] = frozenset()
    expectation: str = ""


@cache
def _batch_definition():
    """One ephemeral GX context per process, with a pandas data source for any DataFrame."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    # GX sets this module's logger to INFO at import and announces every ephemeral context
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    source = context.data_sources.add_pandas("enms_quality")
    return source.add_dataframe_asset("frame").add_batch_definition_whole_dataframe("whole")


def validate_frame(
    frame: pd.DataFrame, expectation, keys: list[str], date_column: str | None = None
) -> CheckOutcome:
    """Validate ``frame`` against one GX expectation; failing rows are named by ``keys``."""
    name = type(expectation).__name__
    if frame.empty:
        return CheckOutcome(True, 0, 0, expectation=name)
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(
        expectation,
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": keys},
    )
    failing = result.result.get("unexpected_index_list") or []
    dates = (
        frozenset(row[date_column] for row in failing if date_column) if failing else frozenset()
    )
    examples = [{k: _plain(v) for k, v in row.items()} for row in failing[:10]]
    return CheckOutcome(
        passed=bool(result.success),
        checked_rows=len(frame),
        failed_rows=int(result.result.get("unexpected_count") or len(failing)),
        examples=examples,
        failed_dates=dates,
        expectation=name,
    )


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _frame(conn: psycopg.Connection, query: str, params: dict) -> pd.DataFrame:
    import pandas as pd  # here, like GX: the code location imports this module, checks call it

    with conn.cursor() as cur:
        cur.execute(query, params)
        columns = [c.name for c in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=columns)


def _gx():
    _batch_definition()
    import great_expectations as gx

    return gx


def check_raw_values_in_range(
    conn: psycopg.Connection, start: dt.datetime, end: dt.datetime, zone: str
) -> CheckOutcome:
    """Every reading in (start, end] lies inside its metric's physical range (core.metrics)."""
    frame = _frame(
        conn,
        "SELECT r.machine_id, r.metric, (r.ts AT TIME ZONE %(zone)s)::date AS local_date, "
        "count(*) AS readings, "
        "count(*) FILTER (WHERE r.value < m.min_value OR r.value > m.max_value) AS out_of_range, "
        "min(r.value) AS lowest, max(r.value) AS highest "
        "FROM raw.readings r JOIN core.metrics m USING (metric) "
        "WHERE r.ts > %(start)s AND r.ts <= %(end)s "
        "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        {"start": start, "end": end, "zone": zone},
    )
    outcome = validate_frame(
        frame,
        _gx().expectations.ExpectColumnValuesToBeBetween(
            column="out_of_range", min_value=0, max_value=0
        ),
        ["machine_id", "metric", "local_date", "lowest", "highest"],
        "local_date",
    )
    bad = int(frame["out_of_range"].sum()) if not frame.empty else 0
    return _with_rows(outcome, bad, int(frame["readings"].sum()) if not frame.empty else 0)


def check_raw_no_future_readings(
    conn: psycopg.Connection, now: dt.datetime, zone: str
) -> CheckOutcome:
    """No reading is stamped later than now (plus a little clock skew). Only the partitions
    after now are scanned, so it looks at the whole table at no cost."""
    frame = _frame(
        conn,
        "SELECT machine_id, metric, (ts AT TIME ZONE %(zone)s)::date AS local_date, ts "
        "FROM raw.readings WHERE ts > %(limit)s ORDER BY ts LIMIT 10000",
        {"limit": now + FUTURE_TOLERANCE, "zone": zone},
    )
    frame["seconds_ahead"] = [(ts - now).total_seconds() for ts in frame["ts"]]
    return (
        validate_frame(
            frame,
            _gx().expectations.ExpectColumnValuesToBeBetween(
                column="seconds_ahead", max_value=FUTURE_TOLERANCE.total_seconds()
            ),
            ["machine_id", "metric", "ts", "local_date"],
            "local_date",
        )
        if not frame.empty
        else CheckOutcome(True, 0, 0, expectation="ExpectColumnValuesToBeBetween")
    )


def check_raw_counters_monotonic(
    conn: psycopg.Connection, start: dt.datetime, end: dt.datetime, zone: str
) -> CheckOutcome:
    """Counters (core.metrics kind 'counter') never step backwards in (start, end], except
    rollovers (as hourly_energy reads them) and resets recorded in core.counter_resets."""
    frame = _frame(
        conn,
        """
        WITH steps AS (
            SELECT r.machine_id, r.metric, r.ts, r.value,
                   lag(r.value) OVER w AS prev_value, m.rollover_at
            FROM raw.readings r JOIN core.metrics m USING (metric)
            WHERE m.kind = 'counter' AND r.ts > %(start)s AND r.ts <= %(end)s
            WINDOW w AS (PARTITION BY r.machine_id, r.metric ORDER BY r.ts)
        )
        SELECT s.machine_id, s.metric, (s.ts AT TIME ZONE %(zone)s)::date AS local_date,
               count(*) AS steps,
               count(*) FILTER (
                   WHERE s.value < s.prev_value
                     AND s.value + COALESCE(s.rollover_at,
                             power(10, floor(log(greatest(s.prev_value, 1e-9))) + 1))
                         - s.prev_value
                         > 0.01 * COALESCE(s.rollover_at,
                             power(10, floor(log(greatest(s.prev_value, 1e-9))) + 1))
                     AND NOT EXISTS (
                         SELECT 1 FROM core.counter_resets c
                         WHERE c.machine_id = s.machine_id AND c.metric = s.metric
                           AND c.ts = s.ts)
               ) AS unrecorded_drops
        FROM steps s
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        """,
        {"start": start, "end": end, "zone": zone},
    )
    outcome = validate_frame(
        frame,
        _gx().expectations.ExpectColumnValuesToBeBetween(
            column="unrecorded_drops", min_value=0, max_value=0
        ),
        ["machine_id", "metric", "local_date", "unrecorded_drops"],
        "local_date",
    )
    bad = int(frame["unrecorded_drops"].sum()) if not frame.empty else 0
    return _with_rows(outcome, bad, int(frame["steps"].sum()) if not frame.empty else 0)


def _hourly_frame(conn: psycopg.Connection, start: dt.datetime, end: dt.datetime, extra: str):
    return _frame(
        conn,
        "SELECT machine_id, hour_start, local_date, energy_kwh, energy_method, power_kwh, "
        "completeness " + extra + " FROM core.hourly_energy "
        "WHERE hour_start >= %(start)s AND hour_start < %(end)s ORDER BY machine_id, hour_start",
        {"start": start, "end": end},
    )


def check_hourly_energy_not_negative(
    conn: psycopg.Connection, start: dt.datetime, end: dt.datetime
) -> CheckOutcome:
    """No machine-hour of the window has negative kWh."""
    frame = _hourly_frame(conn, start, end, "")
    return validate_frame(
        frame,
        _gx().expectations.ExpectColumnValuesToBeBetween(column="energy_kwh", min_value=0),
        ["machine_id", "hour_start", "local_date"],
        "local_date",
    )


def check_counter_matches_power(
    conn: psycopg.Connection,
    start: dt.datetime,
    end: dt.datetime,
    tolerance_kwh: float = COUNTER_TOLERANCE_KWH,
    tolerance_share: float = COUNTER_TOLERANCE_SHARE,
) -> CheckOutcome:
    """Where both exist, counter kWh and integrated power kWh agree within a tolerance."""
    frame = _hourly_frame(conn, start, end, "")
    frame = frame[(frame["energy_method"] == "counter") & frame["power_kwh"].notna()].copy()
    frame["difference_kwh"] = (frame["energy_kwh"] - frame["power_kwh"]).abs()
    frame["allowed_kwh"] = (frame["power_kwh"].abs() * tolerance_share).clip(lower=tolerance_kwh)
    return validate_frame(
        frame.reset_index(drop=True),
        _gx().expectations.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="allowed_kwh", column_B="difference_kwh", or_equal=True
        ),
        ["machine_id", "hour_start", "local_date", "energy_kwh", "power_kwh"],
        "local_date",
    )


def check_hourly_completeness(
    conn: psycopg.Connection,
    start: dt.datetime,
    end: dt.datetime,
    minimum: float = MIN_COMPLETENESS,
) -> CheckOutcome:
    """Each machine-hour has at least ``minimum`` of its expected samples."""
    frame = _hourly_frame(conn, start, end, "")
    frame = frame[frame["completeness"].notna()].reset_index(drop=True)
    return validate_frame(
        frame,
        _gx().expectations.ExpectColumnValuesToBeBetween(column="completeness", min_value=minimum),
        ["machine_id", "hour_start", "local_date", "completeness"],
        "local_date",
    )


def _with_rows(outcome: CheckOutcome, failed_rows: int, checked_rows: int) -> CheckOutcome:
    """Aggregate checks validate one row per machine, metric and day; report readings."""
    return CheckOutcome(
        outcome.passed,
        checked_rows,
        failed_rows,
        outcome.examples,
        outcome.failed_dates,
        outcome.expectation,
    )


def record_check_outcome(
    conn: psycopg.Connection,
    asset: str,
    check_name: str,
    dates: list[dt.date],
    outcome: CheckOutcome,
) -> None:
    """Store the outcome per local day in core.check_results (a day passes unless its rows
    failed; a failure that names no day fails every day of the window)."""
    blame_all = not outcome.passed and not (outcome.failed_dates & set(dates))
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO core.check_results (asset, check_name, local_date, passed, failed_rows) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (asset, check_name, local_date) DO UPDATE "
            "SET passed = EXCLUDED.passed, failed_rows = EXCLUDED.failed_rows, "
            "evaluated_at = now()",
            [
                (
                    asset,
                    check_name,
                    day,
                    not (blame_all or day in outcome.failed_dates),
                    outcome.failed_rows if (blame_all or day in outcome.failed_dates) else 0,
                )
                for day in dates
            ],
        )
