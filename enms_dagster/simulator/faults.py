"""Faults with ground truth, and efficiency measures of a known size.

``plan_faults`` is a pure function of (plant, window, seed, rate): it returns the labels that
the simulation then applies chunk by chunk, and that the caller writes to ``core.fault_labels``
so anomaly detectors can be scored against them (docs/simulator.md lists what each kind does
to the telemetry).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from enms_dagster.plant import Machine, Plant
from enms_dagster.simulator.calendar import local_clock, shift_bounds_s, stable_id
from enms_dagster.simulator.models import Conditions

UTC = dt.UTC

KINDS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "compressor": ("air_leak", "left_running", "stuck_sensor", "counter_reset"),
    "hvac": (
        "hvac_setpoint_drift",
        "hvac_heat_cool_conflict",
        "left_running",
        "stuck_sensor",
        "counter_reset",
    ),
    "conveyor_motor": ("bearing_wear", "left_running", "stuck_sensor", "counter_reset"),
    "hydraulic_pump": ("pump_cavitation", "left_running", "stuck_sensor", "counter_reset"),
    "injection_moulding": ("heater_left_on", "left_running", "stuck_sensor", "counter_reset"),
}
FAULT_KINDS = tuple(sorted({k for kinds in KINDS_BY_TYPE.values() for k in kinds}))

# (min, max) duration in hours and magnitude of the kinds that start at a random instant
_RANDOM_KINDS = {
    "air_leak": ((48, 240), (0.10, 0.25)),  # extra demand, share of capacity
    "hvac_setpoint_drift": ((72, 240), (2.0, 4.0)),  # K the heating setpoint drifts up to
    "hvac_heat_cool_conflict": ((24, 120), (0.3, 0.6)),  # share of heating load also cooled
    "bearing_wear": ((120, 480), (0.15, 0.35)),  # extra power reached at the end
    "pump_cavitation": ((6, 72), (0.10, 0.20)),  # extra power
    "stuck_sensor": ((1, 6), (0.0, 0.0)),
}


@dataclass(frozen=True)
class FaultLabel:
    """One injected fault: what happened to which machine, from ``start`` until ``end``."""

    machine_id: str
    kind: str
    start: dt.datetime
    end: dt.datetime
    magnitude: float = 0.0
    detail: str = ""


@dataclass(frozen=True)
class EfficiencyMeasure:
    """A permanent saving: the machine draws ``saving`` (e.g. 0.10) less power from ``start``."""

    machine_id: str
    start: dt.datetime
    saving: float
    description: str = ""


def plan_faults(
    plant: Plant, start: dt.datetime, end: dt.datetime, seed: int, rate: float
) -> list[FaultLabel]:
    """Faults for [start, end): on average ``rate`` per machine and week, kinds drawn from those
    that fit the machine type; the same arguments always give the same labels."""
    if rate <= 0:
        return []
    t0, t1 = int(start.timestamp()), int(end.timestamp())
    labels = []
    for machine in sorted(plant.machines.values(), key=lambda m: m.machine_id):
        kinds = KINDS_BY_TYPE.get(machine.machine_type)
        if not kinds:
            continue
        rng = np.random.default_rng([seed, stable_id(machine.machine_id), t0, t1, 17])
        for _ in range(int(rng.poisson(rate * (t1 - t0) / (7 * 86400)))):
            kind = str(rng.choice(kinds))
            label = _place(plant, machine, kind, t0, t1, rng)
            if label is not None:
                labels.append(label)
    return sorted(labels, key=lambda f: (f.start, f.machine_id, f.kind))


def _place(
    plant: Plant, machine: Machine, kind: str, t0: int, t1: int, rng: np.random.Generator
) -> FaultLabel | None:
    site = plant.sites[machine.site_id]
    at = int(rng.uniform(t0, t1))
    magnitude = 0.0
    if kind in _RANDOM_KINDS:
        (h_lo, h_hi), (m_lo, m_hi) = _RANDOM_KINDS[kind]
        begin, finish = at, at + int(rng.uniform(h_lo, h_hi) * 3600)
        magnitude = round(float(rng.uniform(m_lo, m_hi)), 3)
        if kind == "stuck_sensor":
            # frozen in production hours: a reading frozen at 0 kW on a machine that is off
            # anyway changes nothing, and a label nobody could see is no fault to find
            begin = _next_production_minute(site, at, t1)
            if begin is None:
                return None
            # a frozen value stays inside one simulated day
            finish = min(begin + (finish - at), (begin // 86400 + 1) * 86400)
    elif kind == "counter_reset":
        interval = plant.machine_types[machine.machine_type].sample_interval_s or 60
        begin = -(-at // interval) * interval
        finish = begin + interval
    else:  # left_running: one night; heater_left_on: a whole weekend
        begin, finish = _out_of_hours(site, at, t1, weekend=kind == "heater_left_on")
    begin, finish = max(begin, t0), min(finish, t1)
    if finish <= begin:
        return None
    return FaultLabel(
        machine.machine_id,
        kind,
        dt.datetime.fromtimestamp(begin, UTC),
        dt.datetime.fromtimestamp(finish, UTC),
        magnitude,
        _DETAILS[kind],
    )


def _next_production_minute(site, at: int, limit: int) -> int | None:
    """The first whole minute at or after ``at`` inside the shift of a working day."""
    grid = np.arange(at - at % 60 + 60, limit, 60, dtype=np.int64)
    if not len(grid):
        return None
    seconds, _, working = local_clock(site, grid)
    start_s, end_s = shift_bounds_s(site)
    if end_s > start_s:
        inside = working & (seconds >= start_s) & (seconds < end_s)
    else:  # a shift across midnight
        inside = working & ((seconds >= start_s) | (seconds < end_s))
    return int(grid[np.argmax(inside)]) if inside.any() else None


def _out_of_hours(site, at: int, limit: int, weekend: bool) -> tuple[int, int]:
    """From the end of the first shift after ``at`` (on a Friday when ``weekend``) to an hour
    before the next working day's shift; (0, 0) when none fits before ``limit``."""
    grid = np.arange(at - at % 60, limit + 4 * 86400, 60, dtype=np.int64)
    seconds, local_day, working = local_clock(site, grid)
    start_s, end_s = shift_bounds_s(site)
    weekday = (local_day + 3) % 7
    ends = working & (seconds == end_s) & ((weekday == 4) if weekend else True)
    if not ends.any():
        return 0, 0
    i = int(np.argmax(ends))
    after = working & (seconds == start_s) & (local_day > local_day[i])
    if not after[i:].any():
        return 0, 0
    j = i + int(np.argmax(after[i:]))
    # until an hour before the next shift, when heaters and HVAC would come on anyway
    return int(grid[i]), int(grid[j]) - 3600


_DETAILS = {
    "air_leak": "compressed-air leak: demand and base load rise while the air system is on",
    "hvac_setpoint_drift": "heating setpoint drifts upwards (ramp to magnitude K)",
    "hvac_heat_cool_conflict": "cooling runs against heating (magnitude = share of heat load)",
    "bearing_wear": "bearing wear: power creeps up (ramp to +magnitude)",
    "pump_cavitation": "cavitation: noisy pressure, noisy and higher power (+magnitude)",
    "heater_left_on": "barrel heaters left on over the weekend",
    "left_running": "machine left running out of hours",
    "stuck_sensor": "power sensor frozen at its last value (the energy counter keeps counting)",
    "counter_reset": "energy counter reset to zero",
}


def conditions_for(labels: Sequence[FaultLabel], ts: np.ndarray) -> Conditions:
    """The physical effects of one machine's faults on its sample grid (epoch seconds)."""
    cond = Conditions.healthy(len(ts))
    forced = cond.forced_on.copy()
    leak, drift, conflict, wear, cavitation = (np.zeros(len(ts)) for _ in range(5))
    for f in labels:
        s, e = f.start.timestamp(), f.end.timestamp()
        mask = (ts > s) & (ts <= e)
        if not mask.any():
            continue
        ramp = np.clip((ts - s) / (e - s), 0, 1) * f.magnitude
        if f.kind in ("left_running", "heater_left_on"):
            forced |= mask
        elif f.kind == "air_leak":
            leak[mask] += f.magnitude
        elif f.kind == "hvac_setpoint_drift":
            drift[mask] += ramp[mask]
        elif f.kind == "hvac_heat_cool_conflict":
            conflict[mask] += f.magnitude
        elif f.kind == "bearing_wear":
            wear[mask] += ramp[mask]
        elif f.kind == "pump_cavitation":
            cavitation[mask] += f.magnitude
    return Conditions(forced, leak, drift, conflict, wear, cavitation)


def saving_for(measures: Sequence[EfficiencyMeasure], ts: np.ndarray) -> np.ndarray:
    """The share of power saved at each sample (0 before a measure takes effect)."""
    saving = np.zeros(len(ts))
    for m in measures:
        saving[ts > m.start.timestamp()] += m.saving
    return saving


def apply_sensor_faults(
    labels: Sequence[FaultLabel], ts: np.ndarray, metrics: dict[str, np.ndarray]
) -> None:
    """Faults of the instruments rather than the machine: a frozen power reading, a counter that
    restarts from zero. The machine's true energy is unchanged."""
    for f in labels:
        s, e = f.start.timestamp(), f.end.timestamp()
        if f.kind == "stuck_sensor" and "power_kw" in metrics:
            mask = (ts > s) & (ts <= e)
            if mask.any():
                first = int(np.argmax(mask))
                power = metrics["power_kw"].copy()
                power[mask] = power[max(first - 1, 0)]
                metrics["power_kw"] = power
        elif f.kind == "counter_reset" and "energy_kwh_total" in metrics:
            after = ts >= s
            if after.any() and ts[0] <= s:
                i = int(np.argmax(after))
                counter = metrics["energy_kwh_total"].copy()
                step = counter[i] - (counter[i - 1] if i else counter[i])
                counter[i:] -= counter[i] - step
                metrics["energy_kwh_total"] = counter
