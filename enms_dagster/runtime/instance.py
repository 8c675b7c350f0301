"""The local Dagster instance shared by ``enms demo`` and ``enms ui``: one history (runs,
materializations, check results, sensor cursors) under the state folder, with a run queue sized
for one workstation, so the console opens on what the demo did instead of redoing it."""

from __future__ import annotations

import os
from pathlib import Path

from enms_dagster.settings import Settings

MANAGED_MARKER = "# Managed by enms"
LEGACY_CONFIG = "telemetry:\n  enabled: false\n"  # what earlier versions wrote

# Runs wait in a queue that `dagster dev`'s daemon drains, at most two at a time: this is a
# workstation, and a backfill of every landed day must not start dozens of runs at once (the
# code server then stops answering and runs fail as "code location unreachable").
LOCAL_DAGSTER_YAML = f"""{MANAGED_MARKER} (enms_dagster/runtime/instance.py): rewritten on every `enms demo`
# and `enms ui`. To keep your own settings, point DAGSTER_HOME at another folder.
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator

concurrency:
  runs:
    max_concurrent_runs: 2

code_servers:
  # seconds `dagster dev` waits for the code location to load on a busy machine
  local_startup_timeout: 180

retention:
  schedule:
    purge_after_days: 30
  sensor:
    purge_after_days:
      skipped: 2
      failure: 30
      success: -1

telemetry:
  enabled: false

nux:
  enabled: false  # no welcome dialog over the console
"""  # noqa: E501


def local_dagster_home(settings: Settings) -> Path:
    """``DAGSTER_HOME``: the environment's if set (left as it is), else ``<state>/dagster_home``
    with the local instance configuration written there (and exported to this process and its
    children)."""
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"])
    home = settings.state_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    write_local_config(home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def write_local_config(path: Path) -> bool:
    """Write the local instance configuration unless the file is someone's own; return whether
    it was (re)written."""
    if path.exists():
        text = path.read_text()
        if text == LOCAL_DAGSTER_YAML:
            return False
        if not (text.startswith(MANAGED_MARKER) or text == LEGACY_CONFIG):
            return False  # edited by hand: theirs
    path.write_text(LOCAL_DAGSTER_YAML)
    return True
