"""What ``enms simulate`` does: pick the window and mode, plan the faults, record the ground
truth, then publish over MQTT (backfill, accelerated, real time) or land straight into the
warehouse (``--direct``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from enms_dagster.db import connect, migrate
from enms_dagster.plant import Plant, load_plant
from enms_dagster.plant.store import save_plant
from enms_dagster.progress import Progress
from enms_dagster.settings import Settings
from enms_dagster.simulator.faults import EfficiencyMeasure, plan_faults
from enms_dagster.simulator.labels import save_ground_truth


@dataclass(frozen=True)
class SimulateOptions:
    plant_file: Path | None
    days: int
    seed: int
    fault_rate: float
    speed: float | None  # None: backfill as fast as possible; 1: real time; N: N times faster
    direct: bool
    savings: tuple[str, ...] = ()  # "MACHINE:YYYY-MM-DD:PERCENT"


def parse_saving(text: str, plant: Plant) -> EfficiencyMeasure:
    """``CMP-01:2026-03-15:10`` → CMP-01 draws 10 % less from local midnight of that date."""
    try:
        machine, day, percent = text.split(":")
        start_day = dt.date.fromisoformat(day)
        saving = float(percent) / 100
    except ValueError:
        raise ValueError(f"--saving {text!r}: expected MACHINE:YYYY-MM-DD:PERCENT") from None
    if machine not in plant.machines:
        raise ValueError(f"--saving {text!r}: unknown machine {machine!r}")
    if not 0 < saving < 1:
        raise ValueError(f"--saving {text!r}: percent must be between 0 and 100")
    zone = ZoneInfo(plant.site_of(machine).timezone)
    start = dt.datetime.combine(start_day, dt.time(), zone).astimezone(dt.UTC)
    return EfficiencyMeasure(machine, start, saving, f"-{percent} % from {day} (simulated)")


def run_simulate(settings: Settings, options: SimulateOptions) -> int:
    from enms_dagster.runtime.services import running_services
    from enms_dagster.simulator.backfill import backfill_direct
    from enms_dagster.simulator.publish import publish_simulation, run_accelerated

    plant_file = options.plant_file or settings.plant_file
    origin = "--plant" if options.plant_file else settings.plant_file_origin
    print(f"plant file {plant_file} ({origin})", flush=True)
    plant = load_plant(plant_file)
    measures = [parse_saving(s, plant) for s in options.savings]
    now = dt.datetime.now(dt.UTC)
    end = now.replace(minute=0, second=0, microsecond=0)
    start = end - dt.timedelta(days=options.days)
    live = options.speed is not None
    # a live run keeps going: plan its faults a week beyond now
    fault_end = now + dt.timedelta(days=7) if live else end
    faults = plan_faults(plant, start, fault_end, options.seed, options.fault_rate)
    with running_services(settings) as services:
        migrate(services.database_url)
        with connect(services.database_url, autocommit=True) as conn:
            save_plant(
                conn,
                plant,
                source=f"plant file {plant_file}",
                change_intervals=settings.plant_change_intervals,
            )
            save_ground_truth(conn, faults, measures, seed=options.seed)
        if options.plant_file:
            settings.remember_plant_file(plant_file, "enms simulate --plant")
        print(f"{len(faults)} faults and {len(measures)} measures recorded in core.fault_labels")
        if live:
            begin = now if options.speed == 1 else start
            print(
                f"publishing from {begin:%Y-%m-%d %H:%M} UTC at x{options.speed:g} "
                "(real time once it reaches now; Ctrl-C stops)",
                flush=True,
            )
            try:
                with Progress("publishing", "messages") as progress:
                    run_accelerated(
                        plant,
                        services.mqtt_url,
                        start=begin,
                        speed=options.speed,
                        seed=options.seed,
                        faults=faults,
                        measures=measures,
                        progress=progress,
                    )
            except KeyboardInterrupt:
                pass
            return 0
        if options.direct:
            with Progress("landing", "readings") as progress:
                result = backfill_direct(
                    plant,
                    start,
                    end,
                    services.database_url,
                    seed=options.seed,
                    faults=faults,
                    measures=measures,
                    progress=progress,
                )
            print(
                f"landed {result.inserted:,} of {result.readings:,} readings in "
                f"{result.batches} batches ({start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC) "
                f"in {result.seconds:.0f} s, {result.readings_per_s:,.0f} readings/s"
            )
            return 0
        with Progress("publishing", "readings") as progress:
            published = publish_simulation(
                plant,
                start,
                end,
                services.mqtt_url,
                seed=options.seed,
                progress=progress,
                faults=faults,
                measures=measures,
            )
        print(
            f"published {published.readings:,} readings in {published.messages:,} messages "
            f"({start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC) in {published.seconds:.0f} s"
        )
    return 0
