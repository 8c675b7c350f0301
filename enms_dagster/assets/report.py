"""The energy report: one self-contained HTML file per site and period under the state folder,
linked from the materialization, with its key charts shown in the Dagster UI."""

import dataclasses
import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from enms_dagster.assets.metadata import native_table
from enms_dagster.charts import cusum_markdown
from enms_dagster.resources import WarehouseResource
from enms_dagster.settings import Settings

if TYPE_CHECKING:
    from enms_dagster.report import ReportData

# The report (pandas) is imported in the asset body: every run's step process imports this module.

# What the report reads. Keys not (yet) defined in definitions.py show as external assets.
REPORT_DEPS = ["kpi_daily", "fct_kpi_daily", "energy_performance", "anomalies"]


class EnergyReportConfig(dg.Config):
    """Which site and days. Empty ``site_id``: every site. Empty ``last_day``: the last local day
    with hourly energy; empty ``first_day``: ``days`` days up to ``last_day``."""

    site_id: str = ""
    first_day: str = ""
    last_day: str = ""
    days: int = 30


def report_path(reports_dir: Path, site_id: str, first: dt.date, last: dt.date) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", site_id)
    return reports_dir / f"energy_report_{safe}_{first:%Y-%m-%d}_{last:%Y-%m-%d}.html"


def report_period(
    config: EnergyReportConfig, last_with_data: dt.date | None
) -> tuple[dt.date, dt.date] | None:
    """The local days the report covers (None: no day given and no data to pick one from)."""
    last = dt.date.fromisoformat(config.last_day) if config.last_day else last_with_data
    if last is None:
        return None
    if config.first_day:
        first = dt.date.fromisoformat(config.first_day)
    else:
        first = last - dt.timedelta(days=max(config.days, 1) - 1)
    if first > last:
        raise ValueError(f"first_day {first} is after last_day {last}")
    return first, last


@dg.asset(group_name="reports", deps=REPORT_DEPS, kinds={"python", "html"})
def energy_report(
    context: dg.AssetExecutionContext, config: EnergyReportConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """HTML energy reports (``<state dir>/reports``), one per site and period: Sankey of the
    energy flow, machines compared (energy, SEC, cost, EnPI), EnPI and CUSUM, anomaly heatmap.
    Each file is self-contained (inline SVG and CSS): it opens offline and can be mailed."""
    from enms_dagster.report import (
        build_report_html,
        last_day_with_data,
        load_report_data,
        report_sites,
    )

    reports_dir = Settings.from_env().state_dir / "reports"
    reports_dir.mkdir(parents=True, exist_ok=True)
    anomalies_ran = (
        context.instance.get_latest_materialization_event(dg.AssetKey("anomalies")) is not None
    )
    written: list[tuple[ReportData, Path]] = []
    with warehouse.connect() as conn:
        sites = [config.site_id] if config.site_id else report_sites(conn)
        for site_id in sites:
            period = report_period(config, last_day_with_data(conn, site_id))
            if period is None:
                context.log.warning(f"{site_id}: no hourly energy yet, no report")
                continue
            data = load_report_data(conn, site_id, *period)
            if (
                not anomalies_ran
                and data.anomaly_days is not None
                and data.anomaly_days.empty
                and (data.anomaly_events is None or data.anomaly_events.empty)
            ):
                # an empty table is "not run" unless the anomalies asset says it looked
                data = _without_anomalies(data)
            path = report_path(reports_dir, site_id, *period)
            tmp = path.with_suffix(".html.tmp")
            tmp.write_text(build_report_html(data), encoding="utf-8")
            tmp.replace(path)
            context.log.info(f"{site_id}: wrote {path}")
            written.append((data, path))
    return dg.MaterializeResult(metadata=_metadata(written, reports_dir))


def _without_anomalies(data: "ReportData") -> "ReportData":
    return dataclasses.replace(data, anomaly_days=None, anomaly_events=None)


def _metadata(written: "list[tuple[ReportData, Path]]", reports_dir: Path) -> dict[str, object]:
    metadata: dict[str, object] = {
        "reports_dir": dg.MetadataValue.path(str(reports_dir)),
        "reports_written": len(written),
    }
    rows = []
    for data, path in written:
        m = data.machines
        energy = float(m["energy_kwh"].sum())
        rows.append(
            (
                data.site_id,
                data.first_day,
                data.last_day,
                round(energy, 1),
                round(100 * float(m["idle_kwh"].sum()) / energy, 1) if energy else None,
                round(100 * float(m["out_of_hours_kwh"].sum()) / energy, 1) if energy else None,
                None if data.anomaly_days is None else len(data.anomaly_events),
            )
        )
        metadata[f"report_{data.site_id}"] = dg.MetadataValue.path(str(path))
        metadata[f"report_{data.site_id}_url"] = dg.MetadataValue.url(path.as_uri())
        shown = m[m["energy_kwh"] > 0].sort_values("energy_kwh", ascending=False)
        if len(shown):
            metadata[f"energy_by_machine_{data.site_id}"] = native_table(
                ["machine", "kWh"],
                [
                    (m, float(v))
                    for m, v in zip(shown["machine_id"], shown["energy_kwh"], strict=True)
                ],
            )
        cusum = data.performance.dropna(subset=["cusum_savings_kwh"])
        if len(cusum):
            metadata[f"cusum_{data.site_id}"] = dg.MetadataValue.md(
                cusum_markdown(
                    list(cusum["local_date"]),
                    [float(v) for v in cusum["cusum_savings_kwh"]],
                    [float(v) for v in cusum["uncertainty_68_kwh"].fillna(0.0)],
                    f"{data.site_id}: CUSUM of savings",
                )
            )
    metadata["energy_kwh"] = round(sum(row[3] for row in rows), 1)
    metadata["anomaly_events"] = sum(row[6] or 0 for row in rows)
    metadata["reports"] = native_table(
        [
            "site",
            "first day",
            "last day",
            "kWh",
            "idle %",
            "out-of-hours %",
            "anomaly events (empty: not run)",
        ],
        rows,
    )
    return metadata
