"""Daily partitions are the local days of the plant's sites, from the plant file."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from enms_dagster.partitions import plant_timezone
from enms_dagster.plant import PlantFileError
from tests.conftest import SMALL_PLANT


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
