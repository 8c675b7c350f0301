"""Event-level scoring of anomaly events against labelled faults, on hand-built events."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from enms_dagster.anomalies.evaluation import evaluate, evaluate_detectors, format_evaluation


def ts(day: int, hour: int) -> pd.Timestamp:
    return pd.Timestamp(2026, 3, day, hour, tz="UTC")


LABELS = pd.DataFrame(
    [
        ("CMP-01", "air_leak", ts(1, 10), ts(3, 10)),
        ("CMP-01", "left_running", ts(5, 21), ts(6, 5)),
        ("HYD-01", "pump_cavitation", ts(2, 0), ts(2, 12)),
        ("CNV-01", "bearing_wear", ts(1, 0), ts(10, 0)),
        ("HVAC-01", "left_running", ts(7, 21), ts(8, 5)),
    ],
    columns=["machine_id", "kind", "start_ts", "end_ts"],
)
EVENTS = pd.DataFrame(
    [
        ("CMP-01", "idle_power_high", "rule", ts(1, 14), ts(1, 18)),  # air leak, 4 h late
        ("CMP-01", "above_baseline", "residual_zscore", ts(2, 8), ts(2, 9)),  # air leak again
        ("CMP-01", "out_of_hours", "rule", ts(5, 20), ts(6, 2)),  # from before the fault: 0 h
        ("HVAC-01", "out_of_hours", "rule", ts(7, 23), ts(8, 5)),  # left running, 2 h late
        ("HYD-01", "unusual_load", "isolation_forest", ts(2, 12), ts(2, 14)),  # after the end
        ("CNV-01", "stuck_signal", "rule", ts(12, 0), ts(12, 3)),  # after the fault
        ("IMM-01", "out_of_hours", "rule", ts(4, 22), ts(5, 3)),  # a fault-free machine
        ("IMM-01", "idle_power_high", "rule", ts(9, 8), ts(9, 9)),
    ],
    columns=["machine_id", "kind", "method", "start_ts", "end_ts"],
)
MACHINES = ["CMP-01", "HYD-01", "CNV-01", "HVAC-01", "IMM-01", "MTR-01"]


@pytest.fixture
def scores() -> pd.DataFrame:
    return evaluate(EVENTS, LABELS, machines=MACHINES, start=ts(1, 0), end=ts(15, 0)).set_index(
        "fault_kind"
    )


def test_recall_per_fault_kind_counts_labels_some_event_overlaps(scores):
    assert scores["labels"].to_dict() == {
        "air_leak": 1,
        "bearing_wear": 1,
        "left_running": 2,
        "pump_cavitation": 1,
        "all": 5,
    }
    assert scores["found"].to_dict() == {
        "air_leak": 1,
        "bearing_wear": 0,
        "left_running": 2,
        "pump_cavitation": 0,
        "all": 3,
    }
    assert scores.loc["left_running", "recall"] == 1.0
    assert scores.loc["pump_cavitation", "recall"] == 0.0
    assert scores.loc["all", "recall"] == pytest.approx(3 / 5)


def test_an_event_touching_a_label_only_at_its_edge_does_not_find_it(scores):
    # HYD-01's event starts at the label's end: the readings it covers come after the fault
    assert scores.loc["pump_cavitation", "found"] == 0


def test_precision_is_the_share_of_events_overlapping_a_label(scores):
    assert scores.loc["all", "events"] == 8
    assert scores.loc["all", "true_events"] == 4
    assert scores.loc["all", "precision"] == 0.5


def test_detection_delay_is_from_label_start_to_the_first_overlapping_event_clipped_at_zero(
    scores,
):
    assert scores.loc["air_leak", "median_delay_h"] == 4.0
    assert scores.loc["left_running", "median_delay_h"] == 1.0  # median of 0 h and 2 h
    assert scores.loc["all", "median_delay_h"] == 2.0  # 4, 0, 2
    assert math.isnan(scores.loc["bearing_wear", "median_delay_h"])


def test_false_alarms_are_events_per_week_on_machines_without_faults(scores):
    # IMM-01 and MTR-01 had no fault; IMM-01 alarmed twice in two weeks
    assert scores.loc["all", "fault_free_machines"] == 2
    assert scores.loc["all", "false_alarms"] == 2
    assert scores.loc["all", "false_alarms_per_machine_week"] == 0.5


def test_events_overlapping_no_label_are_counted_per_monitored_machine_week(scores):
    # 4 of the 8 events overlap no label; 6 machines monitored for two weeks
    assert scores.loc["all", "machines"] == 6
    assert scores.loc["all", "unmatched_events"] == 4
    assert scores.loc["all", "unmatched_per_machine_week"] == pytest.approx(4 / 12)


def test_no_events_means_no_precision_and_nothing_found():
    scores = evaluate(EVENTS.iloc[:0], LABELS).set_index("fault_kind")
    assert scores.loc["all", "found"] == 0
    assert math.isnan(scores.loc["all", "precision"])


def test_precision_per_detector():
    table = evaluate_detectors(EVENTS, LABELS).set_index("kind")
    assert table.loc["out_of_hours", ["events", "true_events"]].tolist() == [3, 2]
    assert table.loc["idle_power_high", "precision"] == 0.5
    assert table.loc["unusual_load", "precision"] == 0.0


def test_the_scores_print_as_a_table(scores):
    text = format_evaluation(scores.reset_index())
    assert "left_running                  2      2    100%      1.0" in text
    assert "precision 50% (4 of 8 events overlap a fault); 4 overlap none (0.33 per" in text
    assert "2 fault-free machines: 2 (0.50 per machine-week)" in text
