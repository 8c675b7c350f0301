"""README command one, then `enms ui` on the same state, as a newcomer would: the console opens
on the demo's history and stays calm — the sensors resume after what the demo reported, so no
run is requested for a demo day and none fails — and it shows the overview, the asset graph and
an asset's plots (headless Chromium screenshots in tests/artifacts/)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import scratch_database
from tests.devtools import DevToolsPage
from tests.test_ui_chromium import (
    ARTIFACTS,
    WINDOW,
    Browser,
    assert_real_picture,
    chromium_binary,
    free_port,
)

pytestmark = pytest.mark.integration

LOCATION = "enms_dagster.definitions"
RUNS = """{ runsOrError { ... on Runs { results {
    runId status creationTime tags { key value } } } } }"""
SENSORS = """query { sensorsOrError(repositorySelector: {repositoryLocationName: "%s",
    repositoryName: "__repository__"}) { ... on Sensors { results { name
    sensorState { status ticks(limit: 10) { status skipReason error { message } } } } } } }"""


def graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        body = json.load(answer)
    assert not body.get("errors"), body["errors"]
    return body["data"]


def run_partition_days(run: dict) -> set[str]:
    tags = {t["key"]: t["value"] for t in run["tags"]}
    if "dagster/partition" in tags:
        return {tags["dagster/partition"]}
    start, end = (tags.get(f"dagster/asset_partition_range_{e}") for e in ("start", "end"))
    return days_between(start, end) if start else set()


def days_between(first: str, last: str) -> set[str]:
    """The ISO days from ``first`` to ``last``, both included."""
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return {(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)}


def wait_for_server(url: str, process: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + 240
    while True:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, "enms ui did not answer in 4 minutes"
        time.sleep(2)


def screenshot_plots(page: str, profile) -> str:
    """The asset page with its metadata drawn as plots (a toggle the URL cannot reach); the
    page's text."""
    tab = DevToolsPage(chromium_binary(), profile, WINDOW)
    try:
        tab.open(page, "Plots")
        tab.click("Plots")
        for number in ("energy_kwh", "completeness_pct", "machines"):  # numbers, not text
            tab.wait_for(
                f"document.body.innerText.includes({number!r})", 60, f"{page}: no {number}"
            )
        tab.wait_for("document.querySelectorAll('canvas').length > 0", 60, f"{page}: no plot")
        time.sleep(2)  # the charts animate in
        assert_real_picture(tab.screenshot(ARTIFACTS / "console_hourly_energy_plots.png"))
        return tab.evaluate("document.body.innerText")
    finally:
        tab.close()


def test_the_console_after_the_demo_is_calm_and_shows_the_plant(local_services, tmp_path):
    browser = Browser(chromium_binary(), tmp_path / "chromium-profile")
    state = tmp_path / "state"
    with scratch_database() as database_url:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DAGSTER_HOME", "ENMS_PLANT_FILE", "ENMS_STATE_DIR")
        }
        env |= {
            "ENMS_DATABASE_URL": database_url,
            "ENMS_MQTT_URL": local_services.mqtt_url,
            "ENMS_STATE_DIR": str(state),
        }
        demo = subprocess.run(
            [sys.executable, "-m", "enms_dagster.cli", "demo"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200,
        )  # fmt: skip
        assert demo.returncode == 0, demo.stderr[-3000:]
        assert "Traceback" not in demo.stderr, demo.stderr[-3000:]
        (history_first,) = re.findall(r"history:\s+(\S+) \.\. ", demo.stdout)
        (last,) = re.findall(r"MQTT:\s+\S+ \.\. (\S+): ", demo.stdout)
        demo_days = days_between(history_first, last)

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = tmp_path / "ui.log"
        with log.open("w") as out:
            ui = subprocess.Popen(
                [sys.executable, "-m", "enms_dagster.cli", "ui", "--port", str(port)],
                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            opened = time.time()
            try:
                wait_for_server(url, ui, log)
                # the daemon ticks each running sensor at once, the raw-readings one every
                # minute: watch until both have ticked (two raw-readings ticks), at most 5 min
                deadline = time.monotonic() + 300
                while True:
                    sensors = {
                        s["name"]: s["sensorState"]
                        for s in graphql(url, SENSORS % LOCATION)["sensorsOrError"]["results"]
                    }
                    ticks = {n: s["ticks"] for n, s in sensors.items() if s["status"] == "RUNNING"}
                    if len(ticks.get("raw_readings_sensor", [])) >= 2 and all(ticks.values()):
                        break
                    assert time.monotonic() < deadline, f"sensors did not tick: {sensors}"
                    time.sleep(10)
                runs = graphql(url, RUNS)["runsOrError"]["results"]
                shots = {
                    "console_overview.png": f"{url}/overview",
                    "console_runs.png": f"{url}/runs",
                    "console_asset_graph.png": f"{url}/asset-groups",
                }
                for name, page in shots.items():
                    assert_real_picture(browser.screenshot(page, name))
                plotted = screenshot_plots(f"{url}/assets/hourly_energy", tmp_path / "devtools")
            finally:
                os.killpg(ui.pid, signal.SIGTERM)
                try:
                    ui.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(ui.pid, signal.SIGKILL)
                    ui.wait()

    for name, ticked in ticks.items():
        failed = [t for t in ticked if t["status"] == "FAILURE"]
        assert not failed, f"{name}: {failed}"
    # the demo's own runs are in the console's history, every one a success
    assert runs and all(r["status"] == "SUCCESS" for r in runs if r["creationTime"] < opened)
    later = [r for r in runs if r["creationTime"] >= opened]
    assert not [r for r in later if r["status"] == "FAILURE"], later
    for run in later:
        tags = {t["key"]: t["value"] for t in run["tags"]}
        if "dagster/schedule_name" in tags:
            continue  # a schedule's tick is the live plant's clock, not a replay
        assert not run_partition_days(run) & demo_days, f"a demo day was run again: {tags}"
    assert "Never materialized" not in plotted
