"""Machine behaviour: each model turns a time grid, its drivers and any fault conditions into
power, state and process variables. Every published ``power_kw`` is the average power over the
interval that ends at the sample, so a counter that adds ``power_kw * interval`` agrees with the
integral of power exactly.

The drivers explain the energy, as an energy manager would model it (docs/simulator.md):
air demand for compressors, degree-hours and occupancy for HVAC, throughput for conveyors,
hydraulic work for pumps and parts (cycles) for moulding machines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OFF, IDLE, RUNNING = 0, 1, 2


@dataclass(frozen=True)
class Drivers:
    """Per-sample inputs a machine sees from its site and its production line."""

    producing: np.ndarray  # bool: shift hours on a working day
    outdoor_temperature_c: np.ndarray  # float
    seconds_of_day: np.ndarray  # local seconds since midnight
    line_active: np.ndarray | None = None  # bool: the machine's line is making parts
    product_rate: np.ndarray | None = None  # relative speed of the product running (~0.75–1.25)
    occupied: np.ndarray | None = None  # bool: HVAC occupancy schedule (shift + pre-conditioning)
    preheat: np.ndarray | None = None  # bool: barrel heat-up before the shift starts
    air_use: np.ndarray | None = None  # 0..1: share of the plant's lines drawing compressed air
    demand_wave: np.ndarray | None = None  # ~1 ± 0.2: slow variation of the plant's air use

    def line(self) -> np.ndarray:
        return self.producing if self.line_active is None else self.line_active

    def rate(self) -> np.ndarray:
        return np.ones(len(self.producing)) if self.product_rate is None else self.product_rate


@dataclass(frozen=True)
class Conditions:
    """Fault and efficiency effects on a time grid (all zeros/False: a healthy machine)."""

    forced_on: np.ndarray  # bool: left running (or heaters left on) out of hours
    air_leak: np.ndarray  # extra air demand as a share of compressor capacity
    setpoint_offset_k: np.ndarray  # HVAC heating setpoint drift, K
    heat_cool_conflict: np.ndarray  # share of the heating load the cooling coil also removes
    wear: np.ndarray  # relative extra power from bearing wear
    cavitation: np.ndarray  # relative extra power from pump cavitation (noise scales with it)

    @staticmethod
    def healthy(n: int) -> Conditions:
        zeros = np.zeros(n)
        return Conditions(np.zeros(n, dtype=bool), zeros, zeros, zeros, zeros, zeros)


@dataclass
class Trace:
    """What a machine did on a time grid: state, power and its own process variables."""

    state: np.ndarray
    power_kw: np.ndarray
    extras: dict[str, np.ndarray]


def outdoor_temperature(
    day_of_year: np.ndarray, seconds_of_day: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Seasonal and daily cycle (Central Europe) with minute-scale weather noise that starts and
    ends the day at zero (a Brownian bridge), so consecutive days join without a step."""
    seasonal = 10.0 - 9.5 * np.cos(2 * np.pi * (day_of_year - 15) / 365.25)
    daily = 4.0 * np.sin(2 * np.pi * (seconds_of_day / 86400.0 - 0.375))
    n = len(seconds_of_day)
    if n == 0:
        return seasonal + daily
    walk = np.cumsum(rng.normal(0.0, 0.03, n))
    walk -= np.linspace(0.0, walk[-1], n)
    return seasonal + daily + walk


def _unload_share(rated_kw: float) -> float:
    """Unloaded power as a share of loaded (25–35 %), fixed per machine size."""
    return 0.25 + 0.10 * ((rated_kw * 7.31) % 1.0)


def compressor(
    rated_kw: float,
    dt_s: float,
    drv: Drivers,
    rng: np.random.Generator,
    cond: Conditions | None = None,
) -> Trace:
    """Load/unload cycling inside a 6.5–7.5 bar band. Loaded, it delivers its capacity at about
    rated power (a little more at higher pressure); unloaded it draws 25–35 % of that. Demand is
    the plant's air use (lines running, a slow wave) plus any leak, so energy follows air drawn."""
    n = len(drv.producing)
    cond = cond or Conditions.healthy(n)
    capacity = rated_kw / 6.5  # m3/min delivered when loaded (about 6.5 kW per m3/min)
    air_use = drv.producing.astype(float) if drv.air_use is None else drv.air_use
    wave = np.ones(n) if drv.demand_wave is None else drv.demand_wave
    powered = drv.producing | cond.forced_on  # plant air is shut off outside production
    util = (0.08 + 0.72 * air_use) * wave + cond.air_leak
    demand = np.clip(capacity * util * (1 + rng.normal(0, 0.05, n)), 0, None)
    demand = np.where(powered, demand, 0.0)
    pressure = np.empty(n)
    loaded = np.zeros(n, dtype=bool)
    p, is_loaded = 7.0, False
    gain = dt_s / 60 / 2.0 * 0.5  # bar per (m3/min) of net flow per sample, 2 m3 receiver
    for i in range(n):
        if not powered[i]:
            is_loaded = False
            p = max(p - demand[i] * gain * 0.4, 0.0)
        else:
            if p <= 6.5:
                is_loaded = True
            elif p >= 7.5:
                is_loaded = False
            p = p + ((capacity if is_loaded else 0.0) - demand[i]) * gain
        pressure[i] = p
        loaded[i] = is_loaded
    loaded_kw = rated_kw * (0.93 + 0.04 * np.clip(pressure - 6.5, 0, 1.5))
    power = np.where(loaded, loaded_kw, _unload_share(rated_kw) * rated_kw)
    power = np.where(powered, power * (1 + rng.normal(0, 0.01, n)), 0.0)
    state = np.where(~powered, OFF, np.where(loaded, RUNNING, IDLE))
    return Trace(state, power, {"pressure_bar": pressure, "air_demand_m3_min": demand})


def hvac(
    rated_kw: float,
    dt_s: float,
    drv: Drivers,
    rng: np.random.Generator,
    cond: Conditions | None = None,
) -> Trace:
    """Heat pump air handler: heats below and cools above its setpoints (19/24 °C occupied,
    15/28 °C set back), with a COP that falls in the cold; machines' heat offsets heating while
    the plant produces. Energy follows heating and cooling degree-hours and occupancy."""
    n = len(drv.producing)
    cond = cond or Conditions.healthy(n)
    t_out = drv.outdoor_temperature_c
    occupied = (drv.producing if drv.occupied is None else drv.occupied) | cond.forced_on
    gains_k = np.where(drv.producing, 4.0, 0.0)  # internal gains from running machines
    heat_sp = np.where(occupied, 19.0, 15.0) + cond.setpoint_offset_k
    cool_sp = np.where(occupied, 24.0, 28.0)
    cop_heat = np.clip(2.2 + 0.06 * (t_out + 10.0), 1.8, 4.5)
    cop_cool = np.clip(4.5 - 0.1 * (t_out - 20.0), 2.5, 4.5)
    ua_kw_per_k = 0.85 * rated_kw * 2.08 / 32.0  # design: -12 °C at 85 % of rated power
    heat_kw = np.clip(heat_sp - gains_k - t_out, 0, None) * ua_kw_per_k
    cool_kw = np.clip(t_out + gains_k - cool_sp, 0, None) * ua_kw_per_k
    cool_kw = cool_kw + cond.heat_cool_conflict * heat_kw  # the coil fights the heater
    heat_kw = heat_kw * (1 + cond.heat_cool_conflict)
    fans = np.where(occupied, 0.08 * rated_kw, 0.02 * rated_kw)
    power = heat_kw / cop_heat + cool_kw / cop_cool + fans
    power = np.clip(power * (1 + rng.normal(0, 0.02, n)), 0, rated_kw * 1.2)
    state = np.where(heat_kw + cool_kw > 0.05 * rated_kw, RUNNING, IDLE)
    supply = np.where(heat_kw > cool_kw, 32.0, np.where(cool_kw > 0, 14.0, 20.0))
    return Trace(state, power, {"supply_temperature_c": supply + rng.normal(0, 0.3, n)})


def conveyor_motor(
    rated_kw: float,
    dt_s: float,
    drv: Drivers,
    rng: np.random.Generator,
    cond: Conditions | None = None,
) -> Trace:
    """Power rises with throughput (parts per hour) above an idle-running floor: the belt keeps
    moving while the line waits (changeovers, blocked downstream)."""
    n = len(drv.producing)
    cond = cond or Conditions.healthy(n)
    waiting = _markov_flags(n, p_start=dt_s / 1800, p_end=dt_s / 300, rng=rng)
    flowing = drv.line() & ~waiting
    throughput = np.where(flowing, 1200 * drv.rate() * (1 + rng.normal(0, 0.05, n)), 0.0)
    powered = drv.producing | cond.forced_on
    idle_kw = 0.25 * rated_kw
    power = idle_kw + 0.55 * rated_kw * throughput / 1500 * (1 + rng.normal(0, 0.02, n))
    power = np.where(powered, power * (1 + cond.wear), 0.0)
    state = np.where(~powered, OFF, np.where(flowing, RUNNING, IDLE))
    return Trace(state, np.clip(power, 0, rated_kw * 1.3), {"throughput_parts_h": throughput})


def hydraulic_pump(
    rated_kw: float,
    dt_s: float,
    drv: Drivers,
    rng: np.random.Generator,
    cond: Conditions | None = None,
) -> Trace:
    """Pressure-compensated pump: power is hydraulic work p·Q/600 kW over an efficiency that
    drops at low flow, plus fixed losses; it holds pressure at standby flow while the line
    waits. Cavitation makes pressure and power noisy and raises power."""
    n = len(drv.producing)
    cond = cond or Conditions.healthy(n)
    running = drv.line()
    powered = drv.producing | cond.forced_on
    q_max = rated_kw * 0.95 * 0.85 * 600 / 200.0  # l/min at 200 bar and full efficiency
    wobble = np.repeat(rng.normal(0, 0.08, n // 4 + 1), 4)[:n]  # duty varies over ~2 minutes
    share = np.where(running, np.clip((0.55 + 0.25 * drv.rate() + wobble), 0.2, 1.0), 0.05)
    share = np.where(powered, share, 0.0)
    flow = share * q_max
    pressure = np.where(powered, np.where(running, 180.0, 160.0) + rng.normal(0, 3, n), 0.0)
    efficiency = 0.88 * share / (share + 0.08)
    hydraulic = pressure * flow / 600.0 / np.where(efficiency > 0, efficiency, 1.0)
    noise = rng.normal(0, 1, n)
    power = (hydraulic + 0.04 * rated_kw) * (1 + cond.cavitation * (1 + 0.6 * noise))
    power = np.where(powered, power, 0.0)
    cavitating = cond.cavitation > 0  # vapour bubbles: less delivered, pressure unsteady
    flow = flow * (1 - 0.05 * cavitating)
    pressure = pressure - cavitating * (3.0 - 12.0 * noise)
    state = np.where(~powered, OFF, np.where(running, RUNNING, IDLE))
    return Trace(
        state,
        np.clip(power, 0, rated_kw * 1.3),
        {"pressure_bar": np.clip(pressure, 0, None), "flow_l_min": flow},
    )


# Phases of one moulding cycle: (name, seconds or share of the cycle, power share of rated)
_INJECT_S, _HOLD_S, _PLASTICIZE_SHARE = 2.0, 6.0, 0.35


def injection_moulding(
    rated_kw: float,
    dt_s: float,
    drv: Drivers,
    rng: np.random.Generator,
    cond: Conditions | None = None,
) -> Trace:
    """Cycles of inject, hold, heat (screw recovery, plasticizing) and cool, resolved per second
    and averaged over each sample; the barrel heaters heat up before the shift and keep a
    standby load whenever they are on. Energy follows parts made."""
    n = len(drv.producing)
    cond = cond or Conditions.healthy(n)
    step = max(int(dt_s), 1)
    preheat = np.zeros(n, dtype=bool) if drv.preheat is None else drv.preheat
    heated = drv.producing | preheat | cond.forced_on
    stopped = _markov_flags(n, p_start=dt_s / 3600, p_end=dt_s / 600, rng=rng)
    cycling = drv.line() & ~stopped
    cycle_s = 32.0 / drv.rate()  # faster products, shorter cycles
    # per-second phase progress (cycles), only while cycling
    per_second = np.repeat(np.where(cycling, 1.0 / cycle_s, 0.0), step)
    phase = np.cumsum(per_second)
    fraction = phase % 1.0
    c = np.repeat(cycle_s, step)
    inject = fraction < _INJECT_S / c
    hold = ~inject & (fraction < (_INJECT_S + _HOLD_S) / c)
    plasticize = ~inject & ~hold & (fraction < (_INJECT_S + _HOLD_S) / c + _PLASTICIZE_SHARE)
    share = np.where(inject, 0.95, np.where(hold, 0.45, np.where(plasticize, 0.55, 0.08)))
    drive_kw = np.where(per_second > 0, share * rated_kw, 0.0).reshape(n, step).mean(axis=1)
    standby_kw = 0.15 * rated_kw * (1 + rng.normal(0, 0.05, n))
    heater_kw = np.where(preheat & ~drv.producing, 0.55 * rated_kw, standby_kw)
    power = np.where(heated, drive_kw * (1 + rng.normal(0, 0.03, n)) + heater_kw, 0.0)
    parts = phase.reshape(n, step)[:, -1]
    state = np.where(~heated, OFF, np.where(cycling, RUNNING, IDLE))
    return Trace(state, np.clip(power, 0, rated_kw * 1.2), {"parts_total": parts})


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
