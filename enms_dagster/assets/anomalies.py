"""Anomalies: hourly flags from the residual, Isolation Forest, rule and raw-reading detectors,
merged into events, a local day (or a range of days, in one run) at a time."""

import datetime as dt
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import dagster as dg

from enms_dagster.anomalies.contracts import SEVERITIES, Thresholds
from enms_dagster.assets.metadata import native_table, window_timestamps
from enms_dagster.charts import figure_markdown, subplots
from enms_dagster.plant import machine_labels, plant_currency
from enms_dagster.resources import PlantResource, WarehouseResource

if TYPE_CHECKING:
    import pandas as pd

# The detectors and stores (pandas, scikit-learn) are imported in the asset body: every run's
# step process imports this module.


class AnomaliesConfig(dg.Config):
    """Price of excess energy and how much history the detectors learn from."""

    # one flat price for excess kWh: the tariffs price each hour in marts.fct_energy_hourly only
    price_per_kwh: float = 0.20
    reference_days: int = 28
    forest_quantile: float = Thresholds.forest_quantile
    z_threshold: float = Thresholds.z_threshold


def build_anomalies(partitions: dg.DailyPartitionsDefinition) -> dg.AssetsDefinition:
    """The anomalies asset over the plant's daily partitions (events shown in its time zone)."""

    @dg.asset(
        group_name="analytics",
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=["hourly_energy", "hourly_drivers", "energy_baselines"],
        kinds={"postgres", "scikitlearn"},
    )
    def anomalies(
        context: dg.AssetExecutionContext,
        config: AnomaliesConfig,
        warehouse: WarehouseResource,
        plant: PlantResource,
    ) -> dg.MaterializeResult:
        """marts.anomalies (hourly flags) and marts.anomaly_events: energy above the baseline,
        unusual load for the time of week, out-of-hours energy, high idle power, base-load creep,
        power while off, stuck power readings, unrecorded meter resets and unsteady pressure, each
        with expected vs actual kWh, excess cost and a sentence for the technician. Keeps the hourly
        noise of pressure readings in core.hourly_signal_noise for the days it scores (and any
        reference day it lacks), so later days compare with it instead of weeks of raw readings."""
        import pandas as pd

        from enms_dagster.anomalies.detectors import detect_anomalies_by_day, with_excess_cost
        from enms_dagster.anomalies.store import (
            read_events,
            read_raw_signals,
            read_residuals,
            run_evaluation,
            store_anomalies,
            update_signal_noise,
        )
        from enms_dagster.hourly.store import read_hourly_frame

        window = context.partition_time_window
        registry = plant.load()
        labels, currency = machine_labels(registry), plant_currency(registry)
        thresholds = Thresholds(
            forest_quantile=config.forest_quantile, z_threshold=config.z_threshold
        )
        since = window.start - dt.timedelta(days=config.reference_days)
        with warehouse.connect() as conn:
            hourly = read_hourly_frame(conn, since, window.end)
            residuals, baseline_note = read_residuals(conn, since, window.end, hourly)
            update_signal_noise(conn, window.start, window.end, reference_start=since)
            raw = read_raw_signals(conn, since, window.start, window.end, thresholds)
            flags = detect_anomalies_by_day(
                hourly,
                window.start,
                window.end,
                partitions.timezone,
                residuals,
                config.reference_days,
                thresholds,
                raw,
            )
            flags = with_excess_cost(flags, config.price_per_kwh)
            stored = store_anomalies(
                conn, window.start, window.end, flags, labels, currency=currency
            )
            events = read_events(conn, window.start, window.end)
            scores = run_evaluation(conn, window.start, window.end)
        context.log.info(baseline_note)
        metadata = {
            "flagged_hours": len(flags),
            "events": len(events),
            "events_created": len(stored.created),
            "events_updated": len(stored.updated),
            "events_retracted": len(stored.deleted),
            "excess_kwh": round(float(events["excess_kwh"].clip(lower=0).sum()), 1),
            "excess_cost": round(float(events["excess_cost"].fillna(0).sum()), 2),
            "currency": currency,
            "machines_flagged": int(flags["machine_id"].nunique()) if len(flags) else 0,
            **{
                f"events_{severity}": int((events["severity"] == severity).sum())
                if len(events)
                else 0
                for severity in SEVERITIES
            },
            "baseline": baseline_note,
            **window_timestamps(window),
            "flags_by_kind": _flags_by_kind(flags),
            "event_table": _event_table(events, partitions.timezone),
        }
        if len(flags):
            metadata["heatmap"] = dg.MetadataValue.md(
                anomaly_heatmap_markdown(flags, window.start, window.end, partitions.timezone)
            )
        if scores.loc[scores["fault_kind"] == "all", "labels"].sum() > 0:
            metadata["evaluation"] = _scores_table(scores)
            total = scores[scores["fault_kind"] == "all"].iloc[0]
            for key in (
                "recall",
                "precision",
                "unmatched_per_machine_week",
                "false_alarms_per_machine_week",
            ):
                if not pd.isna(total[key]):
                    metadata[key] = round(float(total[key]), 3)
        return dg.MaterializeResult(metadata=metadata)

    return anomalies


def _flags_by_kind(flags: "pd.DataFrame") -> dg.TableMetadataValue:
    """Flagged hours, machines and excess kWh per kind and detector method."""
    columns = ["kind", "method", "hours", "machines", "excess kWh"]
    if flags.empty:
        return native_table(columns, [])
    table = flags.groupby(["kind", "method"], sort=True).agg(
        hours=("hour_start", "size"),
        machines=("machine_id", "nunique"),
        excess_kwh=("excess_kwh", lambda s: float(s.clip(lower=0).sum())),
    )
    return native_table(
        columns, [(*k, int(h), int(m), float(x)) for k, (h, m, x) in table.iterrows()]
    )


def _event_table(events: "pd.DataFrame", timezone: str, limit: int = 25) -> dg.TableMetadataValue:
    """The costliest ``limit`` events (the rest are in marts.anomaly_events), start in local
    time."""
    columns = ["event", "severity", "start", "hours", "excess kWh", "cost", "what"]
    if events.empty:
        return native_table(columns, [])
    top = events.assign(cost=events["excess_cost"].fillna(0)).sort_values(
        ["cost", "start_ts"], ascending=[False, True]
    )
    rows = [
        (
            e.event_id,
            e.severity,
            f"{e.start_ts.tz_convert(timezone):%Y-%m-%d %H:%M}",
            int(e.hours),
            float(e.excess_kwh),
            float(e.cost),
            e.sentence,
        )
        for e in top.head(limit).itertuples(index=False)
    ]
    return native_table(columns, rows)


def _scores_table(scores: "pd.DataFrame") -> dg.TableMetadataValue:
    """Detector scores against the simulator's fault labels, per fault kind (empty: undefined)."""
    import pandas as pd

    def value(x):
        return None if pd.isna(x) else round(float(x), 3)

    rows = [
        (
            s.fault_kind,
            int(s.labels),
            int(s.found),
            value(s.recall),
            value(s.median_delay_h),
            value(s.precision),
            value(s.unmatched_per_machine_week),
            value(s.false_alarms_per_machine_week),
        )
        for s in scores.itertuples(index=False)
    ]
    return native_table(
        [
            "fault kind",
            "labels",
            "found",
            "recall",
            "median delay h",
            "precision",
            "events on no fault / machine-week",
            "false alarms / machine-week (fault-free machines)",
        ],
        rows,
    )


def anomaly_heatmap_markdown(
    flags: "pd.DataFrame", start: dt.datetime, end: dt.datetime, timezone: str
) -> str:
    """Flagged hours per machine and local day (per local hour of day when the window is one
    day), as a small PNG in Markdown."""
    import numpy as np
    import pandas as pd

    zone = ZoneInfo(timezone)
    local = flags["hour_start"].dt.tz_convert(zone)
    one_day = end - start <= dt.timedelta(hours=25)
    if one_day:
        column, columns = local.dt.hour, list(range(24))
        labels = [f"{h:02d}" for h in columns]
    else:
        column = local.dt.date
        first = pd.Timestamp(start).tz_convert(zone).date()
        last = (pd.Timestamp(end) - pd.Timedelta(seconds=1)).tz_convert(zone).date()
        columns = list(pd.date_range(first, last, freq="D").date)
        labels = [f"{d:%m-%d}" for d in columns]
    hours = (
        flags.assign(column=column)
        .drop_duplicates(["machine_id", "hour_start"])
        .groupby(["machine_id", "column"])
        .size()
        .unstack(fill_value=0)
        .reindex(columns=columns, fill_value=0)
        .sort_index()
    )
    matrix = hours.to_numpy(dtype=float)
    fig, ax = subplots(figsize=(min(1.5 + 0.22 * len(columns), 9), 0.8 + 0.25 * len(hours)), dpi=80)
    image = ax.imshow(matrix, aspect="auto", cmap="Reds", vmin=0, vmax=max(matrix.max(), 1))
    ax.set_yticks(np.arange(len(hours)), hours.index, fontsize=7)
    step = max(1, len(columns) // 16)
    ax.set_xticks(np.arange(0, len(columns), step), labels[::step], fontsize=7)
    ax.set_xlabel("local hour" if one_day else "local day", fontsize=8)
    ax.set_title("Anomalous hours per machine", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.04).ax.tick_params(labelsize=7)
    return figure_markdown(fig, "Anomalous hours per machine")
