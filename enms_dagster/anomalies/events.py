"""Anomaly events: consecutive flagged hours of one machine and kind, merged into one event that
keeps its id while it grows, so it is reported once and updated rather than repeated.

The hourly flags are the truth; an event is their projection plus an identity (``event_id``,
``first_seen``) and an alert state that must survive recomputation. ``group_runs`` turns flags
into runs; ``reconcile_events`` matches runs to the events already stored: a run that overlaps
stored events keeps the oldest one's id and state (an event spanning midnight stays one event
when its second day arrives), a run that overlaps none is a new event, and a stored event no
run overlaps any more is retracted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from enms_dagster.anomalies.contracts import SEVERITIES, severity_rank
from enms_dagster.plant import MachineLabel

HOUR = pd.Timedelta(hours=1)

RUN_COLUMNS = (
    "machine_id",
    "kind",
    "method",
    "start_ts",
    "end_ts",
    "hours",
    "severity",
    "score",
    "expected_kwh",
    "actual_kwh",
    "excess_kwh",
    "excess_cost",
    "observed",
    "normal",
)
EVENT_COLUMNS = (
    "event_id",
    "machine_id",
    "site_id",
    "kind",
    "method",
    "start_ts",
    "end_ts",
    "hours",
    "severity",
    "score",
    "expected_kwh",
    "actual_kwh",
    "excess_kwh",
    "excess_cost",
    "currency",
    "sentence",
)
STATE_COLUMNS = (
    "first_seen",
    "last_updated",
    "alerted_severity",
    "alerted_at",
    "acknowledged_at",
    "acknowledged_by",
)
# What a technician would notice changing: a move of these updates last_updated.
_TRACKED = ("start_ts", "end_ts", "hours", "severity", "excess_kwh", "sentence")


def group_runs(flags: pd.DataFrame, max_gap_h: int = 0) -> pd.DataFrame:
    """Runs of flagged hours per machine and kind: hours at most ``max_gap_h`` unflagged hours
    apart belong to one run (0: strictly consecutive). Severity and score are the run's highest,
    kWh and cost are summed, observed and normal averaged."""
    if flags.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in RUN_COLUMNS})
    f = flags.sort_values(["machine_id", "kind", "hour_start"]).reset_index(drop=True)
    if "excess_cost" not in f:
        f = f.assign(excess_cost=np.nan)
    key_changed = (f["machine_id"] != f["machine_id"].shift()) | (f["kind"] != f["kind"].shift())
    gap = f["hour_start"] - f["hour_start"].shift()
    run = (key_changed | (gap > HOUR * (1 + max_gap_h))).cumsum()
    f = f.assign(run=run, rank=f["severity"].map(severity_rank))
    grouped = f.groupby("run", sort=True)
    runs = grouped.agg(
        machine_id=("machine_id", "first"),
        kind=("kind", "first"),
        method=("method", "first"),
        start_ts=("hour_start", "min"),
        end_ts=("hour_start", "max"),
        hours=("hour_start", "size"),
        rank=("rank", "max"),
        score=("score", "max"),
        expected_kwh=("expected_kwh", "sum"),
        actual_kwh=("actual_kwh", "sum"),
        excess_kwh=("excess_kwh", "sum"),
        excess_cost=("excess_cost", lambda s: s.sum(min_count=1)),
        observed=("observed", "mean"),
        normal=("normal", "mean"),
    )
    runs["end_ts"] = runs["end_ts"] + HOUR
    runs["severity"] = runs["rank"].map(lambda r: SEVERITIES[int(r) - 1])
    return runs[list(RUN_COLUMNS)].reset_index(drop=True)


def event_id_for(machine_id: str, kind: str, start: dt.datetime) -> str:
    """A readable, stable id: machine, kind and the UTC hour the event was first seen starting,
    e.g. ``CMP-01.out_of_hours.20260310T2100Z``."""
    return f"{machine_id}.{kind}.{pd.Timestamp(start).tz_convert('UTC'):%Y%m%dT%H%MZ}"


def _kwh(value: float) -> str:
    text = f"{value:,.0f}" if abs(value) >= 10 else f"{value:.1f}"
    return text.removeprefix("-") if text.strip("-0.,") == "" else text  # not "-0.0"


def _kw(value: float) -> str:
    return "?" if value is None or np.isnan(value) else f"{value:,.1f}"


def _when(start, end, timezone: str) -> str:
    zone = ZoneInfo(timezone)
    s = pd.Timestamp(start).tz_convert(zone)
    e = pd.Timestamp(end).tz_convert(zone)
    if s.date() == (e - pd.Timedelta(microseconds=1)).date():
        return f"on {s:%a %d %b} between {s:%H:%M} and {e:%H:%M}"
    return f"between {s:%a %d %b %H:%M} and {e:%a %d %b %H:%M}"


def describe_event(run, label: MachineLabel, currency: str = "EUR") -> str:
    """One sentence a technician understands, in the site's local time."""
    who = f"{label.name} ({run.machine_id})" if label.name != run.machine_id else run.machine_id
    when = _when(run.start_ts, run.end_ts, label.timezone)
    excess, actual, expected = run.excess_kwh, run.actual_kwh, run.expected_kwh
    if run.kind == "above_baseline":
        text = (
            f"{who} drew {_kwh(excess)} kWh more than its energy baseline expected {when} "
            f"({_kwh(actual)} kWh instead of {_kwh(expected)} kWh)"
        )
    elif run.kind == "baseline_drift":
        text = (
            f"{who} has been drawing more than its energy baseline expects {when}: "
            f"{_kwh(excess)} kWh extra, a slow drift rather than a sudden fault"
        )
    elif run.kind == "unusual_load":
        text = (
            f"{who} drew {_kwh(excess)} kWh more than usual for the time of week {when} "
            f"({_kwh(actual)} kWh against a usual {_kwh(expected)} kWh), in a pattern unlike "
            "its history"
        )
    elif run.kind == "out_of_hours":
        text = f"{who} drew {_kwh(excess)} kWh more than expected {when} while the plant was closed"
    elif run.kind == "idle_power_high":
        text = (
            f"{who} drew {_kw(run.observed)} kW while idle instead of its usual "
            f"{_kw(run.normal)} kW {when}: {_kwh(excess)} kWh extra"
        )
    elif run.kind == "base_load_creep":
        text = (
            f"The base load of {who} rose to {_kw(run.observed)} kW from its usual "
            f"{_kw(run.normal)} kW {when}: {_kwh(excess)} kWh extra"
        )
    elif run.kind == "power_while_off":
        text = f"{who} reported 'off' {when} but drew {_kwh(actual)} kWh"
    elif run.kind == "stuck_signal":
        text = (
            f"The power reading of {who} looked stuck {when} (flat near {_kw(run.observed)} kW "
            "or at odds with the energy counter): check the sensor"
        )
    elif run.kind == "meter_reset":
        return (
            f"The energy counter of {who} dropped from {_kwh(run.normal)} kWh to "
            f"{_kwh(run.observed)} kWh {when} and no reset was recorded: if the meter was "
            "replaced or its controller restarted, record the reset so the data checks expect it."
        )
    elif run.kind == "unsteady_pressure":
        return (
            f"The pressure of {who} was unsteady {when}: it moved {_kw(run.observed)} bar from "
            f"one reading to the next where {_kw(run.normal)} bar is usual. Check the pump for "
            "cavitation (suction line, oil level, filter) and the pressure sensor."
        )
    else:
        text = f"{who} behaved unusually ({run.kind}) {when}: {_kwh(excess)} kWh extra"
    cost = run.excess_cost
    if cost is not None and not pd.isna(cost) and cost >= 0.5:
        text += f", about {cost:,.0f} {currency}"
    return text + "."


@dataclass
class EventChanges:
    """What ``reconcile_events`` decided: rows to write (EVENT_COLUMNS + STATE_COLUMNS) and ids
    to delete (retracted, or merged into another event)."""

    upserts: pd.DataFrame
    deleted: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)


def _changed(new: dict, old) -> bool:
    for column in _TRACKED:
        a, b = new[column], old[column]
        if column.endswith("_ts"):
            if pd.Timestamp(a) != pd.Timestamp(b):
                return True
        elif isinstance(a, float):
            if b is None or pd.isna(b) or not np.isclose(a, float(b), rtol=1e-9, atol=1e-6):
                return True
        elif a != b:
            return True
    return False


def _fold_state(keeper, others: list) -> dict:
    """The state of events merged into one: the oldest first_seen, the highest severity already
    alerted (so the merge does not alert again), and an acknowledgement if any had one."""
    state = {c: keeper[c] for c in STATE_COLUMNS}
    for other in others:
        if severity_rank(other["alerted_severity"]) > severity_rank(state["alerted_severity"]):
            state["alerted_severity"], state["alerted_at"] = (
                other["alerted_severity"],
                other["alerted_at"],
            )
        if pd.isna(state["acknowledged_at"]) and not pd.isna(other["acknowledged_at"]):
            state["acknowledged_at"] = other["acknowledged_at"]
            state["acknowledged_by"] = other["acknowledged_by"]
    return state


def reconcile_events(
    runs: pd.DataFrame,
    existing: pd.DataFrame,
    labels: dict[str, MachineLabel],
    now: dt.datetime,
    currency: str = "EUR",
) -> EventChanges:
    """Match runs to stored events of the same machine and kind that they overlap.

    ``existing`` holds the stored events that the recomputed hours touch (EVENT_COLUMNS +
    STATE_COLUMNS). Each run keeps the identity and state of the oldest event it overlaps (others
    it swallows are deleted, their alert state folded in) or becomes a new event; stored events
    that no run overlaps are retracted. ``last_updated`` moves only when something a reader
    would see changed, so recomputing the same data changes nothing.
    """
    now = pd.Timestamp(now)
    if existing.empty:
        existing = pd.DataFrame(columns=list(EVENT_COLUMNS + STATE_COLUMNS))
    existing = existing.sort_values(["first_seen", "start_ts", "event_id"]).reset_index(drop=True)
    used: set[str] = set()
    rows, created, updated, deleted = [], [], [], []
    for run in runs.sort_values(["machine_id", "kind", "start_ts"]).itertuples(index=False):
        label = labels.get(run.machine_id) or MachineLabel(run.machine_id, "", "UTC")
        new = {
            "machine_id": run.machine_id,
            "site_id": label.site_id,
            "kind": run.kind,
            "method": run.method,
            "start_ts": run.start_ts,
            "end_ts": run.end_ts,
            "hours": int(run.hours),
            "severity": run.severity,
            "score": float(run.score),
            "expected_kwh": float(run.expected_kwh),
            "actual_kwh": float(run.actual_kwh),
            "excess_kwh": float(run.excess_kwh),
            "excess_cost": None if pd.isna(run.excess_cost) else float(run.excess_cost),
            "currency": currency,
            "sentence": describe_event(run, label, currency),
        }
        overlapping = existing[
            (existing["machine_id"] == run.machine_id)
            & (existing["kind"] == run.kind)
            & (existing["start_ts"] < run.end_ts)
            & (existing["end_ts"] > run.start_ts)
            & ~existing["event_id"].isin(used)
        ]
        if len(overlapping):
            keeper = overlapping.iloc[0]
            others = [overlapping.iloc[i] for i in range(1, len(overlapping))]
            used.update(overlapping["event_id"])
            deleted.extend(o["event_id"] for o in others)
            state = _fold_state(keeper, others)
            if others or _changed(new, keeper):
                state["last_updated"] = now
                updated.append(keeper["event_id"])
            rows.append({"event_id": keeper["event_id"], **new, **state})
        else:
            event_id = event_id_for(run.machine_id, run.kind, run.start_ts)
            used.add(event_id)
            created.append(event_id)
            state = dict.fromkeys(STATE_COLUMNS)
            state["first_seen"] = state["last_updated"] = now
            rows.append({"event_id": event_id, **new, **state})
    deleted.extend(e for e in existing["event_id"] if e not in used)
    upserts = pd.DataFrame(rows, columns=list(EVENT_COLUMNS + STATE_COLUMNS))
    return EventChanges(upserts, deleted, created, updated)


def problem_groups(events: pd.DataFrame) -> list[list[int]]:
    """Events about one problem, together: events of one machine whose hours overlap, directly or
    through another (a machine left running over a weekend is out of hours, above its baseline
    and a higher base load at once). Each group lists row positions of ``events`` (machine_id,
    start_ts, end_ts, severity, excess_kwh), the one to show first leading: the most severe,
    then the costliest, then the oldest; ties keep the frame's order."""
    frame = events.reset_index(drop=True)
    groups: list[list[int]] = []
    group_end = None
    for pos, row in frame.sort_values(["machine_id", "start_ts"], kind="stable").iterrows():
        if (
            groups
            and frame.at[groups[-1][0], "machine_id"] == row["machine_id"]
            and row["start_ts"] < group_end
        ):
            groups[-1].append(pos)
            group_end = max(group_end, row["end_ts"])
        else:
            groups.append([pos])
            group_end = row["end_ts"]
    severity = frame["severity"].map(severity_rank)
    excess = pd.to_numeric(frame["excess_kwh"], errors="coerce").fillna(0.0)

    def lead_first(pos: int):
        return (-severity[pos], -excess[pos], frame.at[pos, "start_ts"], pos)

    return [sorted(group, key=lead_first) for group in groups]


def distinct_problems(events: pd.DataFrame, count: int) -> list[tuple[pd.Series, list[str]]]:
    """The ``count`` costliest problems among ``events`` (EVENT_COLUMNS), each once
    (``problem_groups``): its leading event and the other kinds of event that saw it.
    Costliest first."""
    frame = events.reset_index(drop=True)
    groups = {group[0]: group for group in problem_groups(frame)}
    ranked = frame.loc[list(groups)].sort_values(
        ["excess_kwh", "score"], ascending=False, na_position="last", kind="stable"
    )
    out = []
    for pos, event in ranked.head(count).iterrows():
        also: list[str] = []
        for other in groups[pos][1:]:
            kind = frame.at[other, "kind"]
            if kind != event["kind"] and kind not in also:
                also.append(kind)
        out.append((event, also))
    return out
