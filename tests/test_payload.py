"""The telemetry contract: good samples become readings, each bad one a reason, never a crash."""

import datetime as dt
import json

import pytest

from enms_dagster.ingest.payload import (
    MAX_DETAIL_CHARS,
    MAX_DETAILS_KEPT,
    PlausibleTime,
    RegistryView,
    parse_message,
)

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
REGISTRY = RegistryView(
    machine_sites={"CMP-01": "plant-a"},
    commissioned={"CMP-01": dt.datetime(2025, 1, 1, tzinfo=dt.UTC)},
    metrics=frozenset({"power_kw", "energy_kwh_total", "state"}),
)
TOPIC = "enms/plant-a/CMP-01/telemetry"


def sample(ts="2026-03-10T11:00:00+01:00", **metrics):
    return {"ts": ts, "metrics": metrics or {"power_kw": 41.5}, "state": "running"}


def parse(payload, topic=TOPIC):
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return parse_message(topic, raw, REGISTRY, NOW)


def test_a_sample_becomes_one_reading_per_metric_plus_the_state_code():
    out = parse(sample(power_kw=41.5, energy_kwh_total=1000.25))
    assert out.rejections == []
    ts = dt.datetime(2026, 3, 10, 10, 0, tzinfo=dt.UTC)
    assert sorted(out.readings) == sorted(
        [
            ("CMP-01", "power_kw", ts, 41.5),
            ("CMP-01", "energy_kwh_total", ts, 1000.25),
            ("CMP-01", "state", ts, 2.0),
        ]
    )


def test_one_bad_sample_in_an_array_does_not_reject_the_others():
    out = parse([sample(), sample(ts="yesterday"), sample(ts="2026-03-10T11:00:30+01:00")])
    assert len(out.readings) == 4
    assert [(r.reason, r.detail.split(":")[0]) for r in out.rejections] == [
        ("bad_timestamp", "sample 1")
    ]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"ts": "2026-03-10T11:00:00+01:00", "metrics": {"power_kw": NaN}}', "non_finite_number"),
        (
            b'{"ts": "2026-03-10T11:00:00+01:00", "metrics": {"power_kw": -Infinity}}',
            "non_finite_number",
        ),
        (b"\xff\xfe{}", "invalid_utf8"),
        (b'{"ts": ', "malformed_json"),
        (sample(power_kw="41.5"), "wrong_type"),
        (sample(power_kw=True), "wrong_type"),
        (sample(ts="2026-03-10T11:00:00"), "bad_timestamp"),
        (sample(ts="2026-03-10T14:00:00+01:00"), "future_timestamp"),
        (sample(ts="2024-12-31T23:00:00+00:00"), "before_commissioning"),
        (sample(volts=230.0), "unknown_metric"),
        (
            {"ts": "2026-03-10T11:00:00+01:00", "metrics": {"power_kw": 1.0}, "state": "asleep"},
            "bad_state",
        ),
        ([], "bad_shape"),
        (b"x" * (256 * 1024 + 1), "oversized"),
    ],
)
def test_bad_input_is_rejected_with_its_reason(payload, reason):
    out = parse(payload)
    assert out.readings == []
    assert [r.reason for r in out.rejections] == [reason]


def test_unknown_machine_and_topic_mismatch_are_told_apart():
    assert (
        parse(sample(), "enms/plant-a/CMP-99/telemetry").rejections[0].reason == "unknown_machine"
    )
    assert parse(sample(), "enms/plant-b/CMP-01/telemetry").rejections[0].reason == "topic_mismatch"
    assert parse(sample(), "factory/CMP-01").rejections[0].reason == "bad_topic"


def test_five_minutes_of_clock_skew_is_tolerated():
    assert parse(sample(ts="2026-03-10T12:04:59+00:00")).rejections == []


# Payloads that used to raise out of the parser (and stop the ingestor's worker for good).
GOOD_TS = '"ts": "2026-03-10T11:00:00+01:00"'
KILLERS = {
    "float_overflow": (
        b"{" + GOOD_TS.encode() + b', "metrics": {"power_kw": 1e999}}',
        "non_finite_number",
    ),
    "huge_int": (
        b"{" + GOOD_TS.encode() + b', "metrics": {"power_kw": 1' + b"0" * 5000 + b"}}",
        "number_too_long",
    ),
    "int_beyond_float": (
        b"{" + GOOD_TS.encode() + b', "metrics": {"power_kw": 1' + b"0" * 400 + b"}}",
        "number_too_long",
    ),
    "deep_nesting": (b"[" * 100_000 + b"]" * 100_000, "too_deep"),
    "deep_in_metrics": (
        b"{" + GOOD_TS.encode() + b', "metrics": {"power_kw": ' + b"[" * 5000 + b"]" * 5000 + b"}}",
        "too_deep",
    ),
    "unhashable_state": (
        b"{" + GOOD_TS.encode() + b', "metrics": {"power_kw": 1}, "state": []}',
        "bad_state",
    ),
    "year_9999_with_offset": (
        b'{"ts": "9999-12-31T23:59:59-23:59", "metrics": {"power_kw": 1}}',
        "bad_timestamp",
    ),
    "year_1_with_offset": (
        b'{"ts": "0001-01-01T00:00:00+23:59", "metrics": {"power_kw": 1}}',
        "bad_timestamp",
    ),
    "year_0": (b'{"ts": "0000-01-01T00:00:00+00:00", "metrics": {"power_kw": 1}}', "bad_timestamp"),
    "huge_ts": (
        b'{"ts": "2026-03-10T11:00:00' + b"0" * 100_000 + b'+01:00", "metrics": {}}',
        "bad_timestamp",
    ),
    "thousands_of_metrics": (
        json.dumps(
            {"ts": "2026-03-10T11:00:00+01:00", "metrics": {f"m{i}": 1.0 for i in range(5000)}}
        ).encode(),
        "too_many_metrics",
    ),
    "too_many_samples": (b"[" + b",".join([b"{}"] * 5001) + b"]", "too_many_samples"),
}


@pytest.mark.parametrize("name", sorted(KILLERS))
def test_former_killer_payloads_are_rejected_with_their_reason(name):
    payload, reason = KILLERS[name]
    out = parse(payload)
    assert out.readings == []
    assert {r.reason for r in out.rejections} == {reason}
    assert all(len(r.detail) <= MAX_DETAIL_CHARS for r in out.rejections)


def test_a_lone_surrogate_or_nul_in_a_metric_name_never_reaches_the_detail_raw():
    out = parse(b"{" + GOOD_TS.encode() + b', "metrics": {"\\ud800\\u0000": 1}}')
    [rejection] = out.rejections
    assert rejection.reason == "unknown_metric"
    assert "\x00" not in rejection.detail
    rejection.detail.encode("utf-8")  # no lone surrogate left


def test_a_huge_value_is_shown_cut_short_in_the_detail():
    out = parse(sample(power_kw=["x" * 100_000, "y" * 100_000]))
    assert out.rejections[0].reason == "wrong_type"
    assert len(out.rejections[0].detail) <= MAX_DETAIL_CHARS


def test_readings_outside_the_plausible_window_are_too_old_or_future():
    window = PlausibleTime(max_age=dt.timedelta(days=30), max_ahead=dt.timedelta(days=1))
    old = json.dumps(sample(ts="2026-01-01T00:00:00+00:00")).encode()
    soon = json.dumps(sample(ts="2026-03-11T00:00:00+00:00")).encode()
    later = json.dumps(sample(ts="2026-03-12T00:00:00+00:00")).encode()
    assert parse_message(TOPIC, old, REGISTRY, NOW, window).rejections[0].reason == "too_old"
    assert parse_message(TOPIC, soon, REGISTRY, NOW, window).rejections == []
    reason = parse_message(TOPIC, later, REGISTRY, NOW, window).rejections[0].reason
    assert reason == "future_timestamp"
    since = PlausibleTime(since=dt.datetime(2025, 6, 1, tzinfo=dt.UTC))
    assert parse_message(TOPIC, old, REGISTRY, NOW, since).rejections == []


def test_a_message_with_many_bad_samples_becomes_one_bounded_quarantine_reason():
    samples = [sample()] + [sample(ts=f"bad {i}") for i in range(2000)] + [sample(volts=1.0)]
    out = parse(samples)
    assert len(out.readings) == 2 and len(out.rejections) == 2001
    rejection = out.quarantine_rejection()
    assert rejection.reason == "bad_timestamp"
    assert rejection.detail.startswith(
        "2001 of 2002 samples rejected (bad_timestamp 2000, unknown_metric 1): sample 1: "
    )
    assert rejection.detail.endswith(f"and {2001 - MAX_DETAILS_KEPT} more")
    assert len(rejection.detail) < 2000
    assert parse(sample()).quarantine_rejection() is None
