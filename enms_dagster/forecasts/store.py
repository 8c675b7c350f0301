"""Forecasts in the warehouse: the inputs a forecast reads (hourly history and the known calendar
of the target days), ``marts.forecasts``, ``marts.forecast_accuracy`` and
``marts.forecast_champions``. No Dagster here; the maths is in
``enms_dagster.forecasts.models`` and ``enms_dagster.forecasts.scoring``."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import psycopg
from psycopg.types.json import Jsonb

from enms_dagster.baselines.registry import load_hourly_frame
from enms_dagster.db.sql_files import read_sql
from enms_dagster.forecasts.models import (
    CALENDAR_COLUMNS,
    WEEK_H,
    ForecastSettings,
    ForecastTask,
    forecast_tasks,
)
from enms_dagster.forecasts.names import REFERENCE_MODEL
from enms_dagster.forecasts.scoring import (
    ChampionDecision,
    choose_champion,
    pool_daily_scores,
    score_forecasts,
)

SCOPES = ("machine", "site")
FORECAST_DEFAULTS = ForecastSettings()


# --- inputs -----------------------------------------------------------------------------------


def forecast_scopes(
    conn: psycopg.Connection, first: dt.date, last: dt.date, scope_ids: Iterable[str] = ()
) -> dict[str, list[str]]:
    """Machines with hourly energy and sites with hourly drivers energy between the local days
    ``first`` and ``last``, optionally only ``scope_ids``: what can be forecast."""
    wanted = list(scope_ids)
    machines = [
        m
        for (m,) in conn.execute(
            "SELECT DISTINCT machine_id FROM core.hourly_energy "
            "WHERE local_date BETWEEN %s AND %s "
            "AND (cardinality(%s::text[]) = 0 OR machine_id = ANY (%s)) ORDER BY 1",
            (first, last, wanted, wanted),
        )
    ]
    sites = [
        s
        for (s,) in conn.execute(
            "SELECT DISTINCT site_id FROM core.hourly_drivers "
            "WHERE local_date BETWEEN %s AND %s AND energy_kwh IS NOT NULL "
            "AND (cardinality(%s::text[]) = 0 OR site_id = ANY (%s)) ORDER BY 1",
            (first, last, wanted, wanted),
        )
    ]
    return {"machine": machines, "site": sites}


def load_calendar(
    conn: psycopg.Connection,
    scope: str,
    scope_ids: Sequence[str],
    first: dt.date,
    last: dt.date,
) -> pd.DataFrame:
    """The calendar (``CALENDAR_COLUMNS``) of the local days [first, last] per machine or site,
    from the site's shifts and holidays: known for future days too."""
    with conn.cursor() as cur:
        cur.execute(
            read_sql("enms_dagster.forecasts", "calendar_hours"),
            {"scope": scope, "scope_ids": list(scope_ids), "first_date": first, "last_date": last},
        )
        frame = pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])
    if frame.empty:
        return pd.DataFrame(columns=["scope_id", *CALENDAR_COLUMNS])
    frame["is_working_day"] = frame["is_working_day"].astype(bool)
    frame["is_shift"] = frame["is_shift"].astype(bool)
    return frame


def load_forecast_inputs(
    conn: psycopg.Connection,
    scopes: dict[str, list[str]],
    days: Sequence[dt.date],
    settings: ForecastSettings,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """History (the hourly frames of machines and sites, up to the day before the first target
    day) and the calendar of the target days, with the scope of each id."""
    first = min(days) - dt.timedelta(days=settings.train_days + WEEK_H // 24 + 2)
    history_last = max(days) - dt.timedelta(days=1)
    histories, calendars, scope_of = [], [], {}
    for scope in SCOPES:
        ids = scopes.get(scope, [])
        if not ids:
            continue
        scope_of.update(dict.fromkeys(ids, scope))
        histories.append(load_hourly_frame(conn, scope, ids, first, history_last))
        calendars.append(load_calendar(conn, scope, ids, min(days), max(days)))
    history = pd.concat(histories, ignore_index=True) if histories else pd.DataFrame()
    calendar = pd.concat(calendars, ignore_index=True) if calendars else pd.DataFrame()
    return history, calendar, scope_of


def load_forecast_tasks(
    conn: psycopg.Connection,
    days: Sequence[dt.date],
    settings: ForecastSettings = FORECAST_DEFAULTS,
    scope_ids: Iterable[str] = (),
) -> tuple[list[ForecastTask], dict[str, str]]:
    """A forecast task per machine (or site) with energy and target day, each with the history
    before its day and its calendar, and the scope of each id. Run them with
    ``enms_dagster.forecasts.models.run_forecasts``; no connection is needed for that."""
    span_first = min(days) - dt.timedelta(days=settings.train_days)
    scopes = forecast_scopes(conn, span_first, max(days), scope_ids)
    history, calendar, scope_of = load_forecast_inputs(conn, scopes, days, settings)
    if calendar.empty:
        return [], scope_of
    return forecast_tasks(history, calendar, days, settings), scope_of


# --- marts.forecasts --------------------------------------------------------------------------


def write_forecasts(
    conn: psycopg.Connection,
    forecasts: pd.DataFrame,
    scope_of: dict[str, str],
    days: Sequence[dt.date],
    models: Sequence[str],
    settings: ForecastSettings,
) -> int:
    """Replace the forecasts of ``models`` for the scopes in ``scope_of`` and the target
    ``days`` with ``forecasts``, in one transaction; return rows written."""
    rows = [
        (
            scope_of[r.scope_id], r.scope_id, r.model, r.hour_start.to_pydatetime(), r.local_date,
            r.origin.to_pydatetime(), int(r.horizon_h), float(r.forecast_kwh),
            float(r.lower_kwh), float(r.upper_kwh), settings.interval,
            None if pd.isna(r.temperature_c) else float(r.temperature_c),
        )
        for r in forecasts.itertuples(index=False)
    ]  # fmt: skip
    with conn.transaction():
        conn.execute(
            "DELETE FROM marts.forecasts WHERE local_date = ANY (%s) AND scope_id = ANY (%s) "
            "AND model = ANY (%s)",
            (list(days), list(scope_of), list(models)),
        )
        with conn.cursor() as cur:
            cur.executemany(
                """
                INSERT INTO marts.forecasts (
                    scope, scope_id, model, hour_start, local_date, origin, horizon_h,
                    forecast_kwh, lower_kwh, upper_kwh, interval_level, temperature_c)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                """,
                rows,
            )
    return len(rows)


def forecasts_with_actuals(
    conn: psycopg.Connection, first: dt.date, last: dt.date, scope_ids: Iterable[str] = ()
) -> pd.DataFrame:
    """Stored forecasts of the target days [first, last] with the metered energy of their hours
    (``actual_kwh``; NULL where it has not landed): machines from core.hourly_energy, sites from
    core.hourly_drivers."""
    wanted = list(scope_ids)
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT f.scope, f.scope_id, f.model, f.hour_start, f.local_date, f.origin,
                   f.horizon_h, f.forecast_kwh, f.lower_kwh, f.upper_kwh, f.temperature_c,
                   CASE WHEN f.scope = 'machine' THEN e.energy_kwh ELSE d.energy_kwh END
                       AS actual_kwh
            FROM marts.forecasts f
            LEFT JOIN core.hourly_energy e
                ON f.scope = 'machine' AND e.machine_id = f.scope_id
               AND e.hour_start = f.hour_start
            LEFT JOIN core.hourly_drivers d
                ON f.scope = 'site' AND d.site_id = f.scope_id AND d.hour_start = f.hour_start
            WHERE f.local_date BETWEEN %s AND %s
              AND (cardinality(%s::text[]) = 0 OR f.scope_id = ANY (%s))
            ORDER BY f.scope_id, f.model, f.hour_start
            """,
            (first, last, wanted, wanted),
        )
        frame = pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])
    for column in ("forecast_kwh", "lower_kwh", "upper_kwh", "temperature_c", "actual_kwh"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame


# --- marts.forecast_accuracy ------------------------------------------------------------------


def score_forecast_days(conn: psycopg.Connection, first: dt.date, last: dt.date) -> pd.DataFrame:
    """Score every model, scope and target day in [first, last] whose hours all have actuals,
    and replace those days in ``marts.forecast_accuracy``; return the per-day scores."""
    frame = forecasts_with_actuals(conn, first, last)
    if frame.empty:
        return pd.DataFrame()
    complete = frame.groupby(["scope_id", "model", "local_date"])["actual_kwh"].transform(
        lambda s: s.notna().all()
    )
    frame = frame[complete.astype(bool)]
    if frame.empty:
        return pd.DataFrame()
    scope_of = dict(zip(frame["scope_id"], frame["scope"], strict=False))
    daily = score_forecasts(frame, by=("scope_id", "model", "local_date"))
    rows = [
        (
            scope_of[r.scope_id], r.scope_id, r.model, r.local_date, int(r.hours),
            r.mean_actual_kwh * r.hours, (r.mean_actual_kwh + r.bias_kwh) * r.hours, r.mae_kwh,
            r.rmse_kwh, _nullable(r.cv_rmse), r.bias_kwh, r.interval_coverage,
            _nullable(r.naive_mae_kwh), _nullable(r.skill),
        )
        for r in daily.itertuples(index=False)
    ]  # fmt: skip
    keys = daily[["scope_id", "model", "local_date"]].drop_duplicates()
    with conn.transaction():
        with conn.cursor() as cur:
            cur.executemany(
                "DELETE FROM marts.forecast_accuracy "
                "WHERE scope_id = %s AND model = %s AND local_date = %s",
                list(keys.itertuples(index=False, name=None)),
            )
            cur.executemany(
                """
                INSERT INTO marts.forecast_accuracy (
                    scope, scope_id, model, local_date, hours, actual_kwh, forecast_kwh, mae_kwh,
                    rmse_kwh, cv_rmse, bias_kwh, interval_coverage, naive_mae_kwh, skill)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                """,
                rows,
            )
    return daily.assign(scope=daily["scope_id"].map(scope_of))


def forecast_day_range(conn: psycopg.Connection) -> tuple[dt.date | None, dt.date | None]:
    """First and last target day in marts.forecasts."""
    return conn.execute("SELECT min(local_date), max(local_date) FROM marts.forecasts").fetchone()


def daily_accuracy(conn: psycopg.Connection, first: dt.date, last: dt.date) -> pd.DataFrame:
    """marts.forecast_accuracy rows of [first, last], in the columns of ``score_forecasts``."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT scope, scope_id, model, local_date, hours, actual_kwh / hours AS "
            "mean_actual_kwh, mae_kwh, rmse_kwh, cv_rmse, bias_kwh, interval_coverage, "
            "naive_mae_kwh, skill FROM marts.forecast_accuracy "
            "WHERE local_date BETWEEN %s AND %s ORDER BY scope_id, model, local_date",
            (first, last),
        )
        frame = pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])
    for column in frame.columns[5:]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame


# --- marts.forecast_champions -----------------------------------------------------------------


@dataclass(frozen=True)
class ChampionRecord:
    scope: str
    decision: ChampionDecision
    window_start: dt.date
    window_end: dt.date


def decide_champions(
    conn: psycopg.Connection,
    valid_from: dt.date,
    window_days: int = 14,
    min_days: int = 7,
    switch_margin: float = 0.02,
) -> list[ChampionRecord]:
    """Choose the champion of every scope scored in the ``window_days`` before ``valid_from``
    (the rolling-origin record of day-ahead forecasts in marts.forecast_accuracy) and store the
    decisions in marts.forecast_champions (one row per scope and ``valid_from``)."""
    window_start = valid_from - dt.timedelta(days=window_days)
    window_end = valid_from - dt.timedelta(days=1)
    daily = daily_accuracy(conn, window_start, window_end)
    if daily.empty:
        return []
    incumbents = dict(
        conn.execute(
            "SELECT DISTINCT ON (scope_id) scope_id, champion FROM marts.forecast_champions "
            "WHERE valid_from < %s ORDER BY scope_id, valid_from DESC",
            (valid_from,),
        ).fetchall()
    )
    scope_of = dict(zip(daily["scope_id"], daily["scope"], strict=False))
    pooled = pool_daily_scores(daily)
    records = []
    for scope_id, scores in pooled.groupby("scope_id", sort=True):
        decision = choose_champion(scores, incumbents.get(scope_id), min_days, switch_margin)
        records.append(ChampionRecord(scope_of[scope_id], decision, window_start, window_end))
    with conn.transaction():
        for r in records:
            d = r.decision
            by_model = d.scores.set_index("model")
            mine = by_model.loc[d.champion] if d.champion in by_model.index else None
            conn.execute(
                "DELETE FROM marts.forecast_champions WHERE scope_id = %s AND valid_from = %s",
                (d.scope_id, valid_from),
            )
            conn.execute(
                """
                INSERT INTO marts.forecast_champions (
                    scope, scope_id, valid_from, champion, previous_champion, changed, reason,
                    window_start, window_end, days, mae_kwh, cv_rmse, skill, comparison)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                """,
                (
                    r.scope, d.scope_id, valid_from, d.champion, d.previous, d.changed, d.reason,
                    r.window_start, r.window_end,
                    int(by_model["days"].max()) if len(by_model) else 0,
                    _nullable(mine["mae_kwh"]) if mine is not None else None,
                    _nullable(mine["cv_rmse"]) if mine is not None else None,
                    (0.0 if d.champion == REFERENCE_MODEL
                     else _nullable(mine["skill"]) if mine is not None else None),
                    Jsonb(_scores_json(d.scores)),
                ),
            )  # fmt: skip
    return records


def _scores_json(scores: pd.DataFrame) -> dict:
    out = {}
    for r in scores.to_dict("records"):
        out[r["model"]] = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in r.items()
            if k not in ("scope_id", "model")
        }
    return json.loads(json.dumps(out, default=_json_default))


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return str(value)


def current_champions(conn: psycopg.Connection) -> pd.DataFrame:
    """The latest decision per scope (scope, scope_id, valid_from, champion, reason, comparison,
    mae_kwh, cv_rmse, skill)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT ON (scope_id) scope, scope_id, valid_from, champion, reason, "
            "comparison, mae_kwh, cv_rmse, skill, days FROM marts.forecast_champions "
            "ORDER BY scope_id, valid_from DESC"
        )
        return pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])


def champion_forecasts(
    conn: psycopg.Connection, scope_id: str, first: dt.date, last: dt.date
) -> pd.DataFrame:
    """The champion's forecasts of one scope for [first, last] with actuals where landed."""
    frame = forecasts_with_actuals(conn, first, last, [scope_id])
    if frame.empty:
        return frame
    champions = conn.execute(
        "SELECT local_date, model FROM marts.champion_forecasts WHERE scope_id = %s "
        "AND local_date BETWEEN %s AND %s GROUP BY local_date, model",
        (scope_id, first, last),
    ).fetchall()
    chosen = set(champions)
    keep = [(d, m) in chosen for d, m in zip(frame["local_date"], frame["model"], strict=True)]
    return frame[keep].reset_index(drop=True)


# --- marts.drift_events -----------------------------------------------------------------------


def _nullable(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)
