"""The demo (README command one): five weeks of the reference plant landed, the last day of it
through MQTT; the asset graph materialized (hourly energy, KPI marts, baselines, anomalies, the
report); and what a newcomer wants to see printed: the energy and KPI tables, the anomalies
found with their precision and recall against the simulator's truth, where the report and the
UI are.

The demo plant is the plant file sampled once a minute (written to the state folder): five
weeks then land in about a minute. ``enms simulate`` publishes the native 1–30 s telemetry."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg

from enms_dagster.assets.plant import plant_registry
from enms_dagster.db import connect, migrate
from enms_dagster.definitions import defs as load_definitions
from enms_dagster.ingest.service import Ingestor, IngestStats
from enms_dagster.plant import Plant, load_plant
from enms_dagster.progress import Progress
from enms_dagster.resources import PlantResource, WarehouseResource
from enms_dagster.runtime.instance import local_dagster_home
from enms_dagster.runtime.services import Services, running_services
from enms_dagster.settings import Settings
from enms_dagster.simulator.backfill import backfill_direct
from enms_dagster.simulator.faults import FaultLabel, plan_faults
from enms_dagster.simulator.publish import PublishResult, publish_simulation

# The demo prints its own summary; Dagster's step log stays in the run (see it in the UI).
QUIET_RUN = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
DEMO_SAMPLE_INTERVAL_S = 60
HISTORY_DAYS = 35  # landed directly before the MQTT day(s); the baseline period is inside it
EVALUATION_DAYS = 7  # the last days, with injected faults for the detectors to find
FAULT_RATE = 1.0  # faults per machine and week in the evaluation days


@dataclass(frozen=True)
class DemoResult:
    first_day: dt.date  # the days published over MQTT
    last_day: dt.date
    readings_published: int
    readings_inserted: int
    simulated_kwh: dict[str, float]
    mart_kwh: dict[str, float]
    history_first_day: dt.date | None = None
    faults: int = 0
    anomaly_scores: list[dict] = field(default_factory=list)
    reports: list[Path] = field(default_factory=list)


def say(text: str) -> None:
    print(text, flush=True)


DEMO_HEADER = re.compile(r"# (.*), sampled every \d+ s for `enms demo`\.\n")


def demo_plant_file(plant_file: Path, state_dir: Path) -> Path:
    """The plant file with every machine type sampled once a minute, in the state folder. Given
    the demo plant itself (the state folder remembers it), it is derived from its origin again."""
    source = Path(plant_file).read_text()
    origin = plant_file
    if match := DEMO_HEADER.match(source):
        origin, source = match.group(1), source[match.end() :]
    text = re.sub(
        r"sample_interval_s:\s*\d+", f"sample_interval_s: {DEMO_SAMPLE_INTERVAL_S}", source
    )
    state_dir.mkdir(parents=True, exist_ok=True)
    target = state_dir / "demo_plant.yaml"
    header = f"# {origin}, sampled every {DEMO_SAMPLE_INTERVAL_S} s for `enms demo`.\n"
    if not target.exists() or target.read_text() != header + text:
        target.write_text(header + text)
    return target


def demo_window(zone: ZoneInfo, days: int, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The ``days`` complete local days before today."""
    today = today or dt.datetime.now(zone).date()
    return today - dt.timedelta(days=days), today - dt.timedelta(days=1)


def land_simulation(
    services: Services,
    plant: Plant,
    start: dt.datetime,
    end: dt.datetime,
    seed: int,
    faults: list[FaultLabel] | None = None,
    counters: dict | None = None,
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
        with Progress("MQTT", "readings") as progress:
            published = publish_simulation(
                plant,
                start,
                end,
                services.mqtt_url,
                seed=seed,
                progress=progress,
                backpressure=lambda n: ingestor.wait_for_messages(n - 600, 120),
                faults=faults or (),
                counters=counters,
            )
        if not ingestor.wait_for_messages(published.messages, 300):
            raise RuntimeError(
                f"ingestor committed {ingestor.stats.messages_committed} of "
                f"{published.messages} messages within 5 minutes"
            )
    finally:
        ingestor.stop()
    return published, ingestor.stats


def report_raw_readings(instance: dg.DagsterInstance, resources: dict, cursor: int) -> None:
    """Evaluate the MQTT sensor once: it reports raw_readings per landed day, as it would live."""
    with dg.build_sensor_context(
        instance=instance, cursor=str(cursor), resources=resources
    ) as context:
        result = load_definitions().get_sensor_def("raw_readings_sensor")(context)
    if isinstance(result, dg.SensorResult):
        for event in result.asset_events:
            instance.report_runless_asset_event(event)


def materialize(
    instance: dg.DagsterInstance,
    resources: dict,
    assets: list[str],
    days: tuple[dt.date, dt.date] | None = None,
    run_config: dict | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialize ``assets`` (and their checks) in one run; partitioned ones over ``days``, as
    a single-run backfill would."""
    tags = {}
    if days:
        tags = {
            "dagster/asset_partition_range_start": days[0].isoformat(),
            "dagster/asset_partition_range_end": days[1].isoformat(),
        }
    # the project's assets and checks with this demo's resources (servers, demo plant file)
    defs = load_definitions()
    demo_defs = dg.Definitions(
        assets=defs.assets, asset_checks=defs.asset_checks, resources=resources
    )
    return demo_defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey(a) for a in assets],
        run_config={**QUIET_RUN, **(run_config or {})},
        tags=tags,
    )


class Phases:
    """One line per phase of the demo's materialization, as it starts and when it is done, so
    a person (or a log without a terminal) sees where the minutes go."""

    def __init__(self) -> None:
        self.total = 0.0

    @contextlib.contextmanager
    def __call__(self, what: str, first: dt.date, last: dt.date):
        days = f"{first}" if first == last else f"{first} .. {last}"
        print(f"  - {what}, {days} ...", end="", flush=True)
        began = time.monotonic()
        yield
        seconds = time.monotonic() - began
        self.total += seconds
        print(f" {seconds:.0f} s", flush=True)


def record_drift(instance: dg.DagsterInstance, database_url: str) -> int:
    """Run the drift detector as the drift sensor would and report the drift_events it stores
    into the instance (so the sensor resumes after them), without requesting re-fits: the
    demo's baselines stay those fitted on the fault-free weeks. Return the events stored."""
    from enms_dagster.drift.cusum import DriftSettings
    from enms_dagster.drift.store import drift_events_after, find_drift_events, store_drift_events
    from enms_dagster.sensors.drift import drift_materialization

    with connect(database_url) as conn:
        inserted = set(store_drift_events(conn, find_drift_events(conn, DriftSettings())))
        events = drift_events_after(conn, 0)
    new = [e for e in events if e.event_id in inserted]
    if events:
        instance.report_runless_asset_event(
            drift_materialization(new, max(e.seq for e in events), "not requested by the demo")
        )
    return len(new)


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


def print_kpi_table(database_url: str, first: dt.date, last: dt.date) -> None:
    """The week's KPIs per machine and for the site, from marts.fct_kpi_daily."""
    with connect(database_url) as conn:
        rows = conn.execute(
            """
            SELECT level_id, level, sum(energy_kwh), sum(total_cost), max(currency),
                   sum(energy_kwh) / NULLIF(sum(parts), 0), max(peak_15min_kw),
                   sum(idle_kwh) / NULLIF(sum(energy_kwh), 0),
                   sum(out_of_hours_kwh) / NULLIF(sum(energy_kwh), 0),
                   sum(energy_kwh) FILTER (WHERE enpi IS NOT NULL)
                       / NULLIF(sum(expected_kwh) FILTER (WHERE enpi IS NOT NULL), 0)
            FROM marts.fct_kpi_daily
            WHERE level IN ('machine', 'site') AND local_date BETWEEN %s AND %s
            GROUP BY level_id, level ORDER BY level DESC, level_id
            """,
            (first, last),
        ).fetchall()
    say(f"\nKPIs {first} .. {last} (marts.fct_kpi_daily; EnPI = actual / baseline-expected)")
    say(
        f"{'':<9} {'kWh':>9} {'cost':>9} {'kWh/part':>9} {'peak kW':>8} {'idle':>6} "
        f"{'off-hrs':>7} {'EnPI':>6}"
    )

    def fmt(value, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    for scope, _, kwh, cost, _currency, sec, peak, idle, ooh, enpi in rows:
        say(
            f"{scope:<9} {kwh:>9.0f} {fmt(cost, '>9,.0f')} {fmt(sec, '>9.3f')} "
            f"{fmt(peak, '>8.1f')} {fmt(idle, '>6.0%')} {fmt(ooh, '>7.0%')} {fmt(enpi, '>6.2f')}"
        )
    currency = next((r[4] for r in rows if r[4]), "")
    say(f"(cost in {currency}, time-of-use tariff and demand charge)" if currency else "")


def print_anomalies(database_url: str, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """The costliest problems of the window (one line per problem, whichever detectors saw it)
    and the detectors' scores against the faults the simulator injected; return the scores."""
    from enms_dagster.anomalies.evaluation import format_evaluation
    from enms_dagster.anomalies.events import distinct_problems
    from enms_dagster.anomalies.store import read_events, run_evaluation

    with connect(database_url) as conn:
        events = read_events(conn, start, end)
        scores = run_evaluation(conn, start, end)
    say(
        f"\nAnomalies {start:%Y-%m-%d} .. {end:%Y-%m-%d}: {len(events)} events "
        "(marts.anomaly_events)"
    )
    for event, also in distinct_problems(events, 5):
        seen = f" (also seen as {', '.join(k.replace('_', ' ') for k in also)})" if also else ""
        say(f"  - {event['sentence']}{seen}")
    say("\nFound against the simulator's injected faults (event level):")
    say(format_evaluation(scores))
    return scores.to_dict("records")


def run_demo(
    days: int = 1,
    seed: int = 42,
    settings: Settings | None = None,
    history_days: int = HISTORY_DAYS,
) -> DemoResult:
    if days < 1:
        raise ValueError(f"--days must be at least 1 (got {days})")
    if history_days < 14:
        raise ValueError(f"--history-days must be at least 14 for a baseline (got {history_days})")
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

        plant_file = demo_plant_file(settings.plant_file, settings.state_dir)
        local_dagster_home(settings)
        instance = dg.DagsterInstance.get()
        resources = {
            "warehouse": WarehouseResource(database_url=services.database_url),
            "plant": PlantResource(plant_file=str(plant_file)),
        }
        dg.materialize(
            [plant_registry], instance=instance, resources=resources, run_config=QUIET_RUN
        )
        settings.remember_plant_file(plant_file, "enms demo")  # later commands use it too
        plant = load_plant(plant_file)
        site = next(iter(plant.sites.values()))
        first, last = demo_window(site.zone, days)
        history_first = first - dt.timedelta(days=history_days)
        local = lambda day: dt.datetime.combine(day, dt.time(), site.zone)  # noqa: E731
        start, end = local(first), local(last + dt.timedelta(days=1))
        history_start = local(history_first)
        evaluation_first = last - dt.timedelta(days=EVALUATION_DAYS - 1)
        faults = plan_faults(plant, local(evaluation_first), end, seed, FAULT_RATE)
        say(
            f"plant:      {len(plant.machines)} machines of {plant_file.name} "
            f"(sampled every {DEMO_SAMPLE_INTERVAL_S} s), {site.timezone}"
        )

        with connect(services.database_url) as conn:
            (cursor,) = conn.execute(
                "SELECT COALESCE(max(batch_id), 0) FROM raw.ingest_batches"
            ).fetchone()
        counters: dict = {}  # the MQTT day's meters continue the history's
        with Progress("history", "readings") as progress:
            history = backfill_direct(
                plant, history_start, start, services.database_url, seed=seed, faults=faults,
                progress=progress, counters=counters,
            )  # fmt: skip
        say(
            f"history:    {history_first} .. {first - dt.timedelta(days=1)} landed directly: "
            f"{history.readings:,} readings ({history.seconds:.0f} s)"
        )
        published, stats = land_simulation(services, plant, start, end, seed, faults, counters)
        say(
            f"MQTT:       {first} .. {last}: {published.readings:,} readings in "
            f"{published.messages:,} messages ({published.seconds:.0f} s): "
            f"{stats.readings_inserted:,} new, {stats.readings_duplicate:,} already there, "
            f"{stats.quarantined} quarantined"
        )
        report_raw_readings(instance, resources, cursor)

        # the same instance `enms ui` opens: the UI shows these runs, and its sensors resume
        # after what the demo reported (sensors/position.py)
        say(f"dagster:    materializing into {os.environ['DAGSTER_HOME']}")
        phase = Phases()
        with phase("hourly energy, drivers and priced hours", history_first, last):
            materialize(instance, resources,
                        ["hourly_energy", "hourly_drivers", "fct_energy_hourly"],
                        (history_first, last))  # fmt: skip
        baseline_end = evaluation_first - dt.timedelta(days=1)
        with phase("energy baselines", history_first, baseline_end):
            materialize(
                instance, resources, ["energy_baselines"],
                run_config={"ops": {"energy_baselines": {"config": {
                    "reason": "demo", "period_end": baseline_end.isoformat()}}}},
            )  # fmt: skip
        with phase("KPI marts and energy performance", history_first, last):
            materialize(instance, resources,
                        ["kpi_daily", "fct_kpi_daily", "energy_performance"],
                        (history_first, last))  # fmt: skip
        with phase("anomalies", evaluation_first, last):
            materialize(instance, resources, ["anomalies"], (evaluation_first, last))
        with phase("drift events (CUSUM of daily residuals)", baseline_end, last):
            drifts = record_drift(instance, services.database_url)
        today = last + dt.timedelta(days=1)
        with phase("day-ahead forecasts, their accuracy and champions", last, today):
            materialize(
                instance, resources,
                ["load_forecasts", "forecast_accuracy", "forecast_champions"], (last, today),
            )  # fmt: skip
        with phase("energy report", last, last):
            report = materialize(instance, resources, ["energy_report"], (last, last))
        say(f"dagster:    every asset materialized ({phase.total:.0f} s)")
        if drifts:
            say(
                f"drift:      {drifts} drift event(s) stored in marts.drift_events; the demo "
                "leaves its baselines as fitted (live, the drift sensor requests re-fits)"
            )

        rows = energy_table(services.database_url, first, last)
        truth = published.truth.energy_kwh
        print_energy_table(rows, truth, f"{first} .. {last}")
        print_kpi_table(services.database_url, evaluation_first, last)
        scores = print_anomalies(services.database_url, local(evaluation_first), end)
        reports = [
            Path(v.value.path if hasattr(v.value, "path") else v.value)
            for e in report.asset_materializations_for_node("energy_report")
            for k, v in e.metadata.items()
            if k.startswith("report_") and not k.endswith("_url")
        ]
        say("")
        for path in reports:
            say(f"report:     {path}  (opens offline in any browser)")
        say("UI:         python3 dev.py enms ui  ->  http://127.0.0.1:3000 (assets, runs, checks)")
        say(f"done in {time.monotonic() - began:.0f} s.")
        return DemoResult(
            first,
            last,
            published.readings,
            stats.readings_inserted,
            dict(truth),
            {m: kwh for m, _, kwh, _ in rows},
            history_first,
            len(faults),
            scores,
            reports,
        )
