"""Metadata the UI draws natively: typed tables, timestamps in one offset, numbers to plot."""

import datetime as dt
from decimal import Decimal

import dagster as dg
import pandas as pd

from enms_dagster.assets.anomalies import _flags_by_kind, _scores_table
from enms_dagster.assets.metadata import native_table, plottable, window_timestamps
from enms_dagster.ingest.batches import DayActivity
from enms_dagster.sensors.raw_readings import materialization_for


def records(value: dg.TableMetadataValue) -> list[dict]:
    return [r.data for r in value.records]


def test_a_table_is_typed_by_its_values_and_sql_values_become_cells():
    value = native_table(
        ["machine", "hours", "kWh", "day", "ok"],
        [
            ("HYD-01", 24, None, dt.date(2026, 3, 10), True),
            ("CMP-01", 23, Decimal("41.500"), dt.date(2026, 3, 10), False),
        ],
    )
    types = {c.name: c.type for c in value.schema.columns}
    assert types == {
        "machine": "string",
        "hours": "int",
        "kWh": "float",
        "day": "string",
        "ok": "bool",
    }
    assert records(value)[1] == {
        "machine": "CMP-01",
        "hours": 23,
        "kWh": 41.5,
        "day": "2026-03-10",
        "ok": False,
    }


def test_an_empty_table_keeps_its_columns():
    value = native_table(["kind", "hours"], [])
    assert [c.name for c in value.schema.columns] == ["kind", "hours"] and value.records == []


def test_numbers_to_plot_are_floats_or_nothing():
    assert plottable(Decimal("1.23456"), 2) == 1.23
    assert plottable(7) == 7.0
    assert plottable(float("nan")) is None and plottable(None) is None and plottable(True) is None


def test_instants_are_timestamps_whatever_offset_they_came_in():
    berlin = dt.timezone(dt.timedelta(hours=1))
    start = dt.datetime(2026, 3, 10, tzinfo=berlin)
    activity = DayActivity(
        dt.date(2026, 3, 10),
        batches=2,
        readings_inserted=10,
        readings_received=12,
        machines={"HYD-01"},
        min_ts=start,
        max_ts=dt.datetime(2026, 3, 10, 22, 59, tzinfo=dt.UTC),
        last_committed_at=dt.datetime(2026, 3, 10, 23, 0, tzinfo=dt.UTC),
    )
    metadata = materialization_for(
        activity, dt.datetime(2026, 3, 10, 23, 1, tzinfo=dt.UTC), last_batch_id=7
    ).metadata
    assert isinstance(metadata["min_ts"], dg.TimestampMetadataValue)
    assert isinstance(metadata["max_ts"], dg.TimestampMetadataValue)
    assert metadata["max_ts"].value - metadata["min_ts"].value == 24 * 3600 - 60
    assert (
        metadata["readings_duplicate"].value == 2 and metadata["seconds_since_commit"].value == 60
    )
    assert metadata["last_batch_id"].value == 7
    window = dg.TimeWindow(start, start + dt.timedelta(days=1))
    assert window_timestamps(window)["window_end"].value == start.timestamp() + 86400


def test_anomaly_flags_and_scores_are_tables_of_numbers():
    hour = pd.Timestamp("2026-03-03T00:00Z")
    flags = pd.DataFrame(
        {
            "kind": ["out_of_hours", "out_of_hours", "unusual_load"],
            "method": ["rule", "rule", "forest"],
            "hour_start": [hour, hour + pd.Timedelta(hours=1), hour],
            "machine_id": ["CMP-01", "CMP-01", "CMP-02"],
            "excess_kwh": [22.0, -3.0, 5.0],
        }
    )
    assert records(_flags_by_kind(flags)) == [
        {"kind": "out_of_hours", "method": "rule", "hours": 2, "machines": 1, "excess kWh": 22.0},
        {"kind": "unusual_load", "method": "forest", "hours": 1, "machines": 1, "excess kWh": 5.0},
    ]
    assert records(_flags_by_kind(flags.iloc[0:0])) == []
    scores = pd.DataFrame(
        {
            "fault_kind": ["all"],
            "labels": [2],
            "found": [1],
            "recall": [0.5],
            "median_delay_h": [float("nan")],
            "precision": [1.0],
            "unmatched_per_machine_week": [0.25],
            "false_alarms_per_machine_week": [None],
        }
    )
    (row,) = records(_scores_table(scores))
    assert (row["recall"], row["median delay h"], row["precision"]) == (0.5, None, 1.0)
