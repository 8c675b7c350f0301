"""What the energy report shows, read from the warehouse with psycopg (no Dagster here).

The migrations create every table read here; a warehouse whose priced marts (``marts.fct_*``)
have not been materialized for the period still gets a report: the energy split then comes from
``core.hourly_energy`` and the missing parts say so. Only ``marts.anomaly_events`` is still
looked up first: a report without it says that anomaly detection did not run.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from enms_dagster.anomalies.contracts import SEVERITIES
from enms_dagster.anomalies.events import EVENT_COLUMNS
from enms_dagster.report.contract import (
    ANOMALY_DAY_COLUMNS,
    MACHINE_COLUMNS,
    PERFORMANCE_COLUMNS,
    ReportData,
)

# The energy of each machine split into out-of-hours (hours outside the shift), idle (idle kWh
# inside the shift, at most the hour's energy) and productive (the rest of the shift energy).
# An hour whose shift is unknown counts as inside it.
_SPLIT = """
    sum(GREATEST(h.energy_kwh, 0)) AS energy_kwh,
    COALESCE(sum(GREATEST(h.energy_kwh, 0)) FILTER (WHERE {shift} IS FALSE), 0)
        AS out_of_hours_kwh,
    CASE WHEN bool_or(h.idle_kwh IS NOT NULL) THEN COALESCE(sum(
        LEAST(GREATEST(h.idle_kwh, 0), GREATEST(h.energy_kwh, 0))
    ) FILTER (WHERE {shift} IS NOT FALSE), 0) END AS idle_kwh,
    sum(h.parts) AS parts,
    max(h.peak_15min_kw) AS peak_15min_kw"""

_SPLIT_FROM_MART = (
    "SELECT h.machine_id,"
    + _SPLIT.format(shift="h.is_shift")
    + """,
    sum(h.energy_cost) AS energy_cost, sum(h.co2e_kg) AS co2e_kg, max(h.currency) AS currency
FROM marts.fct_energy_hourly h
WHERE h.site_id = %(site)s AND h.local_date BETWEEN %(first)s AND %(last)s
GROUP BY h.machine_id"""
)

_SPLIT_FROM_CORE = (
    "SELECT h.machine_id,"
    + _SPLIT.format(shift="d.is_shift")
    + """
FROM core.hourly_energy h
JOIN core.machines m USING (machine_id)
LEFT JOIN core.hourly_drivers d ON d.site_id = m.site_id AND d.hour_start = h.hour_start
WHERE m.site_id = %(site)s AND h.local_date BETWEEN %(first)s AND %(last)s
GROUP BY h.machine_id"""
)

# the severity ladder arrives as %(levels)s (anomalies.contracts.SEVERITIES)
_ANOMALY_DAYS = """
SELECT e.machine_id, (h AT TIME ZONE s.timezone)::date AS local_date,
       count(DISTINCT h) AS flagged_hours,
       (%(levels)s::text[])[max(array_position(%(levels)s::text[], e.severity))] AS severity,
       string_agg(DISTINCT e.kind, ', ') AS kinds
FROM marts.anomaly_events e
JOIN core.sites s USING (site_id)
CROSS JOIN LATERAL generate_series(e.start_ts, e.end_ts - interval '1 hour', interval '1 hour')
    AS h
WHERE e.site_id = %(site)s
  AND e.end_ts > %(first)s::date::timestamp AT TIME ZONE s.timezone
  AND e.start_ts < (%(last)s::date + 1)::timestamp AT TIME ZONE s.timezone
  AND (h AT TIME ZONE s.timezone)::date BETWEEN %(first)s AND %(last)s
GROUP BY 1, 2
ORDER BY 1, 2
"""

# Every column of an event (the table shows some of them) and whether someone acknowledged it.
_ANOMALY_EVENTS = sql.SQL("""
SELECT {columns}
FROM marts.anomaly_events e
JOIN core.sites s USING (site_id)
WHERE e.site_id = %(site)s
  AND e.end_ts > %(first)s::date::timestamp AT TIME ZONE s.timezone
  AND e.start_ts < (%(last)s::date + 1)::timestamp AT TIME ZONE s.timezone
ORDER BY e.excess_kwh DESC NULLS LAST, e.start_ts
""").format(
    columns=sql.SQL(", ").join(sql.Identifier("e", c) for c in (*EVENT_COLUMNS, "acknowledged_at"))
)


def table_exists(conn: psycopg.Connection, name: str) -> bool:
    """Whether a (schema-qualified) table or view exists."""
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]


def report_sites(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT site_id FROM core.sites ORDER BY site_id")]


def last_day_with_data(conn: psycopg.Connection, site_id: str) -> dt.date | None:
    """The last local day of the site with complete hourly energy (23 hours or more, so a
    spring daylight-saving day counts), or where no day of its last week is complete, the last
    day with any; None without energy. Today's first hours do not make a one-hour report."""
    return conn.execute(
        """
        WITH days AS (
            SELECT h.local_date, count(DISTINCT h.hour_start) AS hours
            FROM core.hourly_energy h JOIN core.machines m USING (machine_id)
            WHERE m.site_id = %(site)s AND h.local_date >= (
                SELECT max(h2.local_date) - 7 FROM core.hourly_energy h2
                JOIN core.machines m2 USING (machine_id) WHERE m2.site_id = %(site)s
            )
            GROUP BY h.local_date
        )
        SELECT COALESCE(max(local_date) FILTER (WHERE hours >= 23), max(local_date)) FROM days
        """,
        {"site": site_id},
    ).fetchone()[0]


def _frame(conn: psycopg.Connection, query: str | sql.Composable, params: dict) -> pd.DataFrame:
    cur = conn.execute(query, params)
    return pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])


def _floats(frame: pd.DataFrame, columns) -> pd.DataFrame:
    for c in columns:
        if c in frame:
            frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
    return frame


def load_report_data(
    conn: psycopg.Connection,
    site_id: str,
    first: dt.date,
    last: dt.date,
    generated_at: dt.datetime | None = None,
) -> ReportData:
    """The report's frames for one site and local days first..last."""
    params = {"site": site_id, "first": first, "last": last}
    site = conn.execute(
        "SELECT name, timezone FROM core.sites WHERE site_id = %s", (site_id,)
    ).fetchone()
    if site is None:
        raise ValueError(f"unknown site {site_id!r}")
    sources, notes = [], []
    registry = _frame(
        conn,
        "SELECT machine_id, name AS machine_name, machine_type, line, energy_source "
        "FROM core.machines WHERE site_id = %(site)s ORDER BY machine_id",
        params,
    )

    split, split_source = _energy_split(conn, params)
    sources.append(f"energy, idle and out-of-hours split: {split_source}")
    machines = registry.merge(split, on="machine_id", how="inner")
    machines = _floats(
        machines,
        ["energy_kwh", "out_of_hours_kwh", "idle_kwh", "parts", "peak_15min_kw",
         "energy_cost", "co2e_kg"],
    )  # fmt: skip
    machines["productive_kwh"] = (
        machines["energy_kwh"] - machines["out_of_hours_kwh"] - machines["idle_kwh"].fillna(0.0)
    ).clip(lower=0.0)
    if machines["idle_kwh"].isna().any():
        notes.append(
            "Machines without a state metric have no idle energy: their shift energy counts "
            "as productive: "
            + ", ".join(machines.loc[machines["idle_kwh"].isna(), "machine_id"])
            + "."
        )

    kpi = _machine_kpis(conn, params)
    if kpi is not None:
        kpi_frame, kpi_source = kpi
        sources.append(f"machine KPIs: {kpi_source}")
        overridden = [c for c in kpi_frame if c != "machine_id" and c in machines]
        machines = machines.drop(columns=overridden).merge(kpi_frame, on="machine_id", how="left")
    if "cost" not in machines and "energy_cost" in machines:
        machines["cost"] = machines["energy_cost"]
    if "cost" not in machines:
        notes.append("No cost: marts.fct_energy_hourly and marts.fct_kpi_daily are not built.")
    currency = None
    if "currency" in machines and machines["currency"].notna().any():
        currency = str(machines["currency"].dropna().iloc[0])

    machines = machines.merge(_machine_enpi(conn, params), on="machine_id", how="left")
    parts = machines["parts"].where(machines["parts"] > 0)
    machines["sec_kwh_per_part"] = machines["energy_kwh"] / parts
    for c in MACHINE_COLUMNS:
        if c not in machines:
            machines[c] = np.nan
    machines = _floats(machines, MACHINE_COLUMNS[5:])[list(MACHINE_COLUMNS)]

    performance, baseline = _site_performance(conn, params)
    sources.append("EnPI and CUSUM: marts.energy_performance_daily")

    anomaly_days = anomaly_events = None
    if table_exists(conn, "marts.anomaly_events"):
        anomaly_days = _frame(conn, _ANOMALY_DAYS, {**params, "levels": list(SEVERITIES)})
        if anomaly_days.empty:
            anomaly_days = pd.DataFrame(columns=list(ANOMALY_DAY_COLUMNS))
        anomaly_events = _floats(
            _frame(conn, _ANOMALY_EVENTS, params), ["excess_kwh", "excess_cost"]
        )
        sources.append("anomalies: marts.anomaly_events")
    else:
        notes.append("marts.anomaly_events does not exist: anomaly detection not run.")

    return ReportData(
        site_id=site_id,
        site_name=site[0],
        first_day=first,
        last_day=last,
        machines=machines,
        performance=performance,
        anomaly_days=anomaly_days,
        anomaly_events=anomaly_events,
        currency=currency,
        baseline=baseline,
        sources=tuple(sources),
        notes=tuple(notes),
        generated_at=generated_at or dt.datetime.now(dt.UTC),
    )


def _energy_split(conn: psycopg.Connection, params: dict) -> tuple[pd.DataFrame, str]:
    """From marts.fct_energy_hourly where it covers the period as fully as core.hourly_energy
    (it adds cost and CO2e), else from core.hourly_energy with the shift of core.hourly_drivers."""
    (core_rows,) = conn.execute(
        "SELECT count(*) FROM core.hourly_energy h JOIN core.machines m USING (machine_id) "
        "WHERE m.site_id = %(site)s AND h.local_date BETWEEN %(first)s AND %(last)s",
        params,
    ).fetchone()
    (mart_rows,) = conn.execute(
        "SELECT count(*) FROM marts.fct_energy_hourly "
        "WHERE site_id = %(site)s AND local_date BETWEEN %(first)s AND %(last)s",
        params,
    ).fetchone()
    if mart_rows and mart_rows >= core_rows:
        return _frame(conn, _SPLIT_FROM_MART, params), "marts.fct_energy_hourly"
    return _frame(conn, _SPLIT_FROM_CORE, params), "core.hourly_energy + core.hourly_drivers"


def _machine_kpis(conn: psycopg.Connection, params: dict) -> tuple[pd.DataFrame, str] | None:
    """Cost (energy and demand charge share), CO2e and peak per machine: marts.fct_kpi_daily,
    else the peak from marts.kpi_daily; None when neither has rows for the period."""
    frame = _frame(
        conn,
        "SELECT level_id AS machine_id, sum(total_cost) AS cost, sum(co2e_kg) AS co2e_kg, "
        "max(peak_15min_kw) AS peak_15min_kw, max(currency) AS currency "
        "FROM marts.fct_kpi_daily WHERE level = 'machine' AND site_id = %(site)s "
        "AND local_date BETWEEN %(first)s AND %(last)s GROUP BY level_id",
        params,
    )
    if len(frame):
        return _floats(frame, ["cost", "co2e_kg", "peak_15min_kw"]), "marts.fct_kpi_daily"
    frame = _frame(
        conn,
        "SELECT machine_id, max(peak_15min_kw) AS peak_15min_kw FROM marts.kpi_daily "
        "WHERE site_id = %(site)s AND local_date BETWEEN %(first)s AND %(last)s "
        "GROUP BY machine_id",
        params,
    )
    if len(frame):
        return _floats(frame, ["peak_15min_kw"]), "marts.kpi_daily"
    return None


def _machine_enpi(conn: psycopg.Connection, params: dict) -> pd.DataFrame:
    """Each machine's EnPI over the period: its actual ÷ baseline-expected kWh."""
    frame = _frame(
        conn,
        "SELECT scope_id AS machine_id, sum(actual_kwh) / NULLIF(sum(expected_kwh), 0) AS enpi "
        "FROM marts.energy_performance_daily WHERE scope = 'machine' "
        "AND local_date BETWEEN %(first)s AND %(last)s GROUP BY scope_id",
        params,
    )
    return _floats(frame, ["enpi"]) if len(frame) else pd.DataFrame(columns=["machine_id", "enpi"])


def _site_performance(conn: psycopg.Connection, params: dict) -> tuple[pd.DataFrame, str | None]:
    frame = _frame(
        conn,
        "SELECT " + ", ".join(f"p.{c}" for c in PERFORMANCE_COLUMNS) + ", m.version, "
        "m.period_start, m.period_end FROM marts.energy_performance_daily p "
        "JOIN marts.baseline_models m USING (model_id) WHERE p.scope = 'site' "
        "AND p.scope_id = %(site)s AND p.local_date BETWEEN %(first)s AND %(last)s "
        "ORDER BY p.local_date",
        params,
    )
    if frame.empty:
        return pd.DataFrame(columns=list(PERFORMANCE_COLUMNS)), None
    latest = frame.iloc[-1]
    baseline = (
        f"site daily model v{latest['version']}, baseline period "
        f"{latest['period_start']} .. {latest['period_end']}"
    )
    frame = _floats(frame, PERFORMANCE_COLUMNS[1:6])
    return frame[list(PERFORMANCE_COLUMNS)], baseline
