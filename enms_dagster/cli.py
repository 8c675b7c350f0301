"""``enms``: the platform's command line."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

from enms_dagster.settings import Settings


def _register_plant(database_url: str, settings: Settings, out=None) -> None:
    """Add the plant file's sites and machines the registry lacks, so the ingestor of a fresh
    warehouse lands their telemetry instead of quarantining it as unknown_machine. Registered
    rows stay as they are (a plant registered from another file keeps its sample intervals,
    which is said); the plant_registry asset makes the registry follow the file."""
    from enms_dagster.db import connect
    from enms_dagster.plant import load_plant
    from enms_dagster.plant.store import add_missing_plant, changed_intervals, describe_intervals

    out = out or sys.stdout
    print(f"plant file {settings.plant_file} ({settings.plant_file_origin})", file=out, flush=True)
    plant = load_plant(settings.plant_file)
    with connect(database_url, autocommit=True) as conn:
        added = add_missing_plant(conn, plant)
        kept = changed_intervals(conn, plant)
    new = ", ".join(f"{n} {table}" for table, n in added.items() if n) or "nothing new"
    print(f"plant: {len(plant.machines)} machines; added {new}", file=out, flush=True)
    if kept:
        print(
            f"plant: the registry keeps its sample intervals, registered from another plant file "
            f"(registered -> this file: {describe_intervals(kept)})",
            file=out,
            flush=True,
        )


def _cmd_migrate(args: argparse.Namespace) -> int:
    from enms_dagster.db import applied_versions, migrate
    from enms_dagster.runtime.services import running_services

    settings = Settings.from_env()
    with running_services(settings) as services:
        functions = []
        applied = migrate(services.database_url, on_function=functions.append)
        for m in applied:
            print(f"applied {m.version:04d}_{m.name}")
        for f in functions:
            print(f"applied function {f.name}")
        print(f"schema at version {max(applied_versions(services.database_url), default=0)}")
        _register_plant(services.database_url, settings)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from enms_dagster.runtime.demo import run_demo

    run_demo(days=args.days, seed=args.seed, history_days=args.history_days)
    return 0


def _cmd_ui(args: argparse.Namespace) -> int:
    from enms_dagster.db import migrate
    from enms_dagster.runtime.instance import local_dagster_home
    from enms_dagster.runtime.services import running_services

    settings = Settings.from_env()
    with running_services(settings) as services:
        migrate(services.database_url)
        home = local_dagster_home(settings)  # the demo's instance: its runs, events, positions
        os.environ["ENMS_PLANT_FILE"] = str(settings.plant_file)
        # a run launch waits this long for the code server (Dagster's default is 60 s)
        os.environ.setdefault("DAGSTER_GRPC_TIMEOUT_SECONDS", "180")
        print(f"Dagster instance: {home}", flush=True)
        print(f"plant file {settings.plant_file} ({settings.plant_file_origin})", flush=True)
        print(f"Dagster UI on http://{args.host}:{args.port} (Ctrl-C stops it)", flush=True)
        dev = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-m", "enms_dagster.definitions",
             "-h", args.host, "-p", str(args.port)]
        )  # fmt: skip
        try:
            return dev.wait()
        except (KeyboardInterrupt, SystemExit):
            # `dagster dev` stops its webserver, daemon and code servers on SIGTERM; killed
            # outright it would leave them running
            dev.send_signal(signal.SIGTERM)
            try:
                dev.wait(timeout=60)
            except subprocess.TimeoutExpired:
                dev.kill()
            return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    if args.share_group is not None:
        raise ValueError(SHARE_GROUP_WITHDRAWN)
    from enms_dagster.db import migrate
    from enms_dagster.ingest.service import run_ingestor
    from enms_dagster.runtime.services import running_services

    settings = Settings.from_env()
    with running_services(settings) as services:
        migrate(services.database_url)
        # on stderr: stdout's first line is "ingesting ...", which supervisors and tests wait for
        _register_plant(services.database_url, settings, out=sys.stderr)
        return run_ingestor(
            services.database_url,
            services.mqtt_url,
            client_id=args.client_id,
            sites=args.site,
            window=settings.readings_window(),
        )


SHARE_GROUP_WITHDRAWN = (
    "--share-group is withdrawn: Mosquitto keeps handing a shared subscription's messages to a "
    "member that died, and they never land. Run several ingestors each with its own "
    "--client-id and no group: every one of them gets every message and landing is idempotent, "
    "so the survivors land everything. Split the load by site with --site. "
    "See docs/mqtt.md, 'More than one ingestor'."
)


def _cmd_quarantine(args: argparse.Namespace) -> int:
    from enms_dagster.db import connect, migrate
    from enms_dagster.ingest.quarantine import pending_entries, redrive, summarize
    from enms_dagster.runtime.services import running_services

    settings = Settings.from_env()
    with running_services(settings) as services:
        migrate(services.database_url)
        with connect(services.database_url, autocommit=True) as conn:
            if args.action == "redrive":
                r = redrive(conn, reason=args.reason, window=settings.readings_window())
                print(
                    f"re-drove {r.examined} entries: {r.landed} landed "
                    f"({r.readings_inserted} new readings), {r.still_rejected} still rejected"
                )
            elif args.action == "list":
                for qid, at, source, topic, reason, detail, preview in pending_entries(
                    conn, args.reason, args.limit
                ):
                    print(f"#{qid} {at:%Y-%m-%d %H:%M:%S} {source} {topic} {reason}: {detail}")
                    print(f"    {preview}")
            else:
                rows = summarize(conn)
                if not rows:
                    print("quarantine is empty")
                print(f"{'source':<8} {'reason':<22} {'pending':>8} {'redriven':>9}  last seen")
                for source, reason, pending, done, _, last in rows:
                    print(f"{source:<8} {reason:<22} {pending:>8} {done:>9}  {last:%Y-%m-%d %H:%M}")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from enms_dagster.simulator.command import SimulateOptions, run_simulate

    speed = 1.0 if args.realtime else args.speed
    options = SimulateOptions(
        plant_file=args.plant,
        days=args.days,
        seed=args.seed,
        fault_rate=args.fault_rate,
        speed=speed,
        direct=args.direct,
        savings=tuple(args.saving),
    )
    if options.direct and speed is not None:
        raise ValueError("enms simulate --direct backfills history; drop --speed/--realtime")
    return run_simulate(Settings.from_env(), options)


def _cmd_import(args: argparse.Namespace) -> int:
    from enms_dagster.db import connect, migrate
    from enms_dagster.ingest.csv_import import ImportFormatError, import_csv
    from enms_dagster.progress import Progress
    from enms_dagster.runtime.services import running_services

    for path in args.files:
        if not Path(path).is_file():
            raise ImportFormatError(f"{path}: no such file; give the path of a CSV file")
    settings = Settings.from_env()
    window = settings.readings_window(since=args.since)
    set_aside = 0
    with running_services(settings) as services:
        migrate(services.database_url)
        with connect(services.database_url, autocommit=True) as conn:
            for path in args.files:
                with Progress(f"import {Path(path).name}", "lines") as progress:
                    result = import_csv(
                        conn, path, chunk_lines=args.chunk_lines, window=window, progress=progress
                    )
                print(result.summary(), flush=True)
                set_aside += result.rejected
    if set_aside:
        print(
            f"enms: {set_aside:,} lines were set aside (not landed); `enms quarantine list` "
            "shows them and why",
            file=sys.stderr,
        )
        return 1
    return 0


def _since(text: str):
    """``--since`` as an aware instant: a date (midnight UTC) or an ISO 8601 time with offset."""
    import datetime as dt

    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@contextlib.contextmanager
def _migrated_warehouse(settings: Settings) -> Iterator[str]:
    """The warehouse URL, migrated: ENMS_DATABASE_URL, or the embedded PostgreSQL when unset (the
    database commands need no broker)."""
    from enms_dagster.db import migrate
    from enms_dagster.runtime.services import start_embedded_postgres

    with contextlib.ExitStack() as stack:
        database_url = settings.database_url
        if database_url is None:
            database_url, server = start_embedded_postgres(settings.state_dir)
            stack.callback(server.cleanup)
        migrate(database_url)
        yield database_url


def _cmd_docs(args: argparse.Namespace) -> int:
    from enms_dagster.db import connect
    from enms_dagster.db.dictionary import MARTS_DOC, REGENERATE_COMMAND, render_marts_docs

    with _migrated_warehouse(Settings.from_env()) as database_url, connect(database_url) as conn:
        text = render_marts_docs(conn)
    output = args.output or MARTS_DOC
    current = output.read_text() if output.exists() else None
    if args.check:
        if current != text:
            print(f"{output} is out of date; run `{REGENERATE_COMMAND}`", file=sys.stderr)
            return 1
        print(f"{output} is up to date")
        return 0
    if current == text:
        print(f"{output} unchanged")
    else:
        output.write_text(text)
        print(f"wrote {output}")
    return 0


def _cmd_analyst_password(args: argparse.Namespace) -> int:
    from enms_dagster.db import connect
    from enms_dagster.db.roles import (
        ANALYST_ROLE,
        analyst_access_gaps,
        set_analyst_limits,
        set_analyst_password,
    )

    password = None
    if not args.disable:
        password = os.environ.get("ENMS_ANALYST_PASSWORD") or None
        if password is None and sys.stdin.isatty():
            import getpass

            password = getpass.getpass(f"password for {ANALYST_ROLE}: ")
            if getpass.getpass("again: ") != password:
                print("the passwords differ; nothing changed", file=sys.stderr)
                return 1
        if not password:
            raise ValueError(
                "set ENMS_ANALYST_PASSWORD (or run in a terminal to be asked); "
                "--disable takes the login away"
            )
    settings = Settings.from_env()
    with (
        _migrated_warehouse(settings) as database_url,
        connect(database_url, autocommit=True) as conn,
    ):
        if password is not None:
            set_analyst_limits(conn, settings.analyst_limits)
        set_analyst_password(conn, password)
        gaps = analyst_access_gaps(conn)
    if password is None:
        print(f"{ANALYST_ROLE} can no longer log in")
        return 0
    limits = settings.analyst_limits
    print(
        f"{ANALYST_ROLE} can log in with the configured password (read-only, marts only); "
        f"per session: statement_timeout {limits.statement_timeout}, "
        f"idle_in_transaction_session_timeout {limits.idle_in_transaction_session_timeout}, "
        f"temp_file_limit {limits.temp_file_limit}; at most {limits.connection_limit} sessions"
    )
    for gap in gaps:
        print(f"warning: {ANALYST_ROLE} reaches beyond its marts: {gap}", file=sys.stderr)
    return 0


def _site_id(text: str) -> str:
    from enms_dagster.ingest.service import subscription_topics

    try:
        subscription_topics([text])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def _cmd_evaluate_anomalies(args: argparse.Namespace) -> int:
    import datetime as dt

    from enms_dagster.anomalies.store import evaluation_report
    from enms_dagster.db import connect

    end = dt.datetime.now(dt.UTC)
    with _migrated_warehouse(Settings.from_env()) as database_url, connect(database_url) as conn:
        if args.days is None:
            first = conn.execute("SELECT min(start_ts) FROM marts.anomaly_events").fetchone()[0]
            start = first or end - dt.timedelta(days=7)
        else:
            start = end - dt.timedelta(days=args.days)
        print(evaluation_report(conn, start, end))
    return 0


def _cmd_alerts_ack(args: argparse.Namespace) -> int:
    import getpass

    from enms_dagster.anomalies.alerts import acknowledge
    from enms_dagster.db import connect

    with _migrated_warehouse(Settings.from_env()) as database_url:
        with connect(database_url, autocommit=True) as conn:
            found = acknowledge(conn, args.event_id, args.by or getpass.getuser())
    if not found:
        print(f"no anomaly event {args.event_id!r} (see marts.anomaly_events)", file=sys.stderr)
        return 1
    print(f"acknowledged {args.event_id}: it will not alert again")
    return 0


def _cmd_alerts_status(args: argparse.Namespace) -> int:
    from enms_dagster.anomalies.alert_delivery import delivery_status
    from enms_dagster.db import connect

    with _migrated_warehouse(Settings.from_env()) as database_url:
        with connect(database_url, autocommit=True) as conn:
            lines = delivery_status(conn, limit=args.limit)
    print("\n".join(lines))
    return 0


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows every option's default as ``(default: X)``; an option whose default is
    nothing (None, an empty list, a flag) says in its own help what happens without it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if any(action.default is nothing for nothing in (None, False, argparse.SUPPRESS)):
            return action.help
        if action.default == []:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """The parser of ``enms`` and of each subcommand: shows defaults in ``--help``."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="enms",
        description="Energy management on Dagster. Servers come from ENMS_DATABASE_URL and "
        "ENMS_MQTT_URL; unset, embedded ones start (state in ENMS_STATE_DIR, default ./.enms).",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log at INFO level; an error shows its traceback",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="warehouse administration")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    migrate = db_sub.add_parser(
        "migrate",
        help="apply the SQL migrations in enms_dagster/db/migrations that are not applied yet",
        description="Apply pending migrations in order, each in a transaction; safe to repeat.",
    )
    migrate.set_defaults(func=_cmd_migrate)

    docs = db_sub.add_parser(
        "docs",
        help="write docs/marts.md, the marts data dictionary, from the database's comments",
        description="Migrates the warehouse and renders every marts table and view, with its "
        "columns, types and comments, into docs/marts.md.",
    )
    docs.add_argument(
        "--output", type=Path, default=None, help="where to write (default: docs/marts.md)"
    )
    docs.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the file is out of date"
    )
    docs.set_defaults(func=_cmd_docs)
    analyst = db_sub.add_parser(
        "analyst-password",
        help="let the read-only role enms_analyst log in (password from ENMS_ANALYST_PASSWORD)",
        description="Sets LOGIN and the password of enms_analyst, which reads the marts schema "
        "only. The password comes from ENMS_ANALYST_PASSWORD (asked for in a terminal when "
        "unset) and is hashed before it is sent to the server.",
    )
    analyst.add_argument(
        "--disable", action="store_true", help="take the login away (NOLOGIN) instead"
    )
    analyst.set_defaults(func=_cmd_analyst_password)

    demo = sub.add_parser(
        "demo",
        help="simulate five weeks of the reference plant end to end and print what it found",
        description="Starts (or uses) PostgreSQL and an MQTT broker, migrates the schema, "
        "lands simulated history of the reference plant (sampled once a minute) and publishes "
        "the last day(s) over MQTT to the ingestor, materializes the asset graph (hourly energy, "
        "KPI marts, baselines, anomalies, the HTML report) and prints the energy and KPI "
        "tables, the anomalies with their precision and recall against the injected faults, "
        "and where the report and the UI are.",
    )
    demo.add_argument("--days", type=_positive_int, default=1, help="complete days before today")
    demo.add_argument("--seed", type=int, default=42, help="simulator seed")
    demo.add_argument(
        "--history-days",
        type=_positive_int,
        default=35,
        help="days landed directly before the MQTT day(s), at least 14",
    )
    demo.set_defaults(func=_cmd_demo)

    ui = sub.add_parser(
        "ui",
        help="open the Dagster UI (webserver and daemon) on this project",
        description="Runs `dagster dev` on enms_dagster.definitions with this project's servers.",
    )
    ui.add_argument("--host", default="127.0.0.1", help="address the UI listens on")
    ui.add_argument("--port", type=int, default=3000, help="port the UI listens on")
    ui.set_defaults(func=_cmd_ui)

    ingest = sub.add_parser(
        "ingest",
        help="run the MQTT ingestor (long-running)",
        description="Subscribes to enms/+/+/telemetry with QoS 1 on a persistent session and "
        "lands readings in raw.readings, acknowledging only after commit. Several ingestors, "
        "each with its own --client-id, are redundant: each lands every message of its topics "
        "(idempotently), so any survivor lands everything. Exits 70 when the landing worker "
        "dies and 71 when the MQTT loop dies (the reason is in raw.ingestor_status), for a "
        "supervisor to restart it; see docs/mqtt.md.",
    )
    ingest.add_argument(
        "--client-id",
        default="enms-ingestor",
        help="fixed per ingestor and unique in the fleet: it names its session",
    )
    ingest.add_argument(
        "--site",
        action="append",
        type=_site_id,
        default=[],
        help="only this site's telemetry (enms/SITE/+/telemetry); repeatable. Splits the plant "
        "between ingestors; give every partition at least two (default: every site)",
    )
    ingest.add_argument("--share-group", help=argparse.SUPPRESS)  # withdrawn: says why
    ingest.set_defaults(func=_cmd_ingest)

    quarantine = sub.add_parser(
        "quarantine",
        help="summarize, list or re-drive input that was set aside",
        description="Input that could not be used is kept in raw.quarantine with its raw bytes "
        "and reason. 'summary' counts it by reason, 'list' shows pending entries, 'redrive' "
        "parses pending MQTT entries again (e.g. after registering a machine) and lands those "
        "that now pass.",
    )
    quarantine.add_argument(
        "action",
        nargs="?",
        choices=["summary", "list", "redrive"],
        default="summary",
        help="what to do",
    )
    quarantine.add_argument("--reason", help="only entries with this reason (default: all)")
    quarantine.add_argument("--limit", type=_positive_int, default=20, help="entries to list")
    quarantine.set_defaults(func=_cmd_quarantine)

    simulate = sub.add_parser(
        "simulate",
        help="publish simulated telemetry of the plant over MQTT",
        description="Backfills the last N days as fast as the broker takes them (or straight "
        "into the database with --direct), replays them faster than real time with --speed, or "
        "publishes in real time with --realtime. Injected faults go to core.fault_labels.",
    )
    simulate.add_argument(
        "--plant",
        help="plant file, remembered in the state folder for later commands (default: "
        "ENMS_PLANT_FILE, else the plant file remembered there, else the reference plant)",
    )
    simulate.add_argument("--days", type=_positive_int, default=1, help="days to backfill")
    simulate.add_argument("--seed", type=int, default=42, help="simulator seed")
    simulate.add_argument("--realtime", action="store_true", help="same as --speed 1")
    simulate.add_argument(
        "--speed",
        type=float,
        help="publish the last --days at N times real time, then carry on in real time "
        "(default: backfill them as fast as the broker takes them, then stop)",
    )
    simulate.add_argument(
        "--fault-rate", type=float, default=0.0, help="injected faults per machine and week"
    )
    simulate.add_argument(
        "--saving",
        action="append",
        default=[],
        metavar="MACHINE:DATE:PERCENT",
        help="an efficiency measure, e.g. CMP-01:2026-03-15:10 (repeatable)",
    )
    simulate.add_argument(
        "--direct", action="store_true", help="land straight into the database (no broker)"
    )
    simulate.set_defaults(func=_cmd_simulate)

    imp = sub.add_parser(
        "import",
        help="import historical readings from CSV files",
        description="Long CSV (ts,machine,metric,value) or wide (ts,machine,<metric>,...). "
        "Naive timestamps are read in the site's time zone. Lands through the same path as "
        "MQTT: importing a file again adds nothing; unusable lines go to raw.quarantine.",
    )
    imp.add_argument("files", nargs="+", help="CSV files")
    imp.add_argument(
        "--chunk-lines", type=_positive_int, default=50_000, help="lines landed per batch"
    )
    imp.add_argument(
        "--since",
        type=_since,
        default=None,
        metavar="DATE",
        help="land readings back to DATE (e.g. 2024-01-01); without it, readings older than "
        "ENMS_READINGS_MAX_AGE_DAYS (default 400) are quarantined as too_old",
    )
    imp.set_defaults(func=_cmd_import)
    evaluate = sub.add_parser("evaluate", help="score the analytics against the simulator's truth")
    evaluate_sub = evaluate.add_subparsers(dest="evaluate_command", required=True)
    anomalies = evaluate_sub.add_parser(
        "anomalies",
        help="precision, recall and detection delay of the anomaly events per fault kind",
        description="Scores the events in marts.anomaly_events against core.fault_labels at "
        "the event level: a label is found when an event of the same machine overlaps it.",
    )
    anomalies.add_argument(
        "--days", type=int, default=None, help="the last N days (default: since the first event)"
    )
    anomalies.set_defaults(func=_cmd_evaluate_anomalies)

    alerts = sub.add_parser("alerts", help="anomaly alerts")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True)
    ack = alerts_sub.add_parser(
        "ack",
        help="acknowledge an anomaly event: it never alerts again",
        description="Marks marts.anomaly_events.acknowledged_at/_by for the event.",
    )
    ack.add_argument("event_id", help="as in marts.anomaly_events.event_id or the alert payload")
    ack.add_argument("--by", default=None, help="who acknowledges (default: your user name)")
    ack.set_defaults(func=_cmd_alerts_ack)
    status = alerts_sub.add_parser(
        "status",
        help="alert deliveries per channel: delivered, pending (retrying), failed (gave up)",
        description="Counts core.alert_deliveries per channel and state, then lists the "
        "deliveries not delivered (failed first) with their attempts and last error.",
    )
    status.add_argument("--limit", type=_positive_int, default=20, help="undelivered to list")
    status.set_defaults(func=_cmd_alerts_status)
    return parser


def _exit_on_sigterm(signum, frame) -> None:
    # SystemExit unwinds the with-blocks, so embedded servers stop and the broker disconnects
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("amqtt", "transitions", "great_expectations"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    if not args.verbose:
        warnings.filterwarnings("ignore", module="dagster")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        message = explain_error(exc)
        if message is None or args.verbose:
            raise
        print(f"enms: {message} (--verbose shows the traceback)", file=sys.stderr)
        return 2


def explain_error(exc: BaseException) -> str | None:
    """One line for an error a user causes and can fix (a server that does not answer, a
    setting or an input file that is wrong), naming what to change; None for anything else,
    which is a bug to show with its traceback. (``dg.materialize`` re-raises an asset's own
    error, so a command that materializes assets is explained the same way.)"""
    import psycopg

    from enms_dagster.db import MigrationError
    from enms_dagster.ingest.csv_import import ImportFormatError
    from enms_dagster.plant import PlantFileError

    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, psycopg.OperationalError | psycopg.ProgrammingError) and not isinstance(
        exc, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedColumn
    ):
        return _explain_database(first)
    if isinstance(exc, PlantFileError):
        settings = Settings.from_env()
        if str(settings.plant_file) in first:
            return f"{first}; that plant file is {settings.plant_file_origin}"
        return first
    if isinstance(exc, ImportFormatError | MigrationError):
        return first
    if isinstance(exc, OSError) and exc.filename:  # a path that is missing, not ours, not a dir
        state_dir = Settings.from_env().state_dir
        path = Path(exc.filename).resolve()
        if path == state_dir or state_dir in path.parents or path in state_dir.parents:
            return (
                f"{first}; the state folder ENMS_STATE_DIR={state_dir} must be a folder this "
                "user can create and write (unset: ./.enms)"
            )
        return first
    if isinstance(exc, ConnectionError | TimeoutError):
        configured = Settings.from_env().mqtt_url
        if configured is None:
            return f"the embedded MQTT broker refused or did not answer: {first}"
        return (
            f"the MQTT broker refused or did not answer: {first}; start it there or correct "
            f"ENMS_MQTT_URL={_redact(configured)} (unset, an embedded broker starts)"
        )
    if isinstance(exc, ValueError) and type(exc) is ValueError:
        return first  # settings and URLs (enms_dagster.settings) say what is wrong and where
    return None


def _explain_database(first: str) -> str:
    """A database connection error with what to do about it."""
    configured = Settings.from_env().database_url
    if configured is None:
        return f"the embedded database refused or did not answer: {first}"
    where = f"ENMS_DATABASE_URL={_redact(configured)}"
    reason = first.rsplit(" failed: ", 1)[-1].replace("FATAL:  ", "")
    if "does not exist" in reason and reason.startswith("database"):
        return (
            f"the database server answered: {reason}; create that database (createdb) or "
            f"correct {where}"
        )
    if "Connection refused" in reason:
        return (
            f"the database server refused the connection: {first}; start PostgreSQL there or "
            f"correct {where} (unset, an embedded PostgreSQL starts)"
        )
    return f"the database refused or did not answer: {first}; check {where}"


def _redact(url: str) -> str:
    """The URL with its password replaced, for an error message."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


if __name__ == "__main__":
    sys.exit(main())
