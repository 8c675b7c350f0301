"""Baselines in the warehouse: training frames read from the hourly layer, the model registry
(``marts.baseline_models``), expected energy from the active models, and daily energy
performance (EnPI, savings, CUSUM). The maths is in ``enms_dagster.baselines.model``."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import pandas as pd
import psycopg
from psycopg.types.json import Jsonb

from enms_dagster.baselines.model import (
    BaselineModel,
    BaselineRequest,
    BaselineRequestError,
    fit_baseline,
    performance,
)
from enms_dagster.db.sql_files import read_sql
from enms_dagster.plant import Plant

# Candidates when the plant file names none: production, operating time, weather, calendar.
# A machine's own running/idle hours are available on request but not the default: a fault
# that keeps a machine loaded longer (an air leak) would then look "explained".
DEFAULT_CANDIDATES = (
    "parts",
    "site_parts",
    "operating_h",
    "heating_degrees",
    "cooling_degrees",
    "shift_hours",
    "working_day",
)
FAR_FUTURE = dt.date(9999, 12, 31)


def load_hourly_frame(
    conn: psycopg.Connection,
    scope: str,
    scope_ids: Sequence[str],
    first: dt.date = dt.date(1970, 1, 1),
    last: dt.date = FAR_FUTURE,
) -> pd.DataFrame:
    """Hourly energy with its drivers for machines (scope ``machine``) or sites (``site``)."""
    query = read_sql(
        "enms_dagster.baselines", "machine_hours" if scope == "machine" else "site_hours"
    )
    with conn.cursor() as cur:
        cur.execute(query, {"scope_ids": list(scope_ids), "first_date": first, "last_date": last})
        columns = [c.name for c in cur.description]
        frame = pd.DataFrame(cur.fetchall(), columns=columns)
    for column in ("energy_kwh", "outdoor_temperature_c", "parts", "site_parts", "running_h",
                   "idle_h"):  # fmt: skip
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame["is_working_day"] = frame["is_working_day"].astype(bool)
    frame["is_shift"] = frame["is_shift"].astype(bool)
    return frame


def training_requests(
    plant: Plant,
    resolutions: Sequence[str],
    scope_ids: Iterable[str] | None = None,
    period: tuple[dt.date | None, dt.date | None] = (None, None),
) -> list[tuple[str, BaselineRequest]]:
    """(scope, request) per machine with energy and per site, from the plant file's
    ``baseline:`` entries (defaults: DEFAULT_CANDIDATES, the first year or the history);
    ``period`` (first, last local day), where given, overrides the plant file's."""
    wanted = set(scope_ids) if scope_ids else None
    scopes = [
        ("machine", m.machine_id, m.baseline)
        for m in sorted(plant.machines.values(), key=lambda m: m.machine_id)
        if m.rated_power_kw is not None  # weather stations and the like have no energy
    ] + [
        ("site", s.site_id, s.baseline)
        for s in sorted(plant.sites.values(), key=lambda s: s.site_id)
    ]
    out = []
    for scope, scope_id, b in scopes:
        if wanted and scope_id not in wanted:
            continue
        first, last = period[0] or b.start, period[1] or b.end
        for resolution in resolutions:
            request = BaselineRequest(
                scope_id, resolution, b.drivers or DEFAULT_CANDIDATES, first, last
            )
            out.append((scope, request))
    return out


@dataclass(frozen=True)
class RegisteredModel:
    model_id: int
    scope: str
    version: int
    status: str
    model: BaselineModel
    error: str | None = None


_ADVISORY_LOCK = 5_005_006


def register_model(
    conn: psycopg.Connection,
    scope: str,
    model: BaselineModel,
    fitted: pd.Series,
    actual: pd.Series,
    reason: str,
) -> RegisteredModel:
    """Store ``model`` as the next version for its scope and resolution, with its fitted values.
    A valid model becomes active and retires the previous active one; an invalid one is kept
    as ``invalid`` and the active model stays as it is."""
    s = model.statistics
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK,))
        (version,) = conn.execute(
            "SELECT coalesce(max(version), 0) + 1 FROM marts.baseline_models "
            "WHERE scope_id = %s AND resolution = %s",
            (model.scope_id, model.resolution),
        ).fetchone()
        status = "active" if model.valid else "invalid"
        if model.valid:
            conn.execute(
                "UPDATE marts.baseline_models SET status = 'retired' "
                "WHERE scope_id = %s AND resolution = %s AND status = 'active'",
                (model.scope_id, model.resolution),
            )
        data = model.to_dict()
        (model_id,) = conn.execute(
            """
            INSERT INTO marts.baseline_models (
                scope, scope_id, resolution, version, period_start, period_end, candidates,
                drivers, coefficients, statistics, n, p, r2, adj_r2, cv_rmse, nmbe, f_pvalue,
                valid, failures, status, reason, model)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                    %s, %s, %s, %s)
            RETURNING model_id
            """,
            (
                scope, model.scope_id, model.resolution, version, model.period_start,
                model.period_end, model.candidates, model.drivers, Jsonb(model.coefficients),
                Jsonb(data["statistics"]), s.n, s.p, data["statistics"]["r2"],
                data["statistics"]["adj_r2"], data["statistics"]["cv_rmse"],
                data["statistics"]["nmbe"], data["statistics"]["f_pvalue"], model.valid,
                model.failures, status, reason, Jsonb(data),
            ),
        ).fetchone()  # fmt: skip
        periods = _period_timestamps(fitted.index, model.resolution)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO marts.baseline_fitted (model_id, period, actual_kwh, expected_kwh) "
                "VALUES (%s, %s, %s, %s)",
                [
                    (model_id, period, float(a), float(e))
                    for period, a, e in zip(periods, actual.to_numpy(), fitted.to_numpy(),
                                            strict=True)
                ],
            )  # fmt: skip
    return RegisteredModel(model_id, scope, version, status, model)


def _period_timestamps(index: pd.Index, resolution: str) -> list:
    if resolution == "hourly":
        return [ts.to_pydatetime() for ts in pd.to_datetime(index)]
    # daily: local midnight as a date; PostgreSQL casts it with the session time zone, so store
    # the date at 00:00 UTC to keep the day unambiguous
    return [dt.datetime.combine(pd.Timestamp(d).date(), dt.time(), dt.UTC) for d in index]


def fit_and_register(
    conn: psycopg.Connection,
    plant: Plant,
    resolutions: Sequence[str] = ("daily", "hourly"),
    scope_ids: Iterable[str] | None = None,
    reason: str = "re-fit",
    progress: Callable[[int, int, str], None] | None = None,
    period: tuple[dt.date | None, dt.date | None] = (None, None),
) -> list[RegisteredModel]:
    """Fit every requested baseline on the warehouse's hourly layer and register it. A request
    that cannot be fitted (no data, too few candidates) is reported, not raised, so one bad
    machine does not stop the others."""
    requests = training_requests(plant, resolutions, scope_ids, period)
    frames: dict[tuple[str, str], pd.DataFrame] = {}
    out = []
    for i, (scope, request) in enumerate(requests):
        if progress:
            progress(i, len(requests), f"{request.scope_id} {request.resolution}")
        key = (scope, request.scope_id)
        if key not in frames:
            frames[key] = load_hourly_frame(conn, scope, [request.scope_id])
        hourly = frames[key]
        try:
            model = fit_baseline(hourly, request)
        except BaselineRequestError as exc:
            out.append(RegisteredModel(0, scope, 0, "not fitted", None, str(exc)))  # type: ignore[arg-type]
            continue
        frame = model.frame(_in_period(hourly, model))
        if model.resolution == "daily":
            frame = frame[frame["hours"] >= 23]
            actual = frame["energy_kwh"]
            fitted = model.predict(_in_period(hourly, model)).loc[frame.index]
        else:
            actual = pd.Series(frame["energy_kwh"].to_numpy(), index=frame["hour_start"])
            fitted = model.predict(_in_period(hourly, model))
        out.append(register_model(conn, scope, model, fitted, actual, reason))
    return out


def _in_period(hourly: pd.DataFrame, model: BaselineModel) -> pd.DataFrame:
    dates = pd.to_datetime(hourly["local_date"]).dt.date
    rows = hourly[(dates >= model.period_start) & (dates <= model.period_end)]
    return rows.dropna(subset=["energy_kwh"])


def load_model(conn: psycopg.Connection, model_id: int) -> BaselineModel:
    row = conn.execute(
        "SELECT model FROM marts.baseline_models WHERE model_id = %s", (model_id,)
    ).fetchone()
    if row is None:
        raise KeyError(f"no baseline model {model_id}")
    data = row[0] if isinstance(row[0], dict) else json.loads(row[0])
    return BaselineModel.from_dict(data)


def active_models(
    conn: psycopg.Connection, resolution: str, scope: str | None = None
) -> list[tuple[int, str, BaselineModel]]:
    """(model_id, scope, model) of each active model at ``resolution``."""
    rows = conn.execute(
        "SELECT model_id, scope, model FROM marts.baseline_models "
        "WHERE status = 'active' AND resolution = %s AND (%s::text IS NULL OR scope = %s) "
        "ORDER BY scope_id",
        (resolution, scope, scope),
    ).fetchall()
    return [(model_id, s, BaselineModel.from_dict(model)) for model_id, s, model in rows]


def expected_energy(
    conn: psycopg.Connection,
    start: dt.datetime,
    end: dt.datetime,
    resolution: str = "hourly",
) -> pd.DataFrame:
    """Actual and expected kWh per machine for the hours in [start, end) from each machine's
    active model at ``resolution`` (hourly: per hour; daily: per local date, ``hour_start``
    then holds the date), and whether a driver lies outside the range the model was fitted on
    (``extrapolated``: the expectation is then a guess). Empty when no model is active."""
    columns = ["scope_id", "hour_start", "actual_kwh", "expected_kwh", "model_id", "extrapolated"]
    models = active_models(conn, resolution, scope="machine")
    if not models:
        return pd.DataFrame(columns=columns)
    first = (start - dt.timedelta(days=1)).date()
    last = (end + dt.timedelta(days=1)).date()
    hourly = load_hourly_frame(conn, "machine", [m.scope_id for _, _, m in models], first, last)
    parts = []
    for model_id, _, model in models:
        rows = hourly[hourly["scope_id"] == model.scope_id]
        if resolution == "hourly":
            rows = rows[(rows["hour_start"] >= start) & (rows["hour_start"] < end)]
        if rows.empty:
            continue
        expected = model.predict(rows)
        frame = model.frame(rows)
        if resolution == "hourly":
            actual = rows["energy_kwh"].to_numpy()
        else:
            actual = frame.loc[expected.index, "energy_kwh"].to_numpy()
        parts.append(
            pd.DataFrame(
                {
                    "scope_id": model.scope_id,
                    "hour_start": expected.index,
                    "actual_kwh": actual,
                    "expected_kwh": expected.to_numpy(),
                    "model_id": model_id,
                    "extrapolated": [bool(d) for d in model.outside_range(frame)],
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def rebuild_energy_performance(conn: psycopg.Connection) -> int:
    """Recompute ``marts.energy_performance_daily`` for every scope with an active daily model,
    from the model's baseline period to the last day with data, and copy EnPI and savings into
    the machine and site rows of ``marts.fct_kpi_daily``; return rows written."""
    rows = 0
    for model_id, scope, model in active_models(conn, "daily"):
        hourly = load_hourly_frame(conn, scope, [model.scope_id], model.period_start)
        result = performance(model, hourly)
        with conn.transaction():
            conn.execute(
                "DELETE FROM marts.energy_performance_daily WHERE scope_id = %s",
                (model.scope_id,),
            )
            with conn.cursor() as cur:
                cur.executemany(
                    """
                    INSERT INTO marts.energy_performance_daily (
                        scope, scope_id, local_date, model_id, in_baseline_period, actual_kwh,
                        expected_kwh, enpi, savings_kwh, cusum_savings_kwh, uncertainty_68_kwh,
                        uncertainty_95_kwh, extrapolated_drivers)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                    """,
                    [
                        (
                            scope, model.scope_id, pd.Timestamp(r.at).date(), model_id,
                            bool(r.in_baseline_period), r.actual_kwh, r.expected_kwh,
                            _nullable(r.enpi), r.savings_kwh, _nullable(r.cusum_savings_kwh),
                            _nullable(r.uncertainty_68_kwh), _nullable(r.uncertainty_95_kwh),
                            list(r.extrapolated_drivers),
                        )
                        for r in result.itertuples(index=False)
                    ],
                )  # fmt: skip
            conn.execute(
                "UPDATE marts.fct_kpi_daily SET enpi = NULL, expected_kwh = NULL, "
                "savings_kwh = NULL, cusum_savings_kwh = NULL, baseline_version = NULL "
                "WHERE level IN ('machine', 'site') AND level_id = %s",
                (model.scope_id,),
            )
            conn.execute(
                read_sql("enms_dagster.baselines", "fct_kpi_daily_performance"),
                {"scope_id": model.scope_id},
            )
        rows += len(result)
    return rows


def _nullable(value: float) -> float | None:
    return None if pd.isna(value) else float(value)
