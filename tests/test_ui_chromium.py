"""The operations console and the energy report as a person sees them, in headless Chromium.

A real ``dagster-webserver`` serves this project's definitions from a temporary DAGSTER_HOME
(SQLite storage) over the simulated history; the baseline and report assets are materialized
in-process into the same instance first, so their pages have metadata to show. Chromium loads
the pages (``--dump-dom`` for assertions, ``--screenshot`` for tests/artifacts/, kept by CI)
and renders the report file. The Dagster UI is a JS app: each page gets a virtual-time budget
and is polled until the expected text appears.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml
from PIL import Image

from tests.conftest import COARSE_PLANT, TESTS_DIR, local_server_missing

pytestmark = pytest.mark.integration

REPO = TESTS_DIR.parent
ARTIFACTS = TESTS_DIR / "artifacts"
BASELINE_END = dt.date(2026, 3, 5)  # the last day before IMM-01's 10 % saving
WINDOW = (1400, 900)


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    local_server_missing("chromium is not installed (Debian: apt-get install -y chromium)")
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Browser:
    binary: str
    profile: Path

    def _run(self, url: str, *args: str, budget_ms: int, height: int = WINDOW[1]) -> str:
        done = subprocess.run(
            [
                self.binary,
                "--headless=new",
                "--no-sandbox",  # tests run as root in CI containers
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--no-first-run",
                f"--user-data-dir={self.profile}",
                f"--window-size={WINDOW[0]},{height}",
                f"--virtual-time-budget={budget_ms}",
                *args,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    def dom_containing(
        self, url: str, texts: list[str], height: int = WINDOW[1], attempts: int = 4
    ) -> str:
        """The rendered DOM once every text is in it (the app may still be fetching). Lists are
        virtualized: give a window tall enough for every row asked for."""
        for attempt in range(attempts):
            dom = self._run(url, "--dump-dom", budget_ms=15000 + 10000 * attempt, height=height)
            missing = [t for t in texts if t not in dom]
            if not missing:
                return dom
        raise AssertionError(f"{url}: never showed {missing}")

    def screenshot(self, url: str, name: str, height: int = WINDOW[1]) -> Path:
        path = ARTIFACTS / name
        path.unlink(missing_ok=True)
        self._run(url, f"--screenshot={path}", budget_ms=15000, height=height)
        return path


def assert_real_picture(path: Path, size: tuple[int, int] = WINDOW) -> None:
    """A PNG of the window's size that shows something: many colours, none covering it all."""
    assert path.exists() and path.stat().st_size > 10_000, path
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == size
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert len(colours) > 64, f"{path}: {len(colours)} colours"
    assert max(n for n, _ in colours) < 0.95 * size[0] * size[1], f"{path} is mostly one colour"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plant_file_with_baseline_until(path: Path, end: dt.date) -> Path:
    """The coarse plant with every machine's and site's baseline period ending on ``end``."""
    doc = yaml.safe_load(COARSE_PLANT.read_text())
    for entry in [*doc["sites"], *doc["machines"]]:
        entry["baseline"] = {"end": end.isoformat()}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@dataclass(frozen=True)
class Console:
    url: str
    report: Path


@pytest.fixture(scope="session")
def browser(tmp_path_factory) -> Browser:
    """Headless Chromium; without it these tests skip (fail in CI) before any set-up."""
    ARTIFACTS.mkdir(exist_ok=True)
    return Browser(chromium_binary(), tmp_path_factory.mktemp("chromium-profile"))


@pytest.fixture(scope="module")
def console(browser, baseline_history, tmp_path_factory) -> Iterator[Console]:
    """dagster-webserver on the project's definitions, over an instance holding real
    materializations of energy_baselines, energy_performance and energy_report."""
    from enms_dagster.assets.baselines import energy_baselines, energy_performance
    from enms_dagster.assets.report import energy_report
    from enms_dagster.resources import PlantResource, WarehouseResource

    tmp = tmp_path_factory.mktemp("ui")
    home, state = tmp / "dagster_home", tmp / "state"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"  # no welcome dialog
    )
    plant_file = plant_file_with_baseline_until(tmp / "plant.yaml", BASELINE_END)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ENMS_DATABASE_URL": baseline_history.database_url,
        "ENMS_STATE_DIR": str(state),
        "ENMS_PLANT_FILE": str(plant_file),
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENMS_STATE_DIR", str(state))  # where the report asset writes
        result = dg.materialize(
            [energy_baselines, energy_performance, energy_report],
            instance=dg.DagsterInstance.from_config(str(home)),
            resources={
                "warehouse": WarehouseResource(database_url=baseline_history.database_url),
                "plant": PlantResource(plant_file=str(plant_file)),
            },
            run_config={
                "ops": {
                    "energy_baselines": {"config": {"resolutions": ["daily"], "reason": "UI test"}}
                }
            },
        )
    assert result.success
    (report,) = sorted((state / "reports").glob("energy_report_plant-a_*.html"))

    port = free_port()
    log = (tmp / "webserver.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-m", "enms_dagster.definitions",
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, (tmp / "webserver.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{url}/server_info", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "dagster-webserver did not answer in 3 minutes"
            time.sleep(1)
        yield Console(url, report)
    finally:
        # the webserver and the code server it started share the session we gave it
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def test_the_catalog_lists_every_asset_of_the_definitions(console, browser):
    from enms_dagster.definitions import defs

    graph = defs().resolve_asset_graph()
    keys = sorted(
        k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).is_materializable
    )
    browser.dom_containing(f"{console.url}/assets", keys, height=70 * len(keys) + 300)
    assert_real_picture(browser.screenshot(f"{console.url}/assets", "ui_assets.png"))


def test_the_analytics_lineage_shows_the_baselines(console, browser):
    page = f"{console.url}/locations/enms_dagster.definitions/asset-groups/analytics"
    browser.dom_containing(page, ["energy_baselines", "energy_performance", "hourly_drivers"])
    assert_real_picture(browser.screenshot(page, "ui_baselines_lineage.png"))


def test_an_asset_page_shows_the_metadata_of_its_materialization(console, browser):
    page = f"{console.url}/assets/energy_baselines"
    dom = browser.dom_containing(
        page, ["models_fitted", "models_valid", "site_actual_vs_expected", "UI test"]
    )
    assert "Never materialized" not in dom
    assert_real_picture(browser.screenshot(page, "ui_energy_baselines.png"))


def test_the_report_materialization_links_the_file_and_shows_its_charts(console, browser):
    page = f"{console.url}/assets/energy_report?view=events"
    dom = browser.dom_containing(
        page, ["report_plant-a", "energy_by_machine_plant-a", "cusum_plant-a", console.report.name]
    )
    # the CUSUM chart (a PNG) sits behind "[Show Markdown]" (the UI folds long Markdown); the
    # summary and energy by machine are Dagster tables
    assert dom.count("[Show Markdown]") >= 1
    assert "out-of-hours %" in dom
    assert_real_picture(browser.screenshot(page, "ui_energy_report_events.png"))


def test_the_report_file_renders_offline_with_every_section(console, browser):
    from enms_dagster.report.html import SECTIONS

    page = console.report.as_uri()
    dom = browser.dom_containing(page, [f'id="{key}"' for key in SECTIONS])
    for drawn in ('class="sankey"', 'class="trend"', 'class="machines"', 'class="cusum"'):
        assert drawn in dom
    assert_real_picture(browser.screenshot(page, "report_first_screen.png"))
    assert_real_picture(
        browser.screenshot(page, "report_full.png", height=3000), size=(WINDOW[0], 3000)
    )
