"""The fuzz benchmark's generator and offline check still run (so the benchmark cannot rot)."""

import datetime as dt
import importlib.util
import sys

from enms_dagster.ingest.payload import PlausibleTime
from enms_dagster.plant import load_plant
from enms_dagster.settings import DEFAULT_PLANT_FILE
from tests.conftest import TESTS_DIR

spec = importlib.util.spec_from_file_location(
    "fuzz_payloads", TESTS_DIR.parent / "benchmarks" / "fuzz_payloads.py"
)
fuzz = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = fuzz  # dataclasses look their module up there
spec.loader.exec_module(fuzz)


def test_a_small_fuzz_run_raises_nothing_and_classifies_what_it_generated():
    plant = load_plant(DEFAULT_PLANT_FILE)
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    cases = list(fuzz.Generator(plant, now, seed=7).cases(600))
    assert {c.kind for c in cases} == set(fuzz.KINDS)
    tally, _ = fuzz.run_parser(cases, fuzz.registry_of(plant), now, PlausibleTime())
    assert (tally.exceptions, tally.violations, tally.expectation_misses) == (0, 0, 0)
    assert tally.readings > 0 and tally.quarantined > 0
