"""Anomaly events: flagged hours merge into one event that keeps its id as it grows, in memory and
in the warehouse, and the anomalies asset writes them."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from enms_dagster.anomalies.contracts import FLAG_COLUMNS
from enms_dagster.anomalies.detectors import with_excess_cost
from enms_dagster.anomalies.events import (
    distinct_problems,
    event_id_for,
    group_runs,
    reconcile_events,
)
from enms_dagster.anomalies.store import read_events, store_anomalies
from enms_dagster.definitions import defs as load_definitions
from enms_dagster.plant import MachineLabel
from enms_dagster.resources import PlantResource, WarehouseResource
from tests.conftest import SMALL_PLANT
from tests.test_anomaly_rules import SCORED_DAY, hours_of, local, machine_hours

anomalies = load_definitions().get_assets_def("anomalies")

LABELS = {"CMP-01": MachineLabel("Compressor 1", "plant-a", "Europe/Berlin")}
T0 = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)


def flags_for(
    first: pd.Timestamp,
    hours: int,
    kind: str = "out_of_hours",
    machine: str = "CMP-01",
    severity: str | list[str] = "low",
    excess_kwh: float = 22.0,
) -> pd.DataFrame:
    """Hand-made hourly flags: ``hours`` consecutive hours from ``first``."""
    stamps = pd.date_range(first, periods=hours, freq="h")
    flags = pd.DataFrame(
        {
            "machine_id": machine,
            "hour_start": stamps,
            "kind": kind,
            "method": "rule",
            "severity": severity,
            "score": 3.0,
            "threshold": 1.0,
            "expected_kwh": 0.0,
            "actual_kwh": excess_kwh,
            "excess_kwh": excess_kwh,
            "observed": excess_kwh,
            "normal": 0.0,
        }
    )
    return with_excess_cost(flags[list(FLAG_COLUMNS)], 0.20)


# --- in memory ------------------------------------------------------------------------------


def test_consecutive_hours_make_one_run_and_a_gap_starts_another():
    first = local(SCORED_DAY, 22)
    flags = pd.concat(
        [
            flags_for(first, 10),
            flags_for(first + pd.Timedelta(hours=12), 2),  # two silent hours in between
            flags_for(first, 3, kind="power_while_off"),
        ]
    )
    runs = group_runs(flags)
    assert [(r.kind, r.hours) for r in runs.itertuples()] == [
        ("out_of_hours", 10),
        ("out_of_hours", 2),
        ("power_while_off", 3),
    ]
    ten = runs.iloc[0]
    assert ten["start_ts"] == first and ten["end_ts"] == first + pd.Timedelta(hours=10)
    assert ten["excess_kwh"] == pytest.approx(220.0)
    assert ten["excess_cost"] == pytest.approx(44.0)
    assert len(group_runs(flags, max_gap_h=2)) == 2  # bridging two silent hours


def test_an_event_takes_its_highest_severity_and_score():
    flags = flags_for(local(SCORED_DAY, 22), 3, severity=["low", "high", "medium"])
    flags.loc[1, "score"] = 9.0
    run = group_runs(flags).iloc[0]
    assert (run["severity"], run["score"]) == ("high", 9.0)


def test_the_sentence_says_what_where_when_and_what_it_cost():
    runs = group_runs(flags_for(local(SCORED_DAY, 22), 8))
    event = reconcile_events(runs, pd.DataFrame(), LABELS, T0).upserts.iloc[0]
    assert event["sentence"] == (
        "Compressor 1 (CMP-01) drew 176 kWh more than expected between Tue 03 Mar 22:00 and "
        "Wed 04 Mar 06:00 while the plant was closed, about 35 EUR."
    )
    assert event["event_id"] == "CMP-01.out_of_hours.20260303T2100Z"
    assert event["site_id"] == "plant-a"


def test_a_baseline_expecting_a_hair_below_zero_reads_as_zero_kwh():
    flags = flags_for(local(SCORED_DAY, 22), 7, kind="above_baseline", excess_kwh=91.0)
    flags["expected_kwh"] = -0.0004  # a regression's intercept on a machine that is off
    runs = group_runs(flags)
    sentence = reconcile_events(runs, pd.DataFrame(), LABELS, T0).upserts.iloc[0]["sentence"]
    assert "instead of 0.0 kWh" in sentence
    assert "-0.0" not in sentence


def test_one_problem_seen_by_several_detectors_is_listed_once_under_its_costliest_event():
    def event(machine, kind, start_h, hours, excess):
        start = T0 + dt.timedelta(hours=start_h)
        return {
            "machine_id": machine,
            "kind": kind,
            "start_ts": start,
            "end_ts": start + dt.timedelta(hours=hours),
            "excess_kwh": excess,
            "score": 1.0,
            "severity": "low",
        }

    events = pd.DataFrame(
        [
            event("IMM-04", "out_of_hours", 0, 55, 289.0),  # a weekend left on ...
            event("IMM-04", "above_baseline", 0, 55, 289.0),
            event("IMM-04", "base_load_creep", 12, 72, 267.0),
            event("CMP-02", "baseline_drift", 60, 96, 244.0),
            event("IMM-04", "out_of_hours", 100, 7, 30.0),  # ... and a later night: another
            event("HYD-01", "idle_power_high", 0, 3, None),
        ]
    )  # fmt: skip
    top = distinct_problems(events, 3)
    assert [(e["machine_id"], e["kind"], also) for e, also in top] == [
        ("IMM-04", "out_of_hours", ["above_baseline", "base_load_creep"]),
        ("CMP-02", "baseline_drift", []),
        ("IMM-04", "out_of_hours", []),
    ]
    assert len(distinct_problems(events, 10)) == 4


def test_an_event_keeps_its_id_and_first_seen_while_it_grows():
    first = local(SCORED_DAY, 22)
    created = reconcile_events(group_runs(flags_for(first, 3)), pd.DataFrame(), LABELS, T0)
    assert created.created == [event_id_for("CMP-01", "out_of_hours", first)]
    stored = created.upserts
    later = T0 + dt.timedelta(hours=3)
    grown = reconcile_events(group_runs(flags_for(first, 6)), stored, LABELS, later)
    assert grown.created == [] and grown.deleted == []
    assert grown.updated == created.created
    event = grown.upserts.iloc[0]
    assert event["event_id"] == created.created[0]
    assert event["first_seen"] == pd.Timestamp(T0)
    assert event["last_updated"] == pd.Timestamp(later)
    assert event["end_ts"] == first + pd.Timedelta(hours=6)


def test_reconciling_the_same_flags_again_changes_nothing():
    runs = group_runs(flags_for(local(SCORED_DAY, 22), 6))
    stored = reconcile_events(runs, pd.DataFrame(), LABELS, T0).upserts
    again = reconcile_events(runs, stored, LABELS, T0 + dt.timedelta(days=1))
    assert (again.created, again.updated, again.deleted) == ([], [], [])
    assert again.upserts.iloc[0]["last_updated"] == pd.Timestamp(T0)


def test_a_late_hour_joining_two_events_keeps_the_older_id_and_what_was_alerted():
    first = local(SCORED_DAY, 22)
    older = reconcile_events(group_runs(flags_for(first, 2)), pd.DataFrame(), LABELS, T0).upserts
    older["alerted_severity"] = "medium"
    newer = reconcile_events(
        group_runs(flags_for(first + pd.Timedelta(hours=3), 2)),
        pd.DataFrame(),
        LABELS,
        T0 + dt.timedelta(hours=1),
    ).upserts
    joined = reconcile_events(
        group_runs(flags_for(first, 5)),
        pd.concat([older, newer]),
        LABELS,
        T0 + dt.timedelta(hours=2),
    )
    assert joined.deleted == [newer.iloc[0]["event_id"]]
    event = joined.upserts.iloc[0]
    assert event["event_id"] == older.iloc[0]["event_id"]
    assert event["alerted_severity"] == "medium"
    assert event["hours"] == 5


# --- in the warehouse ------------------------------------------------------------------------


@pytest.fixture
def anomaly_tables(warehouse):
    warehouse.execute("TRUNCATE marts.anomalies, marts.anomaly_events, core.fault_labels")
    return warehouse


def day_window(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    return local(day).to_pydatetime(), local(day, 24).to_pydatetime()


def night_flags() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A compressor left on from Tuesday 22:00 to Wednesday 06:00: the flags of each day."""
    night = flags_for(local(SCORED_DAY, 22), 8)
    tuesday = night[night["hour_start"] < local(SCORED_DAY, 24)]
    return tuesday, night[night["hour_start"] >= local(SCORED_DAY, 24)]


@pytest.mark.integration
@pytest.mark.parametrize("order", ["tuesday first", "wednesday first"])
def test_an_event_spanning_midnight_stays_one_event_whichever_day_comes_first(
    anomaly_tables, order
):
    conn = anomaly_tables
    tuesday, wednesday = night_flags()
    days = [(SCORED_DAY, tuesday), (SCORED_DAY + dt.timedelta(days=1), wednesday)]
    if order == "wednesday first":
        days.reverse()
    for day, flags in days:
        store_anomalies(conn, *day_window(day), flags, LABELS, now=T0)
    events = read_events(conn, *day_window(SCORED_DAY))
    assert len(events) == 1
    event = events.iloc[0]
    assert (event["start_ts"], event["end_ts"]) == (local(SCORED_DAY, 22), local(SCORED_DAY, 30))
    assert event["hours"] == 8 and event["excess_kwh"] == pytest.approx(176.0)
    linked = conn.execute(
        "SELECT count(*) FROM marts.anomalies WHERE event_id = %s", (event["event_id"],)
    ).fetchone()[0]
    assert linked == 8


@pytest.mark.integration
def test_recomputing_a_day_with_the_same_data_changes_nothing(anomaly_tables):
    conn = anomaly_tables
    tuesday, wednesday = night_flags()
    store_anomalies(conn, *day_window(SCORED_DAY), tuesday, LABELS, now=T0)
    store_anomalies(conn, *day_window(SCORED_DAY + dt.timedelta(days=1)), wednesday, LABELS, now=T0)
    before = read_events(conn, *day_window(SCORED_DAY))
    later = T0 + dt.timedelta(days=1)
    again = store_anomalies(conn, *day_window(SCORED_DAY), tuesday, LABELS, now=later)
    assert (again.created, again.updated, again.deleted) == ([], [], [])
    pd.testing.assert_frame_equal(read_events(conn, *day_window(SCORED_DAY)), before)
    assert conn.execute("SELECT count(*) FROM marts.anomalies").fetchone()[0] == 8


@pytest.mark.integration
def test_an_event_whose_hours_vanish_on_recompute_is_retracted(anomaly_tables):
    conn = anomaly_tables
    tuesday, _ = night_flags()
    store_anomalies(conn, *day_window(SCORED_DAY), tuesday, LABELS, now=T0)
    result = store_anomalies(conn, *day_window(SCORED_DAY), tuesday.iloc[:0], LABELS, now=T0)
    assert len(result.deleted) == 1
    assert read_events(conn, *day_window(SCORED_DAY)).empty


def load_hourly(conn, frame: pd.DataFrame) -> None:
    """Write a hand-built hourly frame to core.hourly_energy and core.hourly_drivers."""
    conn.execute(
        "DELETE FROM core.hourly_drivers WHERE hour_start >= %s AND hour_start <= %s",
        (frame["hour_start"].min(), frame["hour_start"].max()),
    )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO core.hourly_energy (machine_id, hour_start, local_date, energy_kwh, "
            "energy_method, avg_kw, max_kw, peak_15min_kw, samples, power_kwh, running_h, idle_h, "
            "off_h, idle_kwh, expected_samples, completeness) "
            "VALUES (%s, %s, %s, %s, 'counter', %s, %s, %s, 3600, %s, %s, %s, %s, %s, 3600, %s)",
            [
                (
                    r.machine_id,
                    r.hour_start,
                    r.local_date,
                    r.energy_kwh,
                    r.avg_kw,
                    r.max_kw,
                    r.peak_15min_kw,
                    r.power_kwh,
                    r.running_h,
                    r.idle_h,
                    r.off_h,
                    r.idle_kwh,
                    r.completeness,
                )
                for r in frame.itertuples()
            ],
        )
        first = frame.drop_duplicates("hour_start")
        cur.executemany(
            "INSERT INTO core.hourly_drivers (site_id, hour_start, local_date, local_hour, "
            "iso_weekday, is_holiday, is_shift, outdoor_temperature_c, temperature_samples, "
            "hdh_base_c, cdh_base_c, parts) VALUES ('plant-a', %s, %s, %s, %s, %s, %s, %s, 60, "
            "18, 18, %s)",
            [
                (
                    r.hour_start,
                    r.local_date,
                    int(r.local_hour),
                    int(r.iso_weekday),
                    bool(r.is_holiday),
                    bool(r.is_shift),
                    r.outdoor_temperature_c,
                    r.site_parts,
                )
                for r in first.itertuples()
            ],
        )


@pytest.mark.integration
def test_the_anomalies_asset_finds_a_compressor_left_on_and_scores_it_against_its_label(
    services, anomaly_tables
):
    conn = anomaly_tables
    frame = machine_hours(days=30)
    night = hours_of(frame, SCORED_DAY, 0, 5)  # left on after midnight
    frame.loc[night, ["energy_kwh", "avg_kw", "power_kwh", "idle_kwh"]] = 22.0
    frame.loc[night, ["idle_h", "off_h"]] = [1.0, 0.0]
    load_hourly(conn, frame)
    conn.execute(
        "INSERT INTO core.fault_labels (machine_id, kind, start_ts, end_ts) "
        "VALUES ('CMP-01', 'left_running', %s, %s)",
        (local(SCORED_DAY).to_pydatetime(), local(SCORED_DAY, 5).to_pydatetime()),
    )
    result = dg.materialize(
        [anomalies],
        partition_key=SCORED_DAY.isoformat(),
        resources={
            "warehouse": WarehouseResource(database_url=services.database_url),
            "plant": PlantResource(plant_file=str(SMALL_PLANT)),
        },
    )
    assert result.success
    events = read_events(conn, *day_window(SCORED_DAY)).set_index("kind")
    # the rule and the forest both see it
    assert sorted(events.index) == ["out_of_hours", "unusual_load"]
    assert set(events["machine_id"]) == {"CMP-01"} and set(events["hours"]) == {5}
    assert events.loc["out_of_hours", "sentence"] == (
        "Compressor 1 (CMP-01) drew 110 kWh more than expected on Tue 03 Mar between 00:00 and "
        "05:00 while the plant was closed, about 22 EUR."
    )
    metadata = result.asset_materializations_for_node("anomalies")[0].metadata
    assert metadata["events"].value == 2
    assert "skipped" in metadata["baseline"].value
    assert metadata["heatmap"].value.startswith("![Anomalous hours per machine](data:image/png")
    scores = {r.data["fault kind"]: r.data for r in metadata["evaluation"].value.records}
    left_running = scores["left_running"]
    assert (left_running["labels"], left_running["found"], left_running["recall"]) == (1, 1, 1.0)
    assert left_running["median delay h"] == 0.0
    assert metadata["recall"].value == 1.0
