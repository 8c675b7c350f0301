"""Machine behaviour: each model turns a time grid and its drivers into power, state and process
variables. Every published ``power_kw`` is the average power over the interval that ends at the
sample, so a counter that adds ``power_kw * interval`` agrees with the integral of power exactly.

This is the thin first cut (issue 3 deepens the physics); the drivers already explain energy:
air demand for compressors, outdoor temperature for HVAC, throughput for conveyors and pumps,
cycles for moulding machines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OFF, IDLE, RUNNING = 0, 1, 2


@dataclass(frozen=True)
class Drivers:
    """Per-sample drivers shared by the site: production flag and outdoor temperature."""

    producing: np.ndarray  # bool
    outdoor_temperature_c: np.ndarray  # float
    seconds_of_day: np.ndarray  # local seconds since midnight


@dataclass
class Trace:
    """What a machine did on a time grid: state, power and its own process variables."""

    state: np.ndarray
    power_kw: np.ndarray
    extras: dict[str, np.ndarray]


def outdoor_temperature(
    day_of_year: np.ndarray, seconds_of_day: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Seasonal and daily cycle (Central Europe) with slow weather noise."""
    seasonal = 10.0 - 9.0 * np.cos(2 * np.pi * (day_of_year - 15) / 365.25)
    daily = 4.0 * np.sin(2 * np.pi * (seconds_of_day / 86400.0 - 0.375))
    n = len(seconds_of_day)
    walk = np.cumsum(rng.normal(0.0, 0.02, n)) if n else np.zeros(0)
    return seasonal + daily + walk - walk.mean() if n else seasonal


def compressor(rated_kw: float, dt_s: float, drv: Drivers, rng: np.random.Generator) -> Trace:
    """Load/unload cycling inside a 6.5–7.5 bar band; unloaded power ~30 % of loaded."""
    n = len(drv.producing)
    capacity = rated_kw / 6.5  # m3/min delivered when loaded (about 6.5 kW per m3/min)
    demand = np.where(drv.producing, 0.65 * capacity, 0.12 * capacity)
    demand = np.clip(demand * (1 + rng.normal(0, 0.08, n)), 0, None)
    powered = drv.producing  # plant air is shut off outside production
    pressure = np.empty(n)
    loaded = np.zeros(n, dtype=bool)
    p, is_loaded = 7.0, False
    receiver = 2.0  # m3 of receiver volume; bar change = net flow / volume (simplified)
    for i in range(n):
        if not powered[i]:
            is_loaded = False
            p = max(p - demand[i] * dt_s / 60 / receiver * 0.2, 0.0)
        else:
            if p <= 6.5:
                is_loaded = True
            elif p >= 7.5:
                is_loaded = False
            inflow = capacity if is_loaded else 0.0
            p = p + (inflow - demand[i]) * dt_s / 60 / receiver * 0.5
        pressure[i] = p
        loaded[i] = is_loaded
    power = np.where(loaded, 0.95 * rated_kw, 0.30 * rated_kw)
    power = np.where(powered, power * (1 + rng.normal(0, 0.01, n)), 0.0)
    state = np.where(~powered, OFF, np.where(loaded, RUNNING, IDLE))
    air = np.where(powered, demand, 0.0)
    return Trace(state, power, {"pressure_bar": pressure, "air_demand_m3_min": air})


def hvac(rated_kw: float, dt_s: float, drv: Drivers, rng: np.random.Generator) -> Trace:
    """Heat pump: heating below and cooling above the setpoint; setback when unoccupied."""
    n = len(drv.producing)
    t_out = drv.outdoor_temperature_c
    occupied = drv.producing
    heat_sp = np.where(occupied, 20.0, 16.0)
    cool_sp = np.where(occupied, 24.0, 28.0)
    ua_kw_per_k = rated_kw * 3.0 / 30.0  # sized for 30 K of heating at COP 3
    heating = np.clip(heat_sp - t_out, 0, None) * ua_kw_per_k / 3.0
    cooling = np.clip(t_out - cool_sp, 0, None) * ua_kw_per_k / 3.5
    fans = np.where(occupied, 0.08 * rated_kw, 0.02 * rated_kw)
    power = np.clip((heating + cooling + fans) * (1 + rng.normal(0, 0.02, n)), 0, rated_kw)
    state = np.where(heating + cooling > 0.05 * rated_kw, RUNNING, IDLE)
    supply = np.where(heating > 0, 32.0, np.where(cooling > 0, 14.0, 20.0)) + rng.normal(0, 0.3, n)
    return Trace(state, power, {"supply_temperature_c": supply})


def conveyor_motor(rated_kw: float, dt_s: float, drv: Drivers, rng: np.random.Generator) -> Trace:
    """Power rises with throughput; idle running while the line waits."""
    n = len(drv.producing)
    # The line waits in stretches: a slow random process decides when parts flow.
    waiting = _markov_flags(n, p_start=dt_s / 1800, p_end=dt_s / 300, rng=rng)
    flowing = drv.producing & ~waiting
    throughput = np.where(flowing, 1200 * (1 + rng.normal(0, 0.05, n)), 0.0)
    idle_kw = 0.25 * rated_kw
    power = np.where(
        drv.producing,
        idle_kw + (0.65 * rated_kw) * throughput / 1200 * (1 + rng.normal(0, 0.02, n)),
        0.0,
    )
    state = np.where(~drv.producing, OFF, np.where(flowing, RUNNING, IDLE))
    return Trace(state, np.clip(power, 0, rated_kw), {"throughput_parts_h": throughput})


def hydraulic_pump(rated_kw: float, dt_s: float, drv: Drivers, rng: np.random.Generator) -> Trace:
    """Hydraulic power p·Q/600 kW divided by the pump's efficiency, plus standby losses."""
    n = len(drv.producing)
    demand = np.where(drv.producing, 0.7 + 0.3 * rng.random(n), 0.0)
    pressure = np.where(drv.producing, 180 + rng.normal(0, 5, n), 0.0)
    flow = demand * rated_kw * 600 * 0.8 / 210.0  # l/min so that full demand ≈ rated power
    power = np.where(drv.producing, pressure * flow / 600.0 / 0.8 + 0.05 * rated_kw, 0.0)
    state = np.where(drv.producing, RUNNING, OFF)
    return Trace(state, np.clip(power, 0, rated_kw), {"pressure_bar": pressure, "flow_l_min": flow})


def injection_moulding(
    rated_kw: float, dt_s: float, drv: Drivers, rng: np.random.Generator
) -> Trace:
    """Cycles of heat, inject, hold and cool; the barrel heaters keep a standby load when idle."""
    n = len(drv.producing)
    heated = drv.producing
    stopped = _markov_flags(n, p_start=dt_s / 3600, p_end=dt_s / 600, rng=rng)
    cycling = heated & ~stopped
    cycle_s = 30.0
    parts = np.where(cycling, dt_s / cycle_s, 0.0)
    standby_kw = 0.18 * rated_kw
    power = np.where(cycling, 0.55 * rated_kw * (1 + rng.normal(0, 0.06, n)), 0.0)
    power = np.where(heated, power + standby_kw, 0.0)
    state = np.where(~heated, OFF, np.where(cycling, RUNNING, IDLE))
    return Trace(state, np.clip(power, 0, rated_kw), {"parts_total": np.cumsum(parts)})


def _markov_flags(n: int, p_start: float, p_end: float, rng: np.random.Generator) -> np.ndarray:
    flags = np.zeros(n, dtype=bool)
    draws = rng.random(n)
    on = False
    for i in range(n):
        on = (draws[i] >= p_end) if on else (draws[i] < p_start)
        flags[i] = on
    return flags


MODELS = {
    "compressor": compressor,
    "hvac": hvac,
    "conveyor_motor": conveyor_motor,
    "hydraulic_pump": hydraulic_pump,
    "injection_moulding": injection_moulding,
}
