"""Scoring anomaly events against labelled, injected faults, at the event level.

A label is found when an event of the same machine overlaps it (any detector, any kind). From
that: precision = events overlapping some label ÷ events; recall per fault kind = labels found ÷
labels; detection delay = first overlapping event start − label start, clipped at 0, reported as
the median per kind; the events that overlap no label, per monitored machine-week; and the
false-alarm rate on machines without any fault in the period, in events per machine-week.
Point-adjusted F1 is not used: it credits a whole fault for one lucky hour and hides the false
alarms.

Intervals: an event covers [start_ts, end_ts), a label (start_ts, end_ts]; they overlap when
each starts before the other ends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import numpy as np
import pandas as pd

EVALUATION_COLUMNS = (
    "fault_kind",  # a label kind, or "all"
    "labels",
    "found",
    "recall",
    "median_delay_h",
    "events",  # "all" only: every event in the period
    "true_events",  # "all" only: events overlapping some label
    "precision",
    "machines",  # "all" only: machines monitored
    "unmatched_events",  # events overlapping no label
    "unmatched_per_machine_week",
    "fault_free_machines",
    "false_alarms",  # events on fault-free machines
    "false_alarms_per_machine_week",
)


def _overlaps(events: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Every (event, label) pair of the same machine whose intervals overlap."""
    e = events.reset_index(drop=True).assign(event=lambda f: f.index)
    lab = labels.reset_index(drop=True).assign(label=lambda f: f.index)
    pairs = e[["event", "machine_id", "start_ts", "end_ts"]].merge(
        lab[["label", "machine_id", "kind", "start_ts", "end_ts"]],
        on="machine_id",
        suffixes=("_event", "_label"),
    )
    hit = (pairs["start_ts_event"] < pairs["end_ts_label"]) & (
        pairs["end_ts_event"] > pairs["start_ts_label"]
    )
    return pairs[hit]


def _utc(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(
        start_ts=pd.to_datetime(frame["start_ts"], utc=True),
        end_ts=pd.to_datetime(frame["end_ts"], utc=True),
    )


def evaluate(
    events: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    machines: Iterable[str] | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> pd.DataFrame:
    """Event-level scores: one row per fault kind, then ``all``.

    ``events``: machine_id, start_ts, end_ts; ``labels``: machine_id, kind, start_ts, end_ts.
    ``machines`` are those that were monitored (default: every machine in either frame) and
    [start, end) the period (default: from the first to the last interval); both only matter for
    the false-alarm rate on fault-free machines.
    """
    events, labels = _utc(events), _utc(labels)
    pairs = _overlaps(events, labels)
    lag = pairs["start_ts_event"] - pairs["start_ts_label"]
    pairs = pairs.assign(delay_h=lag.dt.total_seconds().clip(lower=0) / 3600)
    per_label = pairs.groupby("label")["delay_h"].min()  # from the first event to overlap
    found = labels.reset_index(drop=True).assign(
        found=lambda f: f.index.isin(per_label.index),
        delay_h=lambda f: f.index.map(per_label),
    )

    rows = [_recall_row(kind, group) for kind, group in found.groupby("kind", sort=True)]
    overall = _recall_row("all", found)
    true_events = int(pairs["event"].nunique())
    overall["events"] = len(events)
    overall["true_events"] = true_events
    overall["precision"] = true_events / len(events) if len(events) else np.nan

    monitored = set(machines) if machines is not None else set()
    monitored |= set(events["machine_id"]) | set(labels["machine_id"])
    fault_free = sorted(monitored - set(labels["machine_id"]))
    stamps = pd.concat([events["start_ts"], events["end_ts"], labels["start_ts"], labels["end_ts"]])
    first = pd.Timestamp(start) if start is not None else stamps.min()
    last = pd.Timestamp(end) if end is not None else stamps.max()
    weeks = 0.0 if pd.isna(first) or pd.isna(last) else (last - first) / pd.Timedelta(days=7)
    unmatched = len(events) - true_events
    overall["machines"] = len(monitored)
    overall["unmatched_events"] = unmatched
    overall["unmatched_per_machine_week"] = (
        unmatched / (len(monitored) * weeks) if monitored and weeks > 0 else np.nan
    )
    false_alarms = int(events["machine_id"].isin(fault_free).sum())
    overall["fault_free_machines"] = len(fault_free)
    overall["false_alarms"] = false_alarms
    overall["false_alarms_per_machine_week"] = (
        false_alarms / (len(fault_free) * weeks) if fault_free and weeks > 0 else np.nan
    )
    rows.append(overall)
    table = pd.DataFrame(rows, columns=list(EVALUATION_COLUMNS))
    counts = [
        "labels",
        "found",
        "events",
        "true_events",
        "machines",
        "unmatched_events",
        "fault_free_machines",
        "false_alarms",
    ]
    return table.astype({c: "Int64" for c in counts})


def _recall_row(kind: str, labels: pd.DataFrame) -> dict:
    found = labels[labels["found"]]
    return {
        "fault_kind": kind,
        "labels": len(labels),
        "found": len(found),
        "recall": len(found) / len(labels) if len(labels) else np.nan,
        "median_delay_h": float(found["delay_h"].median()) if len(found) else np.nan,
    }


def evaluate_detectors(events: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Precision per detector: for each event kind, its events and those overlapping a label."""
    events, labels = _utc(events), _utc(labels)
    hits = set(_overlaps(events, labels)["event"])
    scored = events.reset_index(drop=True).assign(
        true_event=lambda f: f.index.isin(hits).astype(int)
    )
    table = scored.groupby(["kind", "method"], sort=True).agg(
        events=("true_event", "size"), true_events=("true_event", "sum")
    )
    table["precision"] = table["true_events"] / table["events"]
    return table.reset_index()


def format_evaluation(scores: pd.DataFrame) -> str:
    """The scores as a plain-text table for the command line."""
    lines = [f"{'fault kind':<24} {'labels':>6} {'found':>6} {'recall':>7} {'delay h':>8}"]
    for row in scores.itertuples(index=False):
        recall = "-" if pd.isna(row.recall) else f"{row.recall:.0%}"
        delay = "-" if pd.isna(row.median_delay_h) else f"{row.median_delay_h:.1f}"
        lines.append(f"{row.fault_kind:<24} {row.labels:>6} {row.found:>6} {recall:>7} {delay:>8}")
    total = scores[scores["fault_kind"] == "all"]
    if len(total):
        t = total.iloc[0]
        precision = "-" if pd.isna(t.precision) else f"{t.precision:.0%}"
        lines.append(
            f"precision {precision} ({t.true_events} of {t.events} events overlap a fault); "
            f"{t.unmatched_events} overlap none ({_rate(t.unmatched_per_machine_week)} per "
            f"machine-week over {t.machines} machines)"
        )
        lines.append(
            f"false alarms on {t.fault_free_machines} fault-free machines: {t.false_alarms} "
            f"({_rate(t.false_alarms_per_machine_week)} per machine-week)"
        )
    return "\n".join(lines)


def _rate(value) -> str:
    return "-" if pd.isna(value) else f"{value:.2f}"
