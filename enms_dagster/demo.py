"""The demo (README command one): a simulated day of the reference plant through MQTT into
PostgreSQL, the asset graph materialized, and the per-machine energy table printed."""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import dagster as dg

from enms_dagster.assets.plant import plant_registry
from enms_dagster.definitions import defs
from enms_dagster.ingest.service import Ingestor, IngestStats
from enms_dagster.plant import Plant, load_plant
from enms_dagster.resources import PlantResource, WarehouseResource
from enms_dagster.sensors.raw_readings import raw_readings_sensor
from enms_dagster.services import Services, running_services
from enms_dagster.settings import Settings
from enms_dagster.simulator.publish import PublishResult, print_progress, publish_simulation
from enms_dagster.warehouse import connect, migrate

# The demo prints its own summary; Dagster's step log stays in the run (see it in the UI).
QUIET_RUN = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass(frozen=True)
class DemoResult:
    first_day: dt.date
    last_day: dt.date
    readings_published: int
    readings_inserted: int
    simulated_kwh: dict[str, float]
    mart_kwh: dict[str, float]


def say(text: str) -> None:
    print(text, flush=True)


def dagster_instance(settings: Settings) -> dg.DagsterInstance:
    """The local Dagster instance under the state folder, unless DAGSTER_HOME points elsewhere."""
    if not os.environ.get("DAGSTER_HOME"):
        home = settings.state_dir / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        config = home / "dagster.yaml"
        if not config.exists():
            config.write_text("telemetry:\n  enabled: false\n")
        os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def demo_window(zone: ZoneInfo, days: int, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The ``days`` complete local days before today."""
    today = today or dt.datetime.now(zone).date()
    return today - dt.timedelta(days=days), today - dt.timedelta(days=1)


def land_simulation(
    services: Services, plant: Plant, start: dt.datetime, end: dt.datetime, seed: int
) -> tuple[PublishResult, IngestStats]:
    """Publish the simulated window over MQTT and land it with an in-process ingestor."""
    ingestor = Ingestor(
        services.database_url,
        services.mqtt_url,
        client_id="enms-demo-ingestor",
        persistent_session=False,  # count only this run's messages, leave nothing queued behind
    )
    ingestor.start()
    try:
        published = publish_simulation(
            plant,
            start,
            end,
            services.mqtt_url,
            seed=seed,
            progress=print_progress if sys.stderr.isatty() else None,
            backpressure=lambda n: ingestor.wait_for_messages(n - 600, 120),
        )
        if not ingestor.wait_for_messages(published.messages, 300):
            raise RuntimeError(
                f"ingestor committed {ingestor.stats.messages_committed} of "
                f"{published.messages} messages within 5 minutes"
            )
    finally:
        ingestor.stop()
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    return published, ingestor.stats


def materialize_days(
    instance: dg.DagsterInstance, resources: dict, first: dt.date, last: dt.date, cursor: int
) -> dg.ExecuteInProcessResult:
    """Evaluate the MQTT sensor once (it reports raw_readings per day), then materialize the
    energy assets for the days in one run, as a single-run backfill would."""
    with dg.build_sensor_context(
        instance=instance, cursor=str(cursor), resources=resources
    ) as context:
        result = raw_readings_sensor(context)
    if isinstance(result, dg.SensorResult):
        for event in result.asset_events:
            instance.report_runless_asset_event(event)

    return defs.resolve_job_def("energy_job").execute_in_process(
        instance=instance,
        resources=resources,
        run_config=QUIET_RUN,
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
    )


def energy_table(database_url: str, first: dt.date, last: dt.date) -> list[tuple]:
    with connect(database_url) as conn:
        return conn.execute(
            "SELECT machine_id, machine_type, sum(energy_kwh), max(peak_15min_kw) "
            "FROM marts.kpi_daily WHERE local_date BETWEEN %s AND %s "
            "GROUP BY machine_id, machine_type ORDER BY machine_id",
            (first, last),
        ).fetchall()


def print_energy_table(rows: list[tuple], truth: dict[str, float], days: str) -> None:
    say(f"\nEnergy per machine, {days} (marts.kpi_daily vs the simulator's own count)")
    say(f"{'machine':<9} {'type':<19} {'kWh':>10} {'peak kW':>9} {'simulated':>10} {'diff':>7}")
    for machine, mtype, kwh, peak in rows:
        sim = truth.get(machine)
        diff = f"{(kwh - sim) / sim * 100:+.2f}%" if sim else ""
        say(f"{machine:<9} {mtype:<19} {kwh:>10.1f} {peak or 0:>9.1f} {sim or 0:>10.1f} {diff:>7}")
    say(f"{'total':<29} {sum(r[2] for r in rows):>10.1f} {'':>9} {sum(truth.values()):>10.1f}")


def run_demo(days: int = 1, seed: int = 42, settings: Settings | None = None) -> DemoResult:
    if days < 1:
        raise ValueError(f"--days must be at least 1 (got {days})")
    settings = settings or Settings.from_env()
    began = time.monotonic()
    with running_services(settings) as services:
        db = f"embedded, data in {settings.state_dir / 'postgres'}"
        broker = f"embedded amqtt broker at {services.mqtt_url}"
        say(f"PostgreSQL: {db if services.embedded_database else 'ENMS_DATABASE_URL'}")
        say(f"MQTT:       {broker if services.embedded_broker else 'ENMS_MQTT_URL'}")
        applied = migrate(services.database_url)
        say(
            f"schema:     {len(applied)} migration(s) applied" if applied else "schema:     current"
        )

        instance = dagster_instance(settings)
        resources = {
            "warehouse": WarehouseResource(database_url=services.database_url),
            "plant": PlantResource(plant_file=str(settings.plant_file)),
        }
        dg.materialize(
            [plant_registry], instance=instance, resources=resources, run_config=QUIET_RUN
        )
        plant = load_plant(settings.plant_file)
        site = next(iter(plant.sites.values()))
        first, last = demo_window(site.zone, days)
        start = dt.datetime.combine(first, dt.time(), site.zone)
        end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), site.zone)
        say(f"simulating: {len(plant.machines)} machines, {first} .. {last} ({site.timezone})")

        with connect(services.database_url) as conn:
            (cursor,) = conn.execute(
                "SELECT COALESCE(max(batch_id), 0) FROM raw.ingest_batches"
            ).fetchone()
        published, stats = land_simulation(services, plant, start, end, seed)
        say(
            f"landed:     {published.readings:,} readings in {published.messages:,} MQTT messages "
            f"({published.seconds:.0f} s): {stats.readings_inserted:,} new, "
            f"{stats.readings_duplicate:,} already there, {stats.quarantined} quarantined"
        )
        run = materialize_days(instance, resources, first, last, cursor)
        say(f"dagster:    run {run.run_id[:8]} materialized energy_job for those days")

        rows = energy_table(services.database_url, first, last)
        truth = published.truth.energy_kwh
        print_energy_table(rows, truth, f"{first} .. {last}")
        say(f"\ndone in {time.monotonic() - began:.0f} s. The operations console: enms ui")
        return DemoResult(
            first,
            last,
            published.readings,
            stats.readings_inserted,
            dict(truth),
            {m: kwh for m, _, kwh, _ in rows},
        )
