"""The plant registry is data: any machine type, validated with messages that say where."""

import re

import pytest
import yaml

from enms_dagster.plant import PlantFileError, is_production_time, load_plant, parse_plant
from enms_dagster.settings import DEFAULT_PLANT_FILE


def _doc(**overrides):
    doc = {
        "sites": [{"site_id": "s1", "timezone": "Europe/Berlin", "commissioned_on": "2025-01-01"}],
        "machine_types": {"meter": {"sample_interval_s": 900}},
        "metrics": {"energy_kwh_interval": {"unit": "kWh", "kind": "interval"}},
        "machines": [{"machine_id": "M-1", "site": "s1", "type": "meter"}],
    }
    doc.update(overrides)
    return doc


def test_reference_plant_has_four_machines_of_each_simulated_type_and_a_weather_station():
    plant = load_plant(DEFAULT_PLANT_FILE)
    types = [m.machine_type for m in plant.machines.values()]
    for kind in ("compressor", "hvac", "conveyor_motor", "hydraulic_pump", "injection_moulding"):
        assert types.count(kind) == 4, kind
    assert types.count("weather_station") == 1
    assert plant.machine_types["compressor"].sample_interval_s == 1
    assert plant.machine_types["hydraulic_pump"].sample_interval_s == 30
    assert plant.metrics["energy_kwh_total"].kind == "counter"


def test_a_generic_meter_type_needs_no_code():
    plant = parse_plant(_doc())
    assert plant.machines["M-1"].machine_type == "meter"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"machines": [{"machine_id": "M-1", "site": "nowhere", "type": "meter"}]},
            "machines[0] (M-1): unknown site 'nowhere'",
        ),
        (
            {"machines": [{"machine_id": "M-1", "site": "s1", "type": "kettle"}]},
            "unknown machine type 'kettle'",
        ),
        (
            {
                "sites": [
                    {"site_id": "s1", "timezone": "Mars/Olympus", "commissioned_on": "2025-01-01"}
                ]
            },
            "unknown time zone 'Mars/Olympus'",
        ),
        ({"metrics": {"x": {"unit": "kWh", "kind": "cumulative"}}}, "metric 'x' has kind"),
        ({"machines": [{"site": "s1", "type": "meter"}]}, "missing required field 'machine_id'"),
        (
            {
                "machines": [
                    {"machine_id": "M-1", "site": "s1", "type": "meter", "rated_power_kw": "75kW"}
                ]
            },
            "machines[0] (M-1): rated_power_kw: '75kW' is not a number",
        ),
        (
            {
                "machines": [
                    {"machine_id": "M-1", "site": "s1", "type": "meter", "rated_power_kw": -5}
                ]
            },
            "rated_power_kw: -5 must be above 0",
        ),
        ({"machine_types": {"meter": {"sample_interval_s": 0.5}}}, "must be a whole number"),
        ({"machine_types": {"meter": {"sample_interval_s": "1 min"}}}, "is not a number"),
        (
            {"metrics": {"x": {"unit": "kW", "kind": "gauge", "max": ".inf"}}},
            "metric 'x' max: '.inf' is not a number",
        ),
        ({"history_start": "2016-13-01"}, "history_start: '2016-13-01' is not a date"),
        ({"history_start": 2016}, "history_start: 2016 is not a date"),
        ({"history_start": "9999-01-01"}, "history_start: 9999-01-01 is in the future"),
    ],
)
def test_bad_plant_files_are_refused_with_the_offending_entry_named(change, expected):
    with pytest.raises(PlantFileError, match=re.escape(expected)):
        parse_plant(_doc(**change), "plant.yaml")


def test_history_start_is_an_optional_first_day_of_data():
    assert parse_plant(_doc()).history_start is None
    assert str(parse_plant(_doc(history_start="2016-03-01")).history_start) == "2016-03-01"
    assert yaml.safe_load("history_start: 2016-03-01")["history_start"] == (
        parse_plant(_doc(history_start="2016-03-01")).history_start
    )  # YAML's own date and the quoted text mean the same day


def test_duplicate_machine_ids_are_refused(tmp_path):
    doc = _doc(machines=[{"machine_id": "M-1", "site": "s1", "type": "meter"}] * 2)
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(PlantFileError, match="duplicate machine_id 'M-1'"):
        load_plant(path)


def test_missing_plant_file_says_which(tmp_path):
    with pytest.raises(PlantFileError, match="plant file not found"):
        load_plant(tmp_path / "absent.yaml")


def test_production_time_follows_shifts_weekends_and_holidays():
    import datetime as dt

    site = load_plant(DEFAULT_PLANT_FILE).sites["plant-a"]
    tue = dt.datetime(2026, 3, 10, 7, 0, tzinfo=site.zone)
    assert is_production_time(site, tue)
    assert not is_production_time(site, tue.replace(hour=5))
    assert not is_production_time(site, tue.replace(hour=22))
    assert not is_production_time(site, dt.datetime(2026, 3, 14, 10, tzinfo=site.zone))  # Sat
    assert not is_production_time(site, dt.datetime(2026, 5, 1, 10, tzinfo=site.zone))  # holiday
