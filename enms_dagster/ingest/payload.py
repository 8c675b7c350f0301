"""Parse and validate telemetry messages (the contract in docs/mqtt.md); no I/O here.

A message is one sample object or a JSON array of them, published on
``enms/<site>/<machine>/telemetry``::

    {"ts": "2026-01-05T06:00:00+01:00", "metrics": {"power_kw": 41.2}, "state": "running"}

Good samples become readings ``(machine_id, metric, ts, value)``; each unusable sample or
message becomes a rejection with a reason code, so one bad sample never stops the others.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field

from enms_dagster.plant import STATE_CODES

MAX_PAYLOAD_BYTES = 256 * 1024
MAX_FUTURE = dt.timedelta(minutes=5)

Reading = tuple[str, str, dt.datetime, float]


@dataclass(frozen=True)
class Rejection:
    reason: str
    detail: str


@dataclass(frozen=True)
class RegistryView:
    """What validation needs to know of the plant: machines (with site and commissioning date)
    and metric names."""

    machine_sites: dict[str, str]
    commissioned: dict[str, dt.datetime]
    metrics: frozenset[str]


@dataclass
class ParsedMessage:
    readings: list[Reading] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


class _NonFinite(ValueError):
    pass


def _reject_constant(name: str) -> float:
    raise _NonFinite(name)


def parse_topic(topic: str) -> tuple[str, str] | None:
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != "enms" or parts[3] != "telemetry" or not all(parts):
        return None
    return parts[1], parts[2]


def parse_message(
    topic: str, payload: bytes, registry: RegistryView, now: dt.datetime
) -> ParsedMessage:
    """Readings and rejections of one message; never raises on bad input."""
    out = ParsedMessage()
    if len(payload) > MAX_PAYLOAD_BYTES:
        out.rejections.append(
            Rejection("oversized", f"{len(payload)} bytes > limit {MAX_PAYLOAD_BYTES}")
        )
        return out
    where = parse_topic(topic)
    if where is None:
        out.rejections.append(
            Rejection("bad_topic", f"{topic!r} is not enms/<site>/<machine>/telemetry")
        )
        return out
    site_id, machine_id = where
    if machine_id not in registry.machine_sites:
        out.rejections.append(
            Rejection("unknown_machine", f"machine {machine_id!r} not registered")
        )
        return out
    if registry.machine_sites[machine_id] != site_id:
        out.rejections.append(
            Rejection(
                "topic_mismatch",
                f"machine {machine_id!r} belongs to site {registry.machine_sites[machine_id]!r}, "
                f"topic says {site_id!r}",
            )
        )
        return out
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        out.rejections.append(Rejection("invalid_utf8", str(exc)))
        return out
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except _NonFinite as exc:
        out.rejections.append(Rejection("non_finite_number", f"{exc} is not a finite number"))
        return out
    except json.JSONDecodeError as exc:
        out.rejections.append(Rejection("malformed_json", str(exc)))
        return out
    samples = doc if isinstance(doc, list) else [doc]
    if not samples:
        out.rejections.append(Rejection("bad_shape", "empty array"))
    commissioned = registry.commissioned.get(machine_id)
    for index, sample in enumerate(samples):
        label = f"sample {index}: " if isinstance(doc, list) else ""
        problem = _parse_sample(sample, machine_id, registry, now, commissioned, out.readings)
        if problem is not None:
            out.rejections.append(Rejection(problem.reason, label + problem.detail))
    return out


def _parse_sample(
    sample: object,
    machine_id: str,
    registry: RegistryView,
    now: dt.datetime,
    commissioned: dt.datetime | None,
    readings: list[Reading],
) -> Rejection | None:
    if not isinstance(sample, dict) or not isinstance(sample.get("metrics"), dict):
        return Rejection("bad_shape", "expected an object with 'ts' and a 'metrics' object")
    raw_ts = sample.get("ts")
    if not isinstance(raw_ts, str):
        return Rejection("bad_timestamp", f"'ts' must be an ISO-8601 string, got {raw_ts!r}")
    try:
        ts = dt.datetime.fromisoformat(raw_ts)
    except ValueError:
        return Rejection("bad_timestamp", f"'ts' {raw_ts!r} is not ISO-8601")
    if ts.tzinfo is None:
        return Rejection("bad_timestamp", f"'ts' {raw_ts!r} has no UTC offset")
    if ts > now + MAX_FUTURE:
        return Rejection("future_timestamp", f"'ts' {raw_ts} is after {now.isoformat()} + 5 min")
    if commissioned is not None and ts < commissioned:
        return Rejection(
            "before_commissioning", f"'ts' {raw_ts} precedes commissioning {commissioned.date()}"
        )
    new: list[Reading] = []
    for metric, value in sample["metrics"].items():
        if metric not in registry.metrics:
            return Rejection("unknown_metric", f"metric {metric!r} is not in the catalog")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return Rejection("wrong_type", f"metric {metric!r} must be a number, got {value!r}")
        if not math.isfinite(value):
            return Rejection("non_finite_number", f"metric {metric!r} is {value!r}")
        new.append((machine_id, metric, ts, float(value)))
    state = sample.get("state")
    if state is not None:
        if state not in STATE_CODES:
            return Rejection("bad_state", f"state {state!r} is not one of {sorted(STATE_CODES)}")
        new.append((machine_id, "state", ts, float(STATE_CODES[state])))
    if not new:
        return Rejection("bad_shape", "sample carries no metrics")
    readings.extend(new)
    return None
