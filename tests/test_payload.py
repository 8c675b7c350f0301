"""The telemetry contract: good samples become readings, each bad one a reason, never a crash."""

import datetime as dt
import json

import pytest

from enms_dagster.ingest.payload import RegistryView, parse_message

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
