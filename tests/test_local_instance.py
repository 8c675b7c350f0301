"""The local Dagster instance of `enms demo` and `enms ui`: one folder, a bounded run queue, and
a configuration file that is ours to rewrite but never someone's own."""

import dagster as dg

from enms_dagster.runtime.instance import (
    LEGACY_CONFIG,
    LOCAL_DAGSTER_YAML,
    local_dagster_home,
    write_local_config,
)
from enms_dagster.settings import Settings


def test_the_local_instance_queues_runs_two_at_a_time(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    settings = Settings(None, None, tmp_path / "state", tmp_path / "plant.yaml")
    home = local_dagster_home(settings)
    assert home == tmp_path / "state" / "dagster_home"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        coordinator = instance.run_coordinator
        assert type(coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 2
        assert instance.code_server_settings.get("local_startup_timeout") == 180
        assert not instance.telemetry_enabled


def test_a_dagster_home_from_the_environment_is_left_alone(tmp_path, monkeypatch):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(theirs))
    settings = Settings(None, None, tmp_path / "state", tmp_path / "plant.yaml")
    assert local_dagster_home(settings) == theirs
    assert not (theirs / "dagster.yaml").exists()


def test_earlier_and_managed_files_are_rewritten_but_a_hand_written_one_is_kept(tmp_path):
    path = tmp_path / "dagster.yaml"
    assert write_local_config(path) and path.read_text() == LOCAL_DAGSTER_YAML
    assert not write_local_config(path)  # already current
    path.write_text(LEGACY_CONFIG)  # what the demo wrote before run limits existed
    assert write_local_config(path) and path.read_text() == LOCAL_DAGSTER_YAML
    own = "run_launcher:\n  module: dagster\n  class: DefaultRunLauncher\n"
    path.write_text(own)
    assert not write_local_config(path) and path.read_text() == own
