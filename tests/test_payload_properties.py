"""The telemetry parser is total: whatever bytes arrive on whatever topic, the message ends as
finite readings or rejections with a documented reason, and every string that goes on to
PostgreSQL is text it can store (valid UTF-8, no NUL, bounded)."""

import datetime as dt
import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from enms_dagster.ingest.payload import (
    MAX_DETAIL_CHARS,
    REASONS,
    ParsedMessage,
    PlausibleTime,
    RegistryView,
    parse_message,
    safe_text,
)

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
WINDOW = PlausibleTime()
REGISTRY = RegistryView(
    machine_sites={"CMP-01": "plant-a"},
    commissioned={"CMP-01": dt.datetime(2025, 1, 1, tzinfo=dt.UTC)},
    metrics=frozenset({"power_kw", "energy_kwh_total", "state"}),
)
TOPIC = "enms/plant-a/CMP-01/telemetry"
FAST = settings(max_examples=300, deadline=None)


def storable(text: str) -> bool:
    text.encode("utf-8")  # raises on a lone surrogate
    return "\x00" not in text


def assert_total(out: ParsedMessage) -> None:
    assert out.readings or out.rejections
    earliest, latest = WINDOW.bounds(NOW)
    for machine, metric, ts, value in out.readings:
        assert (machine, metric in REGISTRY.metrics) == ("CMP-01", True)
        assert type(value) is float and math.isfinite(value)
        assert ts.tzinfo is not None and earliest <= ts <= latest
    for rejection in out.rejections:
        assert rejection.reason in REASONS and rejection.reason != "parser_error"
        assert storable(rejection.detail) and len(rejection.detail) <= MAX_DETAIL_CHARS
    summary = out.quarantine_rejection()
    if out.rejections:
        assert summary.reason == out.rejections[0].reason
        assert storable(summary.detail) and len(summary.detail) <= 4 * 1024


def parse(payload: bytes, topic: str = TOPIC) -> ParsedMessage:
    out = parse_message(topic, payload, REGISTRY, NOW, WINDOW)
    assert_total(out)
    return out


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats()
    | st.integers(min_value=-(10**80), max_value=10**80)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=40,
)
adversarial_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["\ud800", "\x00", "power_kw\x00", "\udfff\ud800", "é" * 50, "\u2028"]),
)
timestamps = st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2026, 3, 10, 11)).map(
        lambda d: d.isoformat() + "+00:00"
    ),
    st.sampled_from(
        [
            "9999-12-31T23:59:59-23:59",
            "0001-01-01T00:00:00+23:59",
            "0000-01-01T00:00:00Z",
            "2026-03-10T11:00:00+24:00",
            "2026-03-10T11:00:00" + "0" * 1000,
        ]
    ),
    adversarial_text,
    json_values,
)
metric_values = st.one_of(
    st.floats(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.booleans(),
    adversarial_text,
    json_values,
)
samples = st.fixed_dictionaries(
    {
        "ts": timestamps,
        "metrics": st.one_of(
            st.dictionaries(
                st.sampled_from(["power_kw", "energy_kwh_total"]) | adversarial_text,
                metric_values,
                max_size=4,
            ),
            json_values,
        ),
    },
    optional={"state": st.sampled_from(["off", "idle", "running"]) | json_values},
)


@FAST
@given(st.binary(max_size=2000))
def test_any_bytes_end_as_readings_or_reasoned_rejections(payload):
    parse(payload)


@FAST
@given(json_values)
def test_any_json_document_ends_as_readings_or_reasoned_rejections(doc):
    parse(json.dumps(doc).encode())


@FAST
@given(st.one_of(samples, st.lists(samples, max_size=6)))
def test_sample_shaped_documents_with_adversarial_fields_end_well(doc):
    parse(json.dumps(doc).encode())


number_literals = st.from_regex(
    r"-?(0|[1-9][0-9]{0,500})(\.[0-9]{1,80})?([eE][+-]?[0-9]{1,6})?", fullmatch=True
)


@FAST
@given(number_literals)
def test_any_number_literal_is_a_finite_reading_or_a_reason(literal):
    raw = '{"ts": "2026-03-10T11:00:00Z", "metrics": {"power_kw": ' + literal + "}}"
    out = parse(raw.encode())
    assert len(out.readings) == 1 or out.rejections[0].reason in {
        "number_too_long",
        "non_finite_number",
    }


@FAST
@given(st.integers(min_value=1, max_value=20_000), st.sampled_from([b"[", b'{"a":']))
def test_nesting_of_any_depth_is_bounded_before_decoding(depth, opener):
    closer = b"]" if opener == b"[" else b"}"
    parse(opener * depth + b"1" + closer * depth)


@FAST
@given(adversarial_text, st.binary(max_size=200))
def test_any_topic_ends_as_a_reason_never_an_exception(topic, payload):
    parse(payload, topic)


@FAST
@given(st.text(max_size=500), st.integers(min_value=2, max_value=400))
def test_safe_text_is_storable_and_bounded(text, limit):
    shown = safe_text(text, limit)
    assert storable(shown)
    assert len(shown) <= 4 * limit  # a surrogate's escape may lengthen a kept character
