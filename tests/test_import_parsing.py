"""CSV line parsing for `enms import`, without a database: local times are placed exactly or
refused at a clock change, never guessed."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enms_dagster.ingest.csv_import import ImportFormatError, ImportRegistry, LineParser
from enms_dagster.ingest.payload import PlausibleTime

BERLIN = ZoneInfo("Europe/Berlin")
REGISTRY = ImportRegistry(
    zones={"MTR-01": BERLIN},
    commissioned={"MTR-01": dt.datetime(2025, 1, 1, tzinfo=BERLIN)},
    metrics=frozenset({"energy_kwh_total", "energy_kwh_interval", "power_kw", "state"}),
)
NOW = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
HISTORY = PlausibleTime(since=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))  # as `--since 2025-01-01`


def parse_long(ts, metric="energy_kwh_interval", value="1.5"):
    parser = LineParser(["ts", "machine", "metric", "value"], REGISTRY, NOW, HISTORY)
    return parser.parse([ts, "MTR-01", metric, value])


@given(st.datetimes(min_value=dt.datetime(2025, 1, 2), max_value=dt.datetime(2026, 12, 31)))
def test_a_naive_local_time_is_placed_exactly_or_refused_at_a_clock_change(naive):
    naive = naive.replace(microsecond=0)
    readings, problem = parse_long(naive.isoformat(sep=" "))
    early, late = naive.replace(tzinfo=BERLIN, fold=0), naive.replace(tzinfo=BERLIN, fold=1)
    if early.utcoffset() == late.utcoffset():
        assert problem is None
        ts = readings[0][2]
        assert ts.astimezone(BERLIN).replace(tzinfo=None) == naive  # same wall time, exactly
    else:
        assert readings == [] and problem.reason in ("dst_gap", "dst_ambiguous")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2026-03-29 02:30", "dst_gap"),
        ("2026-10-25 02:30", "dst_ambiguous"),
        ("2026-03-29T02:30:00+01:00", None),  # an offset settles it
        ("2026-10-25T02:30:00+02:00", None),
        ("yesterday", "bad_timestamp"),
        ("2028-01-01T00:00:00Z", "future_timestamp"),
        ("2024-06-01T00:00:00Z", "before_commissioning"),
    ],
)
def test_timestamps(text, reason):
    _, problem = parse_long(text)
    assert (problem.reason if problem else None) == reason


@pytest.mark.parametrize(
    ("value", "reason"),
    [("12.5", None), ("1e3", None), ("twelve", "bad_number"), ("", "bad_number"),
     ("nan", "non_finite_number"), ("-inf", "non_finite_number")],
)  # fmt: skip
def test_values(value, reason):
    readings, problem = parse_long("2026-03-10T08:00:00+01:00", value=value)
    assert (problem.reason if problem else None) == reason
    if reason is None:
        assert readings == [
            ("MTR-01", "energy_kwh_interval", dt.datetime(2026, 3, 10, 7, tzinfo=dt.UTC),
             float(value))
        ]  # fmt: skip


def test_a_wide_line_lands_its_filled_cells_and_state_names():
    parser = LineParser(["ts", "machine", "power_kw", "state", "energy_kwh_total"], REGISTRY, NOW)
    readings, problem = parser.parse(["2026-03-10T08:00:00Z", "MTR-01", "4.5", "running", ""])
    assert problem is None
    assert [(m, v) for _, m, _, v in readings] == [("power_kw", 4.5), ("state", 2.0)]


def test_a_wide_header_with_a_metric_outside_the_catalog_is_refused():
    with pytest.raises(ImportFormatError, match="volume_m3"):
        LineParser(["ts", "machine", "volume_m3"], REGISTRY, NOW)
