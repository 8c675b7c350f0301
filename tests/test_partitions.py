"""Daily partitions are the local days of the plant's sites, from the plant file, beginning at
the plant's first day of data."""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import psycopg
import pytest

from enms_dagster.db import connect, migrate
from enms_dagster.definitions import defs as load_definitions
from enms_dagster.ingest.csv_import import import_csv
from enms_dagster.ingest.payload import PlausibleTime
from enms_dagster.partitions import history_start, plant_timezone
from enms_dagster.plant import PlantFileError, load_plant
from enms_dagster.plant.store import save_plant
from tests.conftest import SMALL_PLANT, scratch_database


def plant_in(tmp_path: Path, *zones: str) -> Path:
    """The small test plant with its site in ``zones[0]`` and a copy of it in each other zone."""
    text = SMALL_PLANT.read_text()
    site = text[text.index("  - site_id: plant-a") : text.index("\nmachine_types:")]
    sites = [site.replace("Europe/Berlin", zones[0])]
    for i, zone in enumerate(zones[1:], start=2):
        sites.append(
            site.replace("Europe/Berlin", zone).replace("site_id: plant-a", f"site_id: p{i}")
        )
    path = tmp_path / "plant.yaml"
    path.write_text(text.replace(site, "\n".join(sites)))
    return path


def test_the_days_are_those_of_the_plant_files_sites(tmp_path):
    assert plant_timezone({}) == "Europe/Berlin"  # the reference plant
    path = plant_in(tmp_path, "America/New_York")
    assert plant_timezone({"ENMS_PLANT_FILE": str(path)}) == "America/New_York"


def test_sites_in_two_time_zones_cannot_share_daily_partitions(tmp_path):
    path = plant_in(tmp_path, "Europe/Berlin", "America/New_York")
    with pytest.raises(PlantFileError, match="America/New_York, Europe/Berlin"):
        plant_timezone({"ENMS_PLANT_FILE": str(path)})


def test_the_code_location_partitions_and_schedules_follow_the_plant_file(tmp_path):
    path = plant_in(tmp_path, "America/New_York")
    probe = (
        "from enms_dagster.definitions import defs; "
        "d = defs(); "
        "print(d.get_assets_def('hourly_energy').partitions_def.timezone, "
        "d.resolve_schedule_def('hourly_schedule').execution_timezone)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "ENMS_PLANT_FILE": str(path)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["America/New_York", "America/New_York"]


def test_importing_the_definitions_reads_no_plant_file_building_them_names_it(tmp_path):
    missing = tmp_path / "no-such-plant.yaml"
    probe = (
        "import sys; import enms_dagster.definitions as d; print('imported'); "
        "heavy = {'sklearn', 'matplotlib', 'scipy', 'prophet', 'statsmodels', "
        "'great_expectations'} & set(sys.modules); print(sorted(heavy)); d.defs()"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "ENMS_PLANT_FILE": str(missing)},
    )
    assert done.stdout.split("\n")[:2] == ["imported", "[]"], done.stderr
    assert done.returncode != 0
    assert "PlantFileError" in done.stderr and str(missing) in done.stderr


UNREACHABLE = "postgresql://postgres@127.0.0.1:1/enms"  # nothing listens on port 1


def test_the_plant_files_history_start_is_the_first_partition(tmp_path):
    path = tmp_path / "plant.yaml"
    path.write_text(f"history_start: 2016-03-01\n{SMALL_PLANT.read_text()}")
    env = {"ENMS_PLANT_FILE": str(path), "ENMS_DATABASE_URL": UNREACHABLE}
    assert history_start("Europe/Berlin", env) == dt.date(2016, 3, 1)


def test_a_warehouse_that_does_not_answer_falls_back_to_the_readings_max_age(monkeypatch):
    env = {"ENMS_DATABASE_URL": UNREACHABLE, "ENMS_READINGS_MAX_AGE_DAYS": "30"}
    today = dt.date(2026, 12, 4)
    assert history_start("Europe/Berlin", env, today) == dt.date(2026, 11, 4)
    assert history_start("Europe/Berlin", {"ENMS_READINGS_MAX_AGE_DAYS": "30"}, today) == (
        dt.date(2026, 11, 4)
    )  # no warehouse configured at all
    # and the code location still loads
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ENMS_PLANT_FILE", raising=False)
    days = load_definitions().get_assets_def("hourly_energy").partitions_def
    assert days.start.date() <= dt.date.today() - dt.timedelta(days=29)


def meter_history_csv(path: Path, first: dt.date, days: int) -> Path:
    """Quarter-hour interval energy of the small plant's meter, 1 kWh each, in Berlin time."""
    lines = ["ts,machine,metric,value"]
    start = dt.datetime.combine(first, dt.time(), ZoneInfo("Europe/Berlin"))
    for i in range(1, days * 96 + 1):
        ts = (start + dt.timedelta(minutes=15 * i)).astimezone(ZoneInfo("Europe/Berlin"))
        lines.append(f"{ts.isoformat()},MTR-01,energy_kwh_interval,1.0")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.integration
def test_2016_history_imported_gets_partitions_and_its_hourly_energy(
    local_services, tmp_path, monkeypatch
):
    plant_file = tmp_path / "plant.yaml"  # the small plant, in service since 2015
    plant_file.write_text(
        SMALL_PLANT.read_text().replace("commissioned_on: 2025", "commissioned_on: 2015")
    )
    with scratch_database() as conninfo:
        url = psycopg.conninfo.conninfo_to_dict(conninfo)
        url = f"postgresql://postgres@127.0.0.1:5432/{url['dbname']}"
        migrate(url)
        monkeypatch.setenv("ENMS_DATABASE_URL", url)
        monkeypatch.setenv("ENMS_PLANT_FILE", str(plant_file))
        monkeypatch.setenv("ENMS_READINGS_MAX_AGE_DAYS", "30")
        today = dt.date(2026, 12, 4)
        assert history_start("Europe/Berlin", today=today) == dt.date(2026, 11, 4)  # empty

        with connect(url, autocommit=True) as conn:
            save_plant(conn, load_plant(plant_file))
            csv = meter_history_csv(tmp_path / "meter-2016.csv", dt.date(2016, 3, 1), 2)
            since = PlausibleTime(since=dt.datetime(2016, 1, 1, tzinfo=dt.UTC))
            imported = import_csv(conn, csv, window=since)
            assert imported.inserted == 2 * 96

        definitions = load_definitions()
        days = definitions.get_assets_def("hourly_energy").partitions_def
        assert days.get_first_partition_key() == "2016-03-01"
        result = dg.materialize(
            definitions.assets,
            selection=["hourly_energy"],
            partition_key="2016-03-01",
            resources=definitions.resources,
            instance=dg.DagsterInstance.ephemeral(),
        )
        assert result.success
        with connect(url) as conn:
            hours, kwh = conn.execute(
                "SELECT count(*), sum(energy_kwh) FROM core.hourly_energy "
                "WHERE machine_id = 'MTR-01' AND local_date = '2016-03-01'"
            ).fetchone()
        assert hours == 24 and kwh == pytest.approx(96.0)
        metadata = result.asset_materializations_for_node("hourly_energy")[0].metadata
        assert (metadata["rows"].value, metadata["machines"].value) == (24, 1)
        assert metadata["energy_kwh"].value == pytest.approx(96.0)
        assert metadata["completeness_pct"].value > 0
