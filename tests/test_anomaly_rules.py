"""Anomaly detectors on hand-built data: each rule, the residual family and the forest on hourly
frames; the raw-reading detectors on readings planted in a real warehouse."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from enms_dagster.anomalies.contracts import (
    FLAG_COLUMNS,
    SIGNAL_NOISE_COLUMNS,
    Thresholds,
    severity_for,
)
from enms_dagster.anomalies.detectors import detect_anomalies_by_day, local_days
from enms_dagster.anomalies.multivariate import detect_multivariate_anomalies
from enms_dagster.anomalies.raw_signals import (
    RawSignals,
    detect_frozen_power,
    detect_meter_resets,
    detect_unsteady_pressure,
)
from enms_dagster.anomalies.residuals import detect_residual_drift, detect_residual_zscores
from enms_dagster.anomalies.rules import (
    detect_base_load_creep,
    detect_idle_power,
    detect_out_of_hours,
    detect_power_while_off,
    detect_rule_anomalies,
    detect_stuck_signal,
)
from enms_dagster.anomalies.store import (
    read_events,
    read_raw_signals,
    store_anomalies,
    update_signal_noise,
)
from enms_dagster.hourly.frame import HOURLY_COLUMNS
from enms_dagster.ingest.landing import land_batch
from enms_dagster.plant import MachineLabel

BERLIN = ZoneInfo("Europe/Berlin")
FIRST_DAY = dt.date(2026, 2, 2)  # a Monday; 35 days end before the change to summer time
SCORED_DAY = dt.date(2026, 3, 3)  # a Tuesday, after four weeks of reference


def local(day: dt.date, hour: int = 0) -> pd.Timestamp:
    """The UTC instant of a local Berlin wall-clock hour (24: the next midnight)."""
    day += dt.timedelta(days=hour // 24)
    return pd.Timestamp(dt.datetime.combine(day, dt.time(hour % 24), BERLIN)).tz_convert("UTC")


def machine_hours(
    machine_id: str = "CMP-01",
    machine_type: str = "compressor",
    *,
    days: int = 35,
    rated_kw: float = 75.0,
    shift_kwh: float = 50.0,
    idle_kw: float = 20.0,
    night_kwh: float = 0.0,
    seed: int = 1,
) -> pd.DataFrame:
    """Hourly energy of one machine on a 06:00-22:00 weekday shift: in shift it runs 0.75 h and
    idles 0.25 h per hour around ``shift_kwh``, with parts made on site; outside it draws
    ``night_kwh`` (off when 0, else idle), at weekends too."""
    rng = np.random.default_rng(seed)
    hours = pd.date_range(
        local(FIRST_DAY), local(FIRST_DAY + dt.timedelta(days=days)), freq="h", inclusive="left"
    )
    clock = hours.tz_convert(BERLIN)
    weekday = clock.day_of_week.to_numpy()
    hour = clock.hour.to_numpy()
    shift = (weekday < 5) & (hour >= 6) & (hour < 22)
    n = len(hours)
    noise = rng.normal(1.0, 0.03, n)
    energy = np.where(shift, shift_kwh * noise, night_kwh * noise)
    running = np.where(shift, 0.75, 0.0)
    idle = np.where(shift, 0.25, 1.0 if night_kwh > 0 else 0.0)
    idle_power = idle_kw * rng.normal(1.0, 0.02, n)
    return pd.DataFrame(
        {
            "machine_id": machine_id,
            "machine_type": machine_type,
            "rated_power_kw": rated_kw,
            "site_id": "plant-a",
            "hour_start": hours,
            "local_date": clock.date,
            "local_hour": hour,
            "iso_weekday": weekday + 1,
            "is_shift": shift,
            "is_holiday": False,
            "outdoor_temperature_c": 5 + 3 * np.sin(2 * np.pi * (hour - 9) / 24),
            "site_parts": np.where(shift, rng.normal(120, 10, n).round(), 0.0),
            "energy_kwh": energy,
            "avg_kw": energy,
            "max_kw": energy * 1.3,
            "peak_15min_kw": energy * 1.1,
            "power_kwh": energy,
            "running_h": running,
            "idle_h": idle,
            "off_h": 1.0 - running - idle,
            "idle_kwh": np.where(shift, idle * idle_power, energy),
            "parts": np.nan,
            "completeness": 1.0,
        }
    )


def hours_of(frame: pd.DataFrame, day: dt.date, first_hour: int, count: int) -> pd.Series:
    start = local(day, first_hour)
    return (frame["hour_start"] >= start) & (
        frame["hour_start"] < start + pd.Timedelta(hours=count)
    )


def flagged_local_hours(flags: pd.DataFrame, kind: str) -> list[str]:
    rows = flags[flags["kind"] == kind]
    return [f"{t.tz_convert(BERLIN):%a %H}" for t in rows["hour_start"]]


def test_the_builder_makes_every_hourly_column():
    frame = machine_hours()
    assert set(HOURLY_COLUMNS) <= set(frame.columns)
    assert len(frame) == 35 * 24


# --- out of hours -----------------------------------------------------------------------------


def test_a_compressor_left_running_overnight_is_out_of_hours_from_shift_end_to_morning():
    frame = machine_hours()
    night = hours_of(frame, SCORED_DAY, 22, 7)  # Tue 22:00 .. Wed 05:00
    frame.loc[night, ["energy_kwh", "avg_kw", "power_kwh", "idle_kwh"]] = 22.0
    frame.loc[night, ["idle_h", "off_h"]] = [1.0, 0.0]
    flags = detect_anomalies_by_day(
        frame, local(SCORED_DAY), local(SCORED_DAY + dt.timedelta(days=2)), "Europe/Berlin"
    )
    assert flagged_local_hours(flags, "out_of_hours") == [
        "Tue 22",
        "Tue 23",
        "Wed 00",
        "Wed 01",
        "Wed 02",
        "Wed 03",
        "Wed 04",
    ]
    ooh = flags[flags["kind"] == "out_of_hours"]
    assert set(ooh["method"]) == {"rule"}
    assert ooh["expected_kwh"].abs().max() < 0.01  # normally off then
    assert ooh["excess_kwh"].sum() == pytest.approx(7 * 22.0, abs=0.1)
    assert set(ooh["severity"]) == {"high"}  # 22 kWh against a 5 kWh margin


def test_a_planned_weekend_shift_with_production_is_not_out_of_hours():
    frame = machine_hours()
    saturday = dt.date(2026, 3, 7)
    shift = hours_of(frame, saturday, 6, 8)  # a planned Saturday morning shift
    frame.loc[shift, ["energy_kwh", "avg_kw", "power_kwh"]] = 50.0
    frame.loc[shift, ["max_kw", "peak_15min_kw"]] = [65.0, 55.0]
    frame.loc[shift, ["running_h", "idle_h", "off_h"]] = [0.75, 0.25, 0.0]
    frame.loc[shift, "site_parts"] = 110.0
    flags = detect_rule_anomalies(frame[frame["hour_start"] < local(saturday, 24)], local(saturday))
    assert flags.empty, flags[["kind", "hour_start"]]


def test_the_same_weekend_energy_without_production_is_out_of_hours():
    frame = machine_hours()
    saturday = dt.date(2026, 3, 7)
    shift = hours_of(frame, saturday, 6, 8)
    frame.loc[shift, ["energy_kwh", "avg_kw", "power_kwh", "idle_kwh"]] = 50.0
    frame.loc[shift, ["idle_h", "off_h"]] = [1.0, 0.0]
    flags = detect_out_of_hours(frame[frame["hour_start"] < local(saturday, 24)], local(saturday))
    assert len(flags) == 8
    assert flags["excess_kwh"].sum() == pytest.approx(400.0, abs=0.1)


def test_a_machine_that_normally_runs_at_night_is_judged_against_its_night_level():
    frame = machine_hours("HVAC-01", "hvac", night_kwh=10.0)  # setback heating every night
    night = hours_of(frame, SCORED_DAY, 0, 6)
    frame.loc[night, "energy_kwh"] = 10.4  # within its usual night level
    assert detect_out_of_hours(frame, local(SCORED_DAY)).empty
    frame.loc[night, "energy_kwh"] = 25.0  # occupied mode all night
    flags = detect_out_of_hours(
        frame[frame["hour_start"] < local(SCORED_DAY, 24)], local(SCORED_DAY)
    )
    assert len(flags) == 6
    assert flags["expected_kwh"].mean() == pytest.approx(10.0, abs=0.3)


def test_heating_up_before_the_shift_is_usual_on_working_days_only():
    frame = machine_hours("IMM-01", "injection_moulding", rated_kw=45, shift_kwh=30)
    working = frame["is_shift"].groupby(frame["local_date"]).transform("any")
    frame.loc[working & (frame["local_hour"] == 5), "energy_kwh"] = 18.0  # barrel heaters
    saturday = dt.date(2026, 3, 7)
    frame.loc[hours_of(frame, saturday, 5, 1), "energy_kwh"] = 18.0
    flags = detect_anomalies_by_day(
        frame, local(SCORED_DAY), local(saturday + dt.timedelta(days=1)), "Europe/Berlin"
    )
    assert flagged_local_hours(flags, "out_of_hours") == ["Sat 05"]


def test_out_of_hours_needs_a_reference_to_know_what_normal_is():
    frame = machine_hours(days=30)
    night = hours_of(frame, SCORED_DAY, 0, 5)
    frame.loc[night, "energy_kwh"] = 22.0
    assert len(detect_out_of_hours(frame, local(SCORED_DAY))) == 5
    assert detect_out_of_hours(
        frame[frame["hour_start"] >= local(SCORED_DAY)], local(SCORED_DAY)
    ).empty


# --- idle power -------------------------------------------------------------------------------


def test_idle_power_above_its_normal_level_is_flagged_with_the_extra_idle_energy():
    frame = machine_hours("HYD-01", "hydraulic_pump", rated_kw=30)
    day = hours_of(frame, SCORED_DAY, 6, 16)
    frame.loc[day, "idle_kwh"] = 0.25 * 28.0  # 28 kW while idle instead of 20
    flags = detect_idle_power(frame[frame["hour_start"] < local(SCORED_DAY, 24)], local(SCORED_DAY))
    assert len(flags) == 16
    assert flags["observed"].mean() == pytest.approx(28.0)
    assert flags["normal"].mean() == pytest.approx(20.0, abs=0.3)
    assert flags["excess_kwh"].sum() == pytest.approx(16 * 0.25 * 8.0, rel=0.05)


def test_idle_power_within_its_usual_spread_is_not_flagged():
    frame = machine_hours("HYD-01", "hydraulic_pump", rated_kw=30)
    frame.loc[hours_of(frame, SCORED_DAY, 6, 16), "idle_kwh"] = 0.25 * 21.0  # +5 %
    assert detect_idle_power(frame, local(SCORED_DAY)).empty


# --- base load --------------------------------------------------------------------------------


def test_a_base_load_that_crept_up_flags_every_hour_of_the_day():
    frame = machine_hours("HVAC-01", "hvac", night_kwh=5.0)
    day = frame["local_date"] == SCORED_DAY
    night = day & ~frame["is_shift"]
    frame.loc[night, "energy_kwh"] = 8.0  # base load 8 kW instead of 5
    flags = detect_base_load_creep(
        frame[frame["hour_start"] < local(SCORED_DAY, 24)], local(SCORED_DAY)
    )
    assert len(flags) == 24
    assert flags["observed"].iloc[0] == pytest.approx(8.0)
    assert flags["normal"].iloc[0] == pytest.approx(5.0, abs=0.25)  # 5th percentile
    assert flags["excess_kwh"].sum() == pytest.approx(24 * 3.0, abs=24 * 0.25)


def test_a_base_load_rise_every_machine_of_a_type_shares_that_day_is_weather_not_creep():
    frames = [machine_hours(f"HVAC-0{i}", "hvac", night_kwh=5.0, seed=i) for i in range(1, 5)]
    frame = pd.concat(frames, ignore_index=True)
    night = (frame["local_date"] == SCORED_DAY) & ~frame["is_shift"]
    frame.loc[night, "energy_kwh"] = 8.0  # a cold day: every air handler's base load rises
    frame.loc[night & (frame["machine_id"] == "HVAC-03"), "energy_kwh"] = 12.0  # one creeps
    flags = detect_base_load_creep(
        frame[frame["hour_start"] < local(SCORED_DAY, 24)], local(SCORED_DAY)
    )
    assert set(flags["machine_id"]) == {"HVAC-03"}
    assert len(flags) == 24


def test_a_base_load_within_its_usual_range_is_not_flagged():
    frame = machine_hours("HVAC-01", "hvac", night_kwh=5.0)
    frame.loc[(frame["local_date"] == SCORED_DAY) & ~frame["is_shift"], "energy_kwh"] = 5.4
    assert detect_base_load_creep(frame, local(SCORED_DAY)).empty


# --- power while off --------------------------------------------------------------------------


def test_energy_drawn_while_the_machine_reports_off_is_flagged():
    frame = machine_hours()
    night = hours_of(frame, SCORED_DAY, 1, 3)
    frame.loc[night, "energy_kwh"] = 6.0  # state still off: off_h = 1
    frame.loc[hours_of(frame, SCORED_DAY, 4, 1), "energy_kwh"] = 0.3  # standby noise: allowed
    flags = detect_power_while_off(
        frame[frame["hour_start"] < local(SCORED_DAY, 24)], local(SCORED_DAY)
    )
    assert flagged_local_hours(flags, "power_while_off") == ["Tue 01", "Tue 02", "Tue 03"]
    assert flags["expected_kwh"].max() == 0.0
    assert flags["actual_kwh"].sum() == pytest.approx(18.0)


# --- stuck signal -----------------------------------------------------------------------------


def test_a_flat_power_reading_on_a_machine_that_normally_varies_is_a_stuck_signal():
    frame = machine_hours()
    stuck = hours_of(frame, SCORED_DAY, 10, 3)
    frame.loc[stuck, ["avg_kw", "max_kw", "peak_15min_kw"]] = 41.2
    flags = detect_stuck_signal(
        frame[frame["hour_start"] < local(SCORED_DAY, 24)], local(SCORED_DAY)
    )
    assert flagged_local_hours(flags, "stuck_signal") == ["Tue 10", "Tue 11", "Tue 12"]
    assert flags["observed"].tolist() == [41.2, 41.2, 41.2]
    assert flags["excess_kwh"].abs().max() == 0  # the meter is at fault, not the machine


def test_integrated_power_disagreeing_with_the_energy_counter_is_a_stuck_signal():
    frame = machine_hours()
    hour = hours_of(frame, SCORED_DAY, 14, 1)
    frame.loc[hour, "power_kwh"] = frame.loc[hour, "energy_kwh"] * 1.5
    gap = hours_of(frame, SCORED_DAY, 16, 1)  # an outage: the counter step spread, power missing
    frame.loc[gap, "power_kwh"] = 0.0
    frame.loc[gap, "completeness"] = 0.4
    flags = detect_stuck_signal(
        frame[frame["hour_start"] < local(SCORED_DAY, 24)], local(SCORED_DAY)
    )
    assert flagged_local_hours(flags, "stuck_signal") == ["Tue 14"]


def test_a_machine_that_is_always_flat_is_not_stuck():
    frame = machine_hours("MTR-01", "meter")
    frame["max_kw"] = frame["peak_15min_kw"] = frame["avg_kw"]  # a meter with one value per hour
    assert detect_stuck_signal(frame, local(SCORED_DAY)).empty


# --- residuals against the baseline -----------------------------------------------------------


def residual_frame(seed: int = 3) -> pd.DataFrame:
    """Actual kWh and a hand-made baseline expectation: the actual without a fault, with noise
    of about 1 kWh per hour."""
    frame = machine_hours(seed=seed)
    rng = np.random.default_rng(seed + 100)
    return pd.DataFrame(
        {
            "machine_id": frame["machine_id"],
            "hour_start": frame["hour_start"],
            "local_date": frame["local_date"],
            "actual_kwh": frame["energy_kwh"],
            "expected_kwh": frame["energy_kwh"] + rng.normal(0, 1.0, len(frame)),
        }
    )


def test_hours_far_above_the_baseline_get_a_robust_z_score_flag():
    res = residual_frame()
    fault = hours_of(res, SCORED_DAY, 9, 5)
    res.loc[fault, "actual_kwh"] += 15.0
    flags = detect_residual_zscores(
        res[res["hour_start"] < local(SCORED_DAY, 24)], local(SCORED_DAY)
    )
    assert flagged_local_hours(flags, "above_baseline") == [
        "Tue 09",
        "Tue 10",
        "Tue 11",
        "Tue 12",
        "Tue 13",
    ]
    assert set(flags["method"]) == {"residual_zscore"}
    assert (flags["score"] > 8).all()
    assert flags["excess_kwh"].sum() == pytest.approx(
        (res.loc[fault, "actual_kwh"] - res.loc[fault, "expected_kwh"]).sum()
    )


def test_less_energy_than_the_baseline_is_not_an_anomaly():
    res = residual_frame()
    res.loc[hours_of(res, SCORED_DAY, 9, 5), "actual_kwh"] -= 15.0
    assert detect_residual_zscores(res, local(SCORED_DAY)).empty


def air_handlers(count: int = 4) -> pd.DataFrame:
    """The residual frames of ``count`` machines of one type (independent noise)."""
    return pd.concat(
        [
            residual_frame(seed=3 + i).assign(machine_id=f"HVAC-0{i + 1}", machine_type="hvac")
            for i in range(count)
        ],
        ignore_index=True,
    )


def test_an_excess_every_machine_of_a_type_shares_is_not_a_fault_of_any():
    res = air_handlers()
    night = hours_of(res, SCORED_DAY, 1, 5)  # a night colder than the baseline knows: all four
    res.loc[night, "actual_kwh"] += 15.0
    res.loc[night & (res["machine_id"] == "HVAC-02"), "actual_kwh"] += 20.0  # and one more
    flags = detect_residual_zscores(res, local(SCORED_DAY))
    assert set(flags["machine_id"]) == {"HVAC-02"}
    assert flagged_local_hours(flags, "above_baseline") == [f"Tue 0{h}" for h in range(1, 6)]
    # fewer than three peers: each machine is judged on its own
    two = res[res["machine_id"].isin(["HVAC-01", "HVAC-03"])]
    assert set(detect_residual_zscores(two, local(SCORED_DAY))["machine_id"]) == {
        "HVAC-01",
        "HVAC-03",
    }


def test_hours_where_the_baseline_extrapolates_are_not_judged_by_residuals():
    res = residual_frame().assign(extrapolated=False)
    fault = hours_of(res, SCORED_DAY, 9, 5)
    res.loc[fault, "actual_kwh"] += 15.0
    res.loc[fault & (res["hour_start"] >= local(SCORED_DAY, 12)), "extrapolated"] = True
    flags = detect_residual_zscores(res, local(SCORED_DAY))
    assert flagged_local_hours(flags, "above_baseline") == ["Tue 09", "Tue 10", "Tue 11"]


def test_a_slow_drift_too_small_for_the_z_score_is_caught_by_the_cusum():
    res = residual_frame()
    drift_from = dt.date(2026, 3, 2)
    drifting = res["local_date"] >= drift_from
    res.loc[drifting, "actual_kwh"] += 1.5  # 1.5 kWh every hour: 3 % in shift
    assert detect_residual_zscores(res, local(drift_from)).empty
    flags = detect_residual_drift(res, local(drift_from))
    days = sorted(set(flags["hour_start"].dt.tz_convert(BERLIN).dt.date))
    assert days[0] == dt.date(2026, 3, 4)  # the third day of the drift
    assert days[-1] == dt.date(2026, 3, 8)
    assert set(flags["method"]) == {"residual_cusum"}
    assert len(flags) == 24 * len(days)


def test_a_drift_every_machine_of_a_type_shares_is_not_a_fault_of_any():
    res = air_handlers()
    drift_from = dt.date(2026, 3, 2)
    drifting = res["local_date"] >= drift_from
    res.loc[drifting, "actual_kwh"] += 1.5  # a colder week than the baseline knows: all four
    assert detect_residual_drift(res, local(drift_from)).empty
    res.loc[drifting & (res["machine_id"] == "HVAC-04"), "actual_kwh"] += 1.5  # and one more
    assert set(detect_residual_drift(res, local(drift_from))["machine_id"]) == {"HVAC-04"}


# --- multivariate outliers --------------------------------------------------------------------


def conveyors() -> pd.DataFrame:
    return pd.concat(
        [
            machine_hours(
                "CNV-01", "conveyor_motor", rated_kw=11, shift_kwh=7, idle_kw=2.8, seed=5
            ),
            machine_hours(
                "CNV-02", "conveyor_motor", rated_kw=22, shift_kwh=14, idle_kw=5.5, seed=6
            ),
        ],
        ignore_index=True,
    )


def test_the_isolation_forest_flags_load_that_does_not_fit_the_time_of_week():
    frame = conveyors()
    odd = (frame["machine_id"] == "CNV-02") & hours_of(frame, SCORED_DAY, 3, 1)
    frame.loc[odd, ["energy_kwh", "avg_kw", "power_kwh"]] = 14.0  # full load at 03:00 ...
    frame.loc[odd, ["max_kw", "peak_15min_kw"]] = [18.0, 15.0]
    frame.loc[odd, ["running_h", "off_h"]] = [1.0, 0.0]  # ... running, but nothing made
    scored = frame[frame["hour_start"] < local(SCORED_DAY, 24)]
    flags = detect_multivariate_anomalies(scored, local(SCORED_DAY))
    hit = flags[(flags["machine_id"] == "CNV-02") & (flags["hour_start"] == local(SCORED_DAY, 3))]
    assert len(hit) == 1
    assert hit["method"].iloc[0] == "isolation_forest"
    assert hit["score"].iloc[0] == flags["score"].max()
    assert hit["expected_kwh"].iloc[0] == pytest.approx(0.0)  # nothing at 03:00 on a Tuesday
    pd.testing.assert_frame_equal(flags, detect_multivariate_anomalies(scored, local(SCORED_DAY)))


def test_the_isolation_forest_needs_a_week_of_training_hours():
    frame = conveyors()
    recent = frame[frame["hour_start"] >= local(SCORED_DAY - dt.timedelta(days=2))]
    assert detect_multivariate_anomalies(recent, local(SCORED_DAY), Thresholds()).empty


# --- shared ---------------------------------------------------------------------------------


def test_flags_carry_every_column_and_only_scored_hours():
    frame = machine_hours()
    frame.loc[hours_of(frame, SCORED_DAY, 23, 3), "energy_kwh"] = 22.0
    flags = detect_anomalies_by_day(
        frame, local(SCORED_DAY), local(SCORED_DAY, 24), "Europe/Berlin"
    )
    assert list(flags.columns) == list(FLAG_COLUMNS)
    assert flags["hour_start"].min() >= local(SCORED_DAY)
    assert flags["hour_start"].max() < local(SCORED_DAY, 24)


def test_severity_grows_with_the_distance_past_the_threshold():
    assert severity_for([1.0, 1.9, 2.0, 3.9, 4.0, 40.0]).tolist() == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]


def test_local_days_have_23_hours_on_the_spring_change():
    spring = dt.date(2026, 3, 29)
    days = list(local_days(local(spring), local(spring + dt.timedelta(days=1)), "Europe/Berlin"))
    assert [(b - a) / pd.Timedelta(hours=1) for a, b in days] == [23.0]


def test_a_normal_week_raises_nothing():
    frame = pd.concat(
        [conveyors(), machine_hours(), machine_hours("HVAC-01", "hvac", night_kwh=5.0, seed=9)],
        ignore_index=True,
    )
    monday = dt.date(2026, 3, 2)
    flags = detect_anomalies_by_day(
        frame, local(monday), local(monday + dt.timedelta(days=7)), "Europe/Berlin"
    )
    assert flags.empty, flags[["machine_id", "hour_start", "kind"]]


# --- raw readings: meter resets ---------------------------------------------------------------

RAW_DAY = dt.date(2026, 3, 10)  # a Tuesday
NO_HOURS = machine_hours().iloc[:0]  # the raw detectors need no hourly energy to flag


def counter(machine: str, first: pd.Timestamp, values, step_s: int = 60) -> list[tuple]:
    """energy_kwh_total readings from ``first``, one every ``step_s`` seconds."""
    return [
        (machine, "energy_kwh_total", (first + pd.Timedelta(seconds=step_s * i)).to_pydatetime(), v)
        for i, v in enumerate(values)
    ]


def raw_signals(conn, day: dt.date = RAW_DAY) -> RawSignals:
    return read_raw_signals(conn, local(day), local(day), local(day, 24))


@pytest.fixture
def raw_tables(warehouse):
    """The warehouse, with the tables the raw-reading detectors and events write emptied."""
    warehouse.execute(
        "TRUNCATE core.counter_resets, core.hourly_signal_noise, marts.anomalies, "
        "marts.anomaly_events"
    )
    return warehouse


def meter_readings() -> list[tuple]:
    rising = [5000.0 + 0.5 * i for i in range(90)]
    return (
        # CMP-01: reset at 11:30, then counting on from zero
        counter("CMP-01", local(RAW_DAY, 10), rising + [0.5 + 0.5 * i for i in range(30)])
        # HVAC-01: reset at 11:00, recorded (the meter was replaced)
        + counter("HVAC-01", local(RAW_DAY, 10), rising[:60] + [0.2 * i for i in range(30)])
        # MTR-01: a rollover of a five-digit register is not a reset
        + counter("MTR-01", local(RAW_DAY, 10), [99_998.0, 99_999.0, 99_999.8, 0.6, 1.4], 900)
        # CNV-01: the first reading of the day is lower than the last of the day before
        + counter("CNV-01", local(RAW_DAY, 0) - pd.Timedelta(minutes=2), [812.0, 812.2, 0.1, 0.3])
    )


@pytest.mark.integration
def test_an_energy_counter_stepping_back_is_a_meter_reset_unless_recorded_or_rolled_over(
    raw_tables,
):
    land_batch(raw_tables, meter_readings(), source="test", messages=1)
    recorded = local(RAW_DAY, 11) - pd.Timedelta(seconds=20)  # between two readings
    raw_tables.execute(
        "INSERT INTO core.counter_resets (machine_id, metric, ts, note) "
        "VALUES ('HVAC-01', 'energy_kwh_total', %s, 'meter replaced')",
        (recorded.to_pydatetime(),),
    )
    flags = detect_meter_resets(raw_signals(raw_tables).counter_steps, NO_HOURS, local(RAW_DAY))
    assert [
        (f.machine_id, f"{f.hour_start.tz_convert(BERLIN):%H}") for f in flags.itertuples()
    ] == [
        ("CMP-01", "11"),
        ("CNV-01", "00"),
    ]
    cmp = flags.iloc[0]
    assert (cmp["kind"], cmp["method"], cmp["severity"]) == ("meter_reset", "rule", "medium")
    assert (cmp["normal"], cmp["observed"]) == (5044.5, 0.5)  # the step, in kWh
    assert flags["excess_kwh"].fillna(0).eq(0).all()  # no energy was lost


@pytest.mark.integration
def test_a_meter_reset_event_tells_the_technician_what_happened_and_what_to_do(raw_tables):
    land_batch(raw_tables, meter_readings(), source="test", messages=1)
    start, end = local(RAW_DAY), local(RAW_DAY, 24)
    flags = detect_meter_resets(raw_signals(raw_tables).counter_steps, NO_HOURS, start)
    labels = {"CMP-01": MachineLabel("Compressor 1", "plant-a", "Europe/Berlin")}
    stored = store_anomalies(raw_tables, start, end, flags, labels)
    assert "CMP-01.meter_reset.20260310T1000Z" in stored.created
    events = read_events(raw_tables, start, end).set_index("machine_id")
    assert events.loc["CMP-01", "sentence"] == (
        "The energy counter of Compressor 1 (CMP-01) dropped from 5,044 kWh to 0.5 kWh on "
        "Tue 10 Mar between 11:00 and 12:00 and no reset was recorded: if the meter was replaced "
        "or its controller restarted, record the reset so the data checks expect it."
    )
    again = store_anomalies(raw_tables, start, end, flags, labels)
    assert (again.created, again.updated, again.deleted) == ([], [], [])


# --- raw readings: a frozen power reading -----------------------------------------------------


def power_day(
    step_s: int, on_kw: float, *, seed: int = 1, idle_before_shift: float = 0.0
) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """A day of power and state readings: running with noisy power in the 06:00-22:00 shift,
    off at exactly 0 kW outside it (idling at a constant ``idle_before_shift`` kW in the hour
    before the shift, when given)."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range(local(RAW_DAY), local(RAW_DAY, 24), freq=f"{step_s}s", inclusive="right")
    hour = stamps.tz_convert(BERLIN).hour
    shift = (hour >= 6) & (hour < 22)
    power = np.where(shift, np.round(on_kw * rng.normal(1.0, 0.03, len(stamps)), 4), 0.0)
    state = np.where(shift, 2.0, 0.0)
    if idle_before_shift:
        before = hour == 5
        power, state = np.where(before, idle_before_shift, power), np.where(before, 1.0, state)
    return stamps, power, state


def power_readings(machine: str, stamps, power, state) -> list[tuple]:
    rows = []
    for ts, kw, code in zip(stamps, power, state, strict=True):
        rows += [(machine, "power_kw", ts.to_pydatetime(), float(kw))]
        rows += [(machine, "state", ts.to_pydatetime(), float(code))]
    return rows


@pytest.mark.integration
def test_a_power_reading_frozen_while_the_machine_runs_is_a_stuck_signal(raw_tables):
    stamps, power, state = power_day(30, 20.0)
    clock = stamps.tz_convert(BERLIN)
    frozen = (clock >= local(RAW_DAY, 10)) & (
        clock <= local(RAW_DAY, 10) + pd.Timedelta(minutes=40)
    )
    power[frozen] = power[np.argmax(frozen)]  # stuck at its 10:00 reading until 10:40
    brief = (clock > local(RAW_DAY, 14)) & (clock <= local(RAW_DAY, 14) + pd.Timedelta(minutes=8))
    power[brief] = 19.5  # eight minutes: too short to call it stuck
    land_batch(raw_tables, power_readings("HYD-01", stamps, power, state), source="t", messages=1)
    flags = detect_frozen_power(raw_signals(raw_tables).frozen_runs, NO_HOURS, local(RAW_DAY))
    assert flagged_local_hours(flags, "stuck_signal") == ["Tue 10"]
    assert flags["observed"].iloc[0] == power[np.argmax(frozen)]
    assert flags["severity"].iloc[0] == "medium"  # 40 minutes: a data fault, never high


@pytest.mark.integration
def test_zero_power_while_the_machine_reports_running_is_a_stuck_signal(raw_tables):
    stamps, power, state = power_day(10, 6.0)
    clock = stamps.tz_convert(BERLIN)
    starting = (clock > local(RAW_DAY, 6)) & (clock <= local(RAW_DAY, 6) + pd.Timedelta(minutes=30))
    power[starting] = 0.0  # the sensor reads nothing for the first half hour of the shift
    land_batch(raw_tables, power_readings("CNV-01", stamps, power, state), source="t", messages=1)
    flags = detect_frozen_power(raw_signals(raw_tables).frozen_runs, NO_HOURS, local(RAW_DAY))
    assert flagged_local_hours(flags, "stuck_signal") == ["Tue 06"]
    assert flags["observed"].iloc[0] == 0.0


@pytest.mark.integration
def test_a_machine_off_at_0_kw_or_idling_at_a_constant_standby_load_is_not_stuck(raw_tables):
    # off at exactly 0 kW for eight hours at night, then heaters at a constant 6.75 kW for the
    # hour before the shift: both are what the machine really draws
    stamps, power, state = power_day(30, 30.0, idle_before_shift=6.75)
    land_batch(raw_tables, power_readings("IMM-01", stamps, power, state), source="t", messages=1)
    runs = raw_signals(raw_tables).frozen_runs
    assert runs["power_kw"].tolist() == [6.75]  # the standby run is read, the night is quiet
    assert detect_frozen_power(runs, NO_HOURS, local(RAW_DAY)).empty


def test_a_frozen_run_and_a_flat_hour_flag_the_hour_once():
    frame = machine_hours()
    frame.loc[hours_of(frame, SCORED_DAY, 10, 1), ["avg_kw", "max_kw", "peak_15min_kw"]] = 41.2
    runs = pd.DataFrame(
        {
            "machine_id": ["CMP-01"],
            "power_kw": [41.2],
            "first_ts": [local(SCORED_DAY, 10)],
            "last_ts": [local(SCORED_DAY, 11) + pd.Timedelta(minutes=30)],
            "samples": [5400.0],
            "running_samples": [5400.0],
            "idle_samples": [0.0],
            "off_samples": [0.0],
        }
    )
    raw = RawSignals.empty()
    raw = RawSignals(raw.counter_steps, runs, raw.signal_noise)
    flags = detect_anomalies_by_day(
        frame, local(SCORED_DAY), local(SCORED_DAY, 24), "Europe/Berlin", raw=raw
    )
    assert flagged_local_hours(flags, "stuck_signal") == ["Tue 10", "Tue 11"]
    assert flags.loc[flags["kind"] == "stuck_signal", "score"].tolist() == [6.0, 6.0]  # 90 min


# --- raw readings: unsteady pressure ----------------------------------------------------------


@pytest.mark.integration
def test_hourly_noise_is_the_upper_quartile_step_and_ignores_a_level_change(raw_tables):
    start = local(RAW_DAY, 10)
    steady = [180.0 + (3.0 if i % 2 else 0.0) for i in range(120)]  # steps of 3 bar
    # a changeover: 160 bar, then 180 bar, each with steps of 1 bar
    changeover = [(160.0 if i < 60 else 180.0) + (i % 2) for i in range(120)]
    rows = [
        ("HYD-01", "pressure_bar", (start + pd.Timedelta(seconds=30 * (i + 1))).to_pydatetime(), v)
        for i, v in enumerate(steady + changeover)
    ]
    land_batch(raw_tables, rows, source="test", messages=1)
    for machine in ("HYD-01", "CNV-01"):
        for h in (0, 1):
            raw_tables.execute(
                "INSERT INTO core.hourly_energy (machine_id, hour_start, local_date, energy_kwh, "
                "energy_method, samples) VALUES (%s, %s, %s, 1.0, 'power', 120)",
                (machine, (start + pd.Timedelta(hours=h)).to_pydatetime(), RAW_DAY),
            )
    assert update_signal_noise(raw_tables, start, start + pd.Timedelta(hours=2)) == 4
    noise = raw_signals(raw_tables).signal_noise.set_index(["machine_id", "hour_start"])
    hyd, cnv = noise.loc["HYD-01"], noise.loc["CNV-01"]
    assert hyd["samples"].tolist() == [120, 120]
    assert hyd["noise"].tolist() == [3.0, 1.0]
    assert cnv["samples"].tolist() == [0, 0]  # computed: the conveyor has no pressure
    assert cnv["noise"].isna().all()


def pressure_noise(frame: pd.DataFrame) -> pd.DataFrame:
    """Hourly pressure noise of a pump: steps of about 3 bar at 180 bar while it runs, none
    while it is off."""
    rng = np.random.default_rng(4)
    on = frame["running_h"] > 0
    return pd.DataFrame(
        {
            "machine_id": frame["machine_id"],
            "metric": "pressure_bar",
            "hour_start": frame["hour_start"],
            "samples": 120.0,
            "mean_value": np.where(on, 180.0, 0.0),
            "noise": np.where(on, rng.normal(3.0, 0.2, len(frame)), 0.0),
        }
    )[list(SIGNAL_NOISE_COLUMNS)]


def test_pressure_steps_far_larger_than_usual_are_unsteady_pressure():
    frame = machine_hours("HYD-01", "hydraulic_pump", rated_kw=30, shift_kwh=20)
    noise = pressure_noise(frame)
    noise.loc[hours_of(noise, SCORED_DAY, 9, 5), "noise"] = 12.0  # cavitation in the shift
    noise.loc[hours_of(noise, SCORED_DAY, 15, 1), "noise"] = 4.5  # 1.5 times usual: tolerated
    cavitating_off = hours_of(noise, SCORED_DAY, 2, 2)  # off, yet the pressure reads 5 bar steps
    noise.loc[cavitating_off, ["noise", "mean_value"]] = [5.0, 4.0]
    cut = frame["hour_start"] < local(SCORED_DAY, 24)
    flags = detect_unsteady_pressure(noise[cut], frame[cut], local(SCORED_DAY))
    assert flagged_local_hours(flags, "unsteady_pressure") == [
        "Tue 02",
        "Tue 03",
        "Tue 09",
        "Tue 10",
        "Tue 11",
        "Tue 12",
        "Tue 13",
    ]
    shift = flags[flags["hour_start"] >= local(SCORED_DAY, 9)]
    assert shift["normal"].iloc[0] == pytest.approx(3.0, abs=0.1)
    assert set(shift["severity"]) == {"medium"}  # 12 bar against a limit of about 6
    assert flags["excess_kwh"].abs().max() == 0


def test_pressure_in_a_state_the_reference_rarely_saw_is_not_judged():
    frame = machine_hours("CMP-01", "compressor")
    noise = pressure_noise(frame)
    odd = hours_of(frame, SCORED_DAY, 16, 1)
    frame.loc[odd, ["running_h", "idle_h"]] = [0.3, 0.7]  # mostly idle in the shift: never before
    noise.loc[odd, "noise"] = 9.0  # a compressor cycling load/unload moves its pressure more
    cut = frame["hour_start"] < local(SCORED_DAY, 24)
    assert detect_unsteady_pressure(noise[cut], frame[cut], local(SCORED_DAY)).empty
