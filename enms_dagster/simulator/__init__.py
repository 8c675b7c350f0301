"""A deterministic factory simulator: the same plant, window and seed give identical telemetry.

Time is simulated in UTC-day chunks, each with its own random stream derived from
(seed, machine, day), so a day's telemetry does not depend on where the window started.
Counters (energy, parts) are continuous within one run; a new run starts them again from the
machine's fixed offset, which the warehouse sees as a meter reset (and handles as one).
"""

from __future__ import annotations

import datetime as dt
import json
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from enms_dagster.plant import Machine, Plant, Site
from enms_dagster.simulator.calendar import (
    PRECONDITION_S,
    PREHEAT_S,
    demand_wave,
    line_schedule,
    local_clock,
    shift_bounds_s,
    synoptic_anomaly,
)
from enms_dagster.simulator.faults import (
    EfficiencyMeasure,
    FaultLabel,
    apply_sensor_faults,
    conditions_for,
    saving_for,
)
from enms_dagster.simulator.models import MODELS, Drivers, outdoor_temperature

PRODUCTION_TYPES = ("conveyor_motor", "hydraulic_pump", "injection_moulding")

STATE_NAMES = np.array(["off", "idle", "running"])
UTC = dt.UTC


@dataclass
class MachineSeries:
    """One machine's samples over one chunk: epoch seconds (UTC), state codes, metric arrays."""

    machine: Machine
    ts: np.ndarray
    state: np.ndarray | None
    metrics: dict[str, np.ndarray]

    @property
    def topic(self) -> str:
        return f"enms/{self.machine.site_id}/{self.machine.machine_id}/telemetry"


@dataclass
class SimulationTruth:
    """What the simulator knows for certain: energy each machine drew in the window, in kWh."""

    energy_kwh: dict[str, float] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)

    def add(self, machine_id: str, energy_kwh: float, samples: int) -> None:
        self.energy_kwh[machine_id] = self.energy_kwh.get(machine_id, 0.0) + energy_kwh
        self.samples[machine_id] = self.samples.get(machine_id, 0) + samples


def _stable_id(text: str) -> int:
    return zlib.crc32(text.encode())


def _grid(start: dt.datetime, end: dt.datetime, interval_s: int) -> np.ndarray:
    """Sample instants in [start, end) aligned to multiples of the interval since the epoch."""
    first = -(-int(start.timestamp()) // interval_s) * interval_s
    return np.arange(first, int(end.timestamp()), interval_s, dtype=np.int64)


def _production_lines(plant: Plant, site_id: str) -> list[str]:
    return sorted(
        {
            m.line
            for m in plant.machines.values()
            if m.site_id == site_id and m.line and m.machine_type in PRODUCTION_TYPES
        }
    )


def _drivers(plant: Plant, machine: Machine, ts: np.ndarray, seed: int) -> Drivers:
    """What the calendar, the line and the weather say to one machine at each sample."""
    site = plant.sites[machine.site_id]
    seconds, local_day, working = local_clock(site, ts)
    start_s, end_s = shift_bounds_s(site)
    producing = working & (seconds >= start_s) & (seconds < end_s)
    lines = _production_lines(plant, site.site_id)
    line_active = product_rate = air_use = wave = None
    if machine.line in lines:
        changeover, product_rate = line_schedule(site, machine.line, seconds, local_day, seed)
        line_active = producing & ~changeover
    if machine.machine_type == "compressor":
        running = [
            producing & ~line_schedule(site, ln, seconds, local_day, seed)[0] for ln in lines
        ]
        air_use = np.mean(running, axis=0) if running else producing.astype(float)
        wave = demand_wave(site, ts, seed)
    return Drivers(
        producing=producing,
        outdoor_temperature_c=_weather(site, ts, seed),
        seconds_of_day=seconds,
        line_active=line_active,
        product_rate=product_rate,
        occupied=working & (seconds >= start_s - PRECONDITION_S) & (seconds < end_s),
        preheat=working & (seconds >= start_s - PREHEAT_S) & (seconds < start_s),
        air_use=air_use,
        demand_wave=wave,
    )


def _weather(site: Site, ts: np.ndarray, seed: int) -> np.ndarray:
    """Outdoor temperature at any instant: a per-day minute series interpolated, so every machine
    on the site sees the same weather whatever its sample interval."""
    if len(ts) == 0:
        return np.zeros(0)
    out = np.empty(len(ts))
    days = ts // 86400
    for day in np.unique(days):
        minutes = np.arange(day * 86400, (day + 1) * 86400 + 60, 60)
        rng = np.random.default_rng([seed, _stable_id(site.site_id), int(day), 7])
        doy = pd.to_datetime(minutes, unit="s").day_of_year.to_numpy()
        local = pd.DatetimeIndex(pd.to_datetime(minutes, unit="s", utc=True)).tz_convert(
            site.timezone
        )
        seconds = (local.hour * 3600 + local.minute * 60).to_numpy(dtype=float)
        temps = outdoor_temperature(doy, seconds, rng) + synoptic_anomaly(site, minutes, seed)
        mask = days == day
        out[mask] = np.interp(ts[mask], minutes, temps)
    return out


def simulate(
    plant: Plant,
    start: dt.datetime,
    end: dt.datetime,
    seed: int = 42,
    machine_ids: list[str] | None = None,
    truth: SimulationTruth | None = None,
    counters: dict[str, dict[str, float]] | None = None,
    *,
    faults: Sequence[FaultLabel] = (),
    measures: Sequence[EfficiencyMeasure] = (),
) -> Iterator[MachineSeries]:
    """Yield each simulated machine's samples over [start, end), one UTC day chunk at a time.

    ``counters`` carries the energy and parts counters from one call to the next (a long-running
    simulator passes the same dict every day); without it they start from each machine's offset.
    ``faults`` (from ``plan_faults``) and ``measures`` change the machines they name; ``truth``
    always counts the energy the machines really drew.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("simulation window needs time-zone-aware start and end")
    if end <= start:
        raise ValueError(f"empty simulation window: {start} .. {end}")
    machines = [
        m
        for m in plant.machines.values()
        if (machine_ids is None or m.machine_id in machine_ids)
        and (m.machine_type in MODELS or m.machine_type == "weather_station")
    ]
    state = counters if counters is not None else {}
    energy = state.setdefault("energy_kwh_total", {})
    parts = state.setdefault("parts_total", {})
    for m in machines:
        energy.setdefault(m.machine_id, 1000.0 + _stable_id(m.machine_id) % 9000)
        parts.setdefault(m.machine_id, 0.0)
    day = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    while day < end:
        chunk_start, chunk_end = max(day, start), min(day + dt.timedelta(days=1), end)
        for machine in machines:
            series = _simulate_chunk(
                plant,
                machine,
                chunk_start,
                chunk_end,
                seed,
                energy,
                parts,
                truth,
                [f for f in faults if f.machine_id == machine.machine_id],
                [m for m in measures if m.machine_id == machine.machine_id],
            )
            if len(series.ts):
                yield series
        day += dt.timedelta(days=1)


def _simulate_chunk(
    plant: Plant,
    machine: Machine,
    start: dt.datetime,
    end: dt.datetime,
    seed: int,
    counters: dict[str, float],
    parts: dict[str, float],
    truth: SimulationTruth | None,
    faults: Sequence[FaultLabel] = (),
    measures: Sequence[EfficiencyMeasure] = (),
) -> MachineSeries:
    site = plant.sites[machine.site_id]
    interval = plant.machine_types[machine.machine_type].sample_interval_s or 60
    ts = _grid(start, end, interval)
    if machine.machine_type == "weather_station":
        temp = _weather(site, ts, seed)
        return MachineSeries(machine, ts, None, {"outdoor_temperature_c": np.round(temp, 2)})
    day_number = int(start.timestamp()) // 86400
    rng = np.random.default_rng([seed, _stable_id(machine.machine_id), day_number])
    trace = MODELS[machine.machine_type](
        machine.rated_power_kw or 10.0,
        float(interval),
        _drivers(plant, machine, ts, seed),
        rng,
        conditions_for(faults, ts),
    )
    power = trace.power_kw
    if measures:
        power = power * (1 - saving_for(measures, ts))
    power = np.round(power, 4)
    energy = power * interval / 3600.0
    counter = counters[machine.machine_id] + np.cumsum(energy)
    if truth is not None:
        truth.add(machine.machine_id, float(energy.sum()), len(ts))
    metrics = {"power_kw": power, "energy_kwh_total": counter}
    if faults:
        apply_sensor_faults(faults, ts, metrics)
    if len(counter):
        counters[machine.machine_id] = float(metrics["energy_kwh_total"][-1])
    for name, values in trace.extras.items():
        if name == "parts_total":
            values = parts[machine.machine_id] + values
            if len(values):
                parts[machine.machine_id] = float(values[-1])
            metrics[name] = np.floor(values)
        else:
            metrics[name] = np.round(values, 3)
    return MachineSeries(machine, ts, trace.state, metrics)


def to_payloads(series: MachineSeries, readings_per_message: int = 60) -> Iterator[bytes]:
    """JSON payloads per the MQTT contract (docs/mqtt.md): an array of samples per message,
    or a single sample object when ``readings_per_message`` is 1."""
    iso = pd.to_datetime(series.ts, unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    names = list(series.metrics)
    columns = [series.metrics[n].tolist() for n in names]
    states = STATE_NAMES[series.state].tolist() if series.state is not None else None
    samples = []
    for i, ts in enumerate(iso):
        sample: dict = {
            "ts": ts,
            "metrics": {n: col[i] for n, col in zip(names, columns, strict=True)},
        }
        if states is not None:
            sample["state"] = states[i]
        samples.append(sample)
    if readings_per_message <= 1:
        for sample in samples:
            yield json.dumps(sample, separators=(",", ":")).encode()
        return
    for i in range(0, len(samples), readings_per_message):
        yield json.dumps(samples[i : i + readings_per_message], separators=(",", ":")).encode()
