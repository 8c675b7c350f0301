"""Parse and validate telemetry messages (the contract in docs/mqtt.md); no I/O here.

A message is one sample object or a JSON array of them, published on
``enms/<site>/<machine>/telemetry``::

    {"ts": "2026-01-05T06:00:00+01:00", "metrics": {"power_kw": 41.2}, "state": "running"}

Good samples become readings ``(machine_id, metric, ts, value)``; each unusable sample or
message becomes a rejection with a reason code, so one bad sample never stops the others.

Parsing is total: any bytes end as readings and rejections, never as an exception. What one
message may cost is bounded (the ``MAX_*`` constants below, documented in docs/mqtt.md); a
message past a bound is rejected whole, once, before the expensive work.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import reprlib
from collections import Counter
from dataclasses import dataclass, field

from enms_dagster.plant import STATE_CODES

MAX_PAYLOAD_BYTES = 256 * 1024
MAX_SAMPLES_PER_MESSAGE = 5_000
MAX_NESTING = 8  # a valid message needs 3: array, sample, metrics
MAX_NUMBER_CHARS = 64  # longest integer literal: keeps every int within float range
MAX_METRICS_PER_SAMPLE = 256
MAX_TS_CHARS = 64
MAX_DETAIL_CHARS = 240  # one rejection's detail
MAX_DETAILS_KEPT = 5  # sample details kept in a message's quarantine row

DEFAULT_MAX_AGE = dt.timedelta(days=400)
DEFAULT_MAX_AHEAD = dt.timedelta(minutes=5)

# Every reason a rejection can carry (docs/mqtt.md, "What gets quarantined").
REASONS = frozenset(
    {
        "oversized",
        "bad_topic",
        "unknown_machine",
        "topic_mismatch",
        "invalid_utf8",
        "malformed_json",
        "too_deep",
        "number_too_long",
        "too_many_samples",
        "too_many_metrics",
        "non_finite_number",
        "bad_shape",
        "bad_timestamp",
        "future_timestamp",
        "too_old",
        "before_commissioning",
        "unknown_metric",
        "wrong_type",
        "bad_state",
        "parser_error",
    }
)

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


@dataclass(frozen=True)
class PlausibleTime:
    """How far from now a reading may lie and still land (and get a partition).

    Older readings are rejected as ``too_old``, later ones as ``future_timestamp``. ``since``
    states an explicit earliest instant instead of ``now - max_age`` (an import of history).
    """

    max_age: dt.timedelta = DEFAULT_MAX_AGE
    max_ahead: dt.timedelta = DEFAULT_MAX_AHEAD
    since: dt.datetime | None = None

    def bounds(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        earliest = self.since if self.since is not None else now - self.max_age
        return earliest, now + self.max_ahead


@dataclass
class ParsedMessage:
    readings: list[Reading] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    samples: int = 0

    def quarantine_rejection(self) -> Rejection | None:
        """The one rejection a message is quarantined with: the first reason, how many samples
        were rejected for which reasons, and the first few details."""
        if not self.rejections:
            return None
        first = self.rejections[0]
        if len(self.rejections) == 1:
            return first
        counts = Counter(r.reason for r in self.rejections)
        head = f"{len(self.rejections)} of {self.samples} samples rejected (" + ", ".join(
            f"{reason} {n}" for reason, n in counts.most_common()
        )
        kept = [r.detail for r in self.rejections[:MAX_DETAILS_KEPT]]
        more = len(self.rejections) - len(kept)
        tail = f"; and {more} more" if more else ""
        return Rejection(first.reason, head + "): " + "; ".join(kept) + tail)


class _Unusable(ValueError):
    """Raised by the JSON hooks: the message is rejected whole with this reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


_show = reprlib.Repr()
_show.maxstring = 60
_show.maxother = 60
_show.maxlong = 40
_show.maxlevel = 3
_show.maxdict = _show.maxlist = 4


def safe_text(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """``text`` as something PostgreSQL text can hold: valid UTF-8 (lone surrogates escaped), no
    NUL, at most ``limit`` characters."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00")


def _detail(text: str) -> str:
    return safe_text(text)


def _reject_constant(name: str) -> float:
    raise _Unusable("non_finite_number", f"{name} is not a finite number")


def _parse_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Unusable("number_too_long", f"a number of {len(text)} characters")
    return int(text)


_STRING_LITERAL = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def _nesting_depth_exceeds(payload: bytes, limit: int) -> bool:
    """Whether brackets outside string literals nest deeper than ``limit``: a cheap pre-scan
    before the decoder, which would otherwise recurse once per level."""
    if payload.count(b"[") + payload.count(b"{") <= limit:
        return False
    brackets = _STRING_LITERAL.sub(b"", payload).translate(None, _NOT_A_BRACKET)
    for _ in range(limit):  # each round removes the innermost pairs
        inner = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if inner == brackets:
            break
        brackets = inner
    if not brackets:
        return False
    depth = 0  # unbalanced or deep: count exactly, whatever the bracket kinds
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        if depth > limit:
            return True
    return False


def parse_topic(topic: str) -> tuple[str, str] | None:
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != "enms" or parts[3] != "telemetry" or not all(parts):
        return None
    return parts[1], parts[2]


def parse_message(
    topic: str,
    payload: bytes,
    registry: RegistryView,
    now: dt.datetime,
    window: PlausibleTime | None = None,
) -> ParsedMessage:
    """Readings and rejections of one message; never raises, whatever the bytes."""
    try:
        return _parse_message(topic, payload, registry, now, window or PlausibleTime())
    except Exception as exc:  # a parser bug must quarantine the message, not stop ingestion
        return ParsedMessage(
            rejections=[Rejection("parser_error", _detail(f"{type(exc).__name__}: {exc}"))]
        )


def _parse_message(
    topic: str, payload: bytes, registry: RegistryView, now: dt.datetime, window: PlausibleTime
) -> ParsedMessage:
    out = ParsedMessage()
    if len(payload) > MAX_PAYLOAD_BYTES:
        out.rejections.append(
            Rejection("oversized", f"{len(payload)} bytes > limit {MAX_PAYLOAD_BYTES}")
        )
        return out
    where = parse_topic(topic)
    if where is None:
        out.rejections.append(
            Rejection(
                "bad_topic", _detail(f"{_show.repr(topic)} is not enms/<site>/<machine>/telemetry")
            )
        )
        return out
    site_id, machine_id = where
    if machine_id not in registry.machine_sites:
        out.rejections.append(
            Rejection("unknown_machine", _detail(f"machine {machine_id!r} not registered"))
        )
        return out
    if registry.machine_sites[machine_id] != site_id:
        out.rejections.append(
            Rejection(
                "topic_mismatch",
                _detail(
                    f"machine {machine_id!r} belongs to site "
                    f"{registry.machine_sites[machine_id]!r}, topic says {site_id!r}"
                ),
            )
        )
        return out
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        out.rejections.append(Rejection("invalid_utf8", _detail(str(exc))))
        return out
    if _nesting_depth_exceeds(payload, MAX_NESTING):
        out.rejections.append(Rejection("too_deep", f"nesting deeper than {MAX_NESTING} levels"))
        return out
    try:
        doc = json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int)
    except _Unusable as exc:
        out.rejections.append(Rejection(exc.reason, exc.detail))
        return out
    except json.JSONDecodeError as exc:
        out.rejections.append(Rejection("malformed_json", _detail(str(exc))))
        return out
    samples = doc if isinstance(doc, list) else [doc]
    out.samples = len(samples)
    if not samples:
        out.rejections.append(Rejection("bad_shape", "empty array"))
        return out
    if len(samples) > MAX_SAMPLES_PER_MESSAGE:
        out.rejections.append(
            Rejection(
                "too_many_samples", f"{len(samples)} samples > limit {MAX_SAMPLES_PER_MESSAGE}"
            )
        )
        return out
    commissioned = registry.commissioned.get(machine_id)
    earliest, latest = window.bounds(now)
    for index, sample in enumerate(samples):
        label = f"sample {index}: " if isinstance(doc, list) else ""
        problem = _parse_sample(
            sample, machine_id, registry, (earliest, latest), commissioned, out.readings
        )
        if problem is not None:
            out.rejections.append(Rejection(problem.reason, _detail(label + problem.detail)))
    return out


def _parse_sample(
    sample: object,
    machine_id: str,
    registry: RegistryView,
    bounds: tuple[dt.datetime, dt.datetime],
    commissioned: dt.datetime | None,
    readings: list[Reading],
) -> Rejection | None:
    if not isinstance(sample, dict) or not isinstance(sample.get("metrics"), dict):
        return Rejection("bad_shape", "expected an object with 'ts' and a 'metrics' object")
    metrics: dict = sample["metrics"]
    if len(metrics) > MAX_METRICS_PER_SAMPLE:
        return Rejection(
            "too_many_metrics", f"{len(metrics)} metrics > limit {MAX_METRICS_PER_SAMPLE}"
        )
    raw_ts = sample.get("ts")
    if not isinstance(raw_ts, str):
        return Rejection(
            "bad_timestamp", f"'ts' must be an ISO-8601 string, got {_show.repr(raw_ts)}"
        )
    if len(raw_ts) > MAX_TS_CHARS:
        return Rejection("bad_timestamp", f"'ts' of {len(raw_ts)} characters is not ISO-8601")
    try:
        ts = dt.datetime.fromisoformat(raw_ts)
    except ValueError:
        return Rejection("bad_timestamp", f"'ts' {raw_ts!r} is not ISO-8601")
    if ts.tzinfo is None:
        return Rejection("bad_timestamp", f"'ts' {raw_ts!r} has no UTC offset")
    try:
        ts = ts.astimezone(dt.UTC)  # years 1 and 9999 with an offset fall outside datetime
    except (OverflowError, ValueError):
        return Rejection("bad_timestamp", f"'ts' {raw_ts!r} is outside the representable range")
    earliest, latest = bounds
    if ts > latest:
        return Rejection("future_timestamp", f"'ts' {raw_ts!r} is after {latest.isoformat()}")
    if commissioned is not None and ts < commissioned:
        return Rejection(
            "before_commissioning", f"'ts' {raw_ts} precedes commissioning {commissioned.date()}"
        )
    if ts < earliest:
        return Rejection("too_old", f"'ts' {raw_ts!r} is before {earliest.isoformat()}")
    new: list[Reading] = []
    for metric, value in metrics.items():
        if metric not in registry.metrics:
            return Rejection("unknown_metric", f"metric {_show.repr(metric)} is not in the catalog")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return Rejection(
                "wrong_type", f"metric {metric!r} must be a number, got {_show.repr(value)}"
            )
        value = float(value)
        if not math.isfinite(value):  # 1e999 decodes as inf
            return Rejection("non_finite_number", f"metric {metric!r} is {value!r}")
        new.append((machine_id, metric, ts, value))
    state = sample.get("state")
    if state is not None:
        if not isinstance(state, str) or state not in STATE_CODES:
            return Rejection(
                "bad_state",
                f"state {_show.repr(state)} is not one of {sorted(STATE_CODES)}",
            )
        new.append((machine_id, "state", ts, float(STATE_CODES[state])))
    if not new:
        return Rejection("bad_shape", "sample carries no metrics")
    readings.extend(new)
    return None
