"""The demo's plant file: the plant sampled once a minute, derived again from its origin when the
state folder hands the demo its own file back."""

from enms_dagster.plant import load_plant
from enms_dagster.runtime.demo import DEMO_SAMPLE_INTERVAL_S, demo_plant_file
from enms_dagster.settings import DEFAULT_PLANT_FILE


def test_the_demo_plant_samples_every_machine_once_a_minute(tmp_path):
    path = demo_plant_file(DEFAULT_PLANT_FILE, tmp_path)
    plant = load_plant(path)
    assert {t.sample_interval_s for t in plant.machine_types.values()} == {DEMO_SAMPLE_INTERVAL_S}
    assert len(plant.machines) == len(load_plant(DEFAULT_PLANT_FILE).machines)


def test_given_its_own_file_back_the_demo_plant_stays_the_same(tmp_path):
    first = demo_plant_file(DEFAULT_PLANT_FILE, tmp_path).read_text()
    again = demo_plant_file(tmp_path / "demo_plant.yaml", tmp_path).read_text()
    assert again == first
    assert first.startswith(f"# {DEFAULT_PLANT_FILE}, sampled every")
