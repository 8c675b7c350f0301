"""What a run costs in the Dagster console: a one-day ``energy_job`` launched through the
instance's run launcher, as the UI launches it, against the same job executed in-process in the
same run; and the cold import of the code location against the cold import of dagster.

    .venv/bin/python benchmarks/bench_console.py [--runs 2] [--imports 7]

Creates a scratch database on the server in ENMS_BENCH_PG_DSN (default the local PostgreSQL),
registers the reference plant and lands one day of it at its native sampling with
``backfill_direct``, and starts a throw-away Dagster instance (a temporary DAGSTER_HOME). The
launched run goes the UI's way: a code server loaded from ``enms_dagster.definitions`` (as
``dagster dev`` starts it), ``instance.submit_run`` straight to the default run launcher (no daemon
to dequeue), a new run process that imports the code location and runs the job with its executor.
The reference is ``execute_in_process`` of the same job (what ``dg.materialize`` does) in a fresh
interpreter, timed from its start, so both sides pay a new process, dagster, the code location and
the steps' libraries and the ratio is the cost of the launcher's way (code server, run worker);
``execute_in_process`` in this warm process is printed beside it. Launched and in-process runs
alternate; the medians are compared. The import figures come from fresh interpreters,
alternating, medians.

Targets (exit status 1 when one is missed): launched ÷ in-process ≤ 1.5; cold import of
``enms_dagster.definitions`` ≤ 2 × cold import of ``dagster``. Also printed: building the
definitions (``defs()``) after the import, which is what a code server does on a cold start.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from history import scratch_database  # noqa: E402

from enms_dagster.db import connect  # noqa: E402
from enms_dagster.plant import load_plant  # noqa: E402
from enms_dagster.plant.store import save_plant  # noqa: E402
from enms_dagster.settings import DEFAULT_PLANT_FILE  # noqa: E402
from enms_dagster.simulator.backfill import backfill_direct  # noqa: E402

ADMIN_DSN = os.environ.get("ENMS_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
DAY = dt.date(2026, 1, 6)  # a Tuesday of the reference plant (Europe/Berlin)
JOB = "energy_job"
LOCATION = "enms"
RUN_TARGET = 1.5
IMPORT_TARGET = 2.0
TIMEOUT_S = 900

_TIMED = """
import time
import warnings
began = time.perf_counter()
import {module}
imported = time.perf_counter() - began
{then}
print(imported, time.perf_counter() - began)
"""


def cold_seconds(module: str, then: str = "") -> tuple[float, float]:
    """(import seconds, seconds with ``then`` too) in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", _TIMED.format(module=module, then=then)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    imported, total = done.stdout.split()
    return float(imported), float(total)


def import_figures(repetitions: int) -> dict[str, float]:
    dagster, definitions, loaded = [], [], []
    for _ in range(repetitions):
        dagster.append(cold_seconds("dagster")[0])
        imported, built = cold_seconds(
            "enms_dagster.definitions", "enms_dagster.definitions.defs()"
        )
        definitions.append(imported)
        loaded.append(built)
    return {
        "dagster": statistics.median(dagster),
        "definitions": statistics.median(definitions),
        "defs_loaded": statistics.median(loaded),
    }


def land_one_day(url: str) -> str:
    plant = load_plant(DEFAULT_PLANT_FILE)
    zone = next(iter(plant.sites.values())).timezone
    start = dt.datetime.combine(DAY, dt.time(), tzinfo=ZoneInfo(zone))
    began = time.monotonic()
    with connect(url, autocommit=True) as conn:
        save_plant(conn, plant)
    landed = backfill_direct(plant, start.astimezone(dt.UTC), start + dt.timedelta(days=1), url)
    return f"{landed.readings:,} readings of {DAY} landed in {time.monotonic() - began:.0f} s"


def launch_and_wait(instance, workspace_context, run_config: dict) -> tuple[float, str]:
    """Create the run from the code server's view of the job, submit it as the UI does and wait
    for it to finish: (seconds from submit to finish, final status)."""
    import dagster as dg
    from dagster._core.definitions.selector import JobSubsetSelector

    context = workspace_context.create_request_context()
    location = context.get_code_location(LOCATION)
    (repo,) = location.get_repositories().values()
    remote_job = location.get_job(
        JobSubsetSelector(
            location_name=LOCATION, repository_name=repo.name, job_name=JOB, op_selection=None
        )
    )
    tags = {**remote_job.tags, "dagster/partition": DAY.isoformat()}
    plan = location.get_execution_plan(
        remote_job, run_config, step_keys_to_execute=None, known_state=None, instance=instance
    )
    run = instance.create_run(
        job_name=JOB,
        run_id=None,
        run_config=run_config,
        resolved_op_selection=None,
        step_keys_to_execute=plan.execution_plan_snapshot.step_keys_to_execute,
        op_selection=None,
        status=None,
        root_run_id=None,
        parent_run_id=None,
        tags=tags,
        job_snapshot=remote_job.job_snapshot,
        execution_plan_snapshot=plan.execution_plan_snapshot,
        parent_job_snapshot=remote_job.parent_job_snapshot,
        remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(),
        asset_selection=None,
        asset_check_selection=None,
        asset_graph=repo.asset_graph,
    )
    began = time.monotonic()
    instance.submit_run(run.run_id, context)
    while time.monotonic() - began < TIMEOUT_S:
        status = instance.get_run_by_id(run.run_id).status
        if status in (
            dg.DagsterRunStatus.SUCCESS,
            dg.DagsterRunStatus.FAILURE,
            dg.DagsterRunStatus.CANCELED,
        ):
            return time.monotonic() - began, status.value
        time.sleep(0.2)
    return time.monotonic() - began, f"TIMEOUT ({status.value})"


def run_in_process(instance, run_config: dict) -> tuple[float, str]:
    from enms_dagster.definitions import defs

    job = defs().resolve_job_def(JOB)
    began = time.monotonic()
    result = job.execute_in_process(
        instance=instance,
        partition_key=DAY.isoformat(),
        run_config=run_config,
        raise_on_error=False,
    )
    return time.monotonic() - began, "SUCCESS" if result.success else "FAILURE"


_IN_PROCESS = """
import warnings
warnings.simplefilter("ignore")
from enms_dagster.definitions import defs
import dagster as dg
result = defs().resolve_job_def({job!r}).execute_in_process(
    instance=dg.DagsterInstance.get(), partition_key={day!r}, run_config={config!r},
    raise_on_error=False,
)
print("SUCCESS" if result.success else "FAILURE")
"""


def run_in_fresh_process(run_config: dict) -> tuple[float, str]:
    """The same in-process execution in a fresh interpreter, timed from its start: what a run
    process pays too (the interpreter, dagster, the code location, the steps' libraries), without
    the launcher's way there (code server, run worker)."""
    code = _IN_PROCESS.format(job=JOB, day=DAY.isoformat(), config=run_config)
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=TIMEOUT_S
    )
    seconds = time.monotonic() - began
    status = done.stdout.strip().splitlines()[-1] if done.returncode == 0 else "FAILURE"
    return seconds, status


def run_figures(url: str, runs: int, launch_config: dict) -> dict[str, list]:
    import dagster as dg
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import ModuleTarget

    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    figures: dict[str, list] = {"launched": [], "in_process": [], "fresh": [], "statuses": []}
    with tempfile.TemporaryDirectory(prefix="enms_bench_dagster_") as home:
        # the default coordinator queues runs for the daemon, which then calls the run launcher;
        # without a daemon here, submit_run goes to the launcher directly
        Path(home, "dagster.yaml").write_text(
            "telemetry:\n  enabled: false\nrun_coordinator:\n"
            "  module: dagster._core.run_coordinator\n  class: DefaultRunCoordinator\n"
        )
        os.environ.update(
            DAGSTER_HOME=home,
            ENMS_DATABASE_URL=url,
            ENMS_PLANT_FILE=str(DEFAULT_PLANT_FILE),
            # the code server and run processes import this checkout's package
            PYTHONWARNINGS="ignore",  # Dagster's beta and preview notices, once per asset
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        )
        with dg.DagsterInstance.get() as instance:
            target = ModuleTarget(
                module_name="enms_dagster.definitions",
                attribute=None,
                working_directory=str(REPO),
                location_name=LOCATION,
            )
            with WorkspaceProcessContext(
                instance, target, code_server_log_level="WARNING"
            ) as workspace_context:
                for i in range(runs):
                    seconds, status = run_in_process(instance, quiet)
                    figures["in_process"].append(seconds)
                    figures["statuses"].append(status)
                    print(f"  run {i + 1}: in-process {seconds:6.1f} s  {status}", flush=True)
                    seconds, status = run_in_fresh_process(quiet)
                    figures["fresh"].append(seconds)
                    figures["statuses"].append(status)
                    print(f"  run {i + 1}: fresh      {seconds:6.1f} s  {status}", flush=True)
                    seconds, status = launch_and_wait(
                        instance, workspace_context, {**quiet, **launch_config}
                    )
                    figures["launched"].append(seconds)
                    figures["statuses"].append(status)
                    print(f"  run {i + 1}: launched   {seconds:6.1f} s  {status}", flush=True)
    return figures


def main() -> int:
    warnings.simplefilter("ignore")  # Dagster's beta and preview notices, once per asset
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="launched and in-process runs each")
    parser.add_argument("--imports", type=int, default=7, help="cold imports of each module")
    parser.add_argument(
        "--launch-config",
        default="{}",
        help="JSON run config added to the launched run, e.g. "
        '\'{"execution": {"config": {"multiprocess": {}}}}\' for a job on the default executor',
    )
    args = parser.parse_args()

    print(f"cold imports, {args.imports} fresh interpreters each (medians):", flush=True)
    imports = import_figures(args.imports)
    import_ratio = imports["definitions"] / imports["dagster"]
    print(f"  import dagster                   {imports['dagster']:5.2f} s")
    print(f"  import enms_dagster.definitions  {imports['definitions']:5.2f} s")
    print(f"  ... and defs() (code server)     {imports['defs_loaded']:5.2f} s")

    print(f"one-day {JOB} ({DAY}), {args.runs} runs each way:", flush=True)
    with scratch_database(ADMIN_DSN) as url:
        print(f"  {land_one_day(url)}", flush=True)
        runs = run_figures(url, args.runs, json.loads(args.launch_config))
    launched = statistics.median(runs["launched"])
    in_process = statistics.median(runs["in_process"])
    fresh = statistics.median(runs["fresh"])
    run_ratio = launched / fresh

    print()
    print(f"import ratio  definitions ÷ dagster  {import_ratio:5.2f}  (target ≤ {IMPORT_TARGET})")
    print(
        f"run ratio     launched ÷ in-process  {run_ratio:5.2f}  (target ≤ {RUN_TARGET}; "
        f"{launched:.1f} s ÷ {fresh:.1f} s, each in a new process)"
    )
    print(
        f"              launched ÷ in-process in this warm process  {launched / in_process:5.2f}"
        f"  ({launched:.1f} s ÷ {in_process:.1f} s; libraries already imported after run 1)"
    )
    failed = [s for s in runs["statuses"] if s != "SUCCESS"]
    missed = []
    if failed:
        missed.append(f"{len(failed)} run(s) did not succeed")
    if import_ratio > IMPORT_TARGET:
        missed.append("import ratio")
    if run_ratio > RUN_TARGET:
        missed.append("run ratio")
    print("MISSED: " + ", ".join(missed) if missed else "both targets met")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
