"""`enms` says what each command does and refuses bad arguments clearly."""

import subprocess
import sys

import pytest


def enms(*args):
    return subprocess.run(
        [sys.executable, "-m", "enms_dagster.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        ((), "ENMS_DATABASE_URL"),
        (("db", "migrate"), "pending migrations"),
        (("demo",), "publishes simulated telemetry"),
        (("ui",), "dagster dev"),
        (("ingest",), "acknowledging only after commit"),
        (("simulate",), "--realtime"),
    ],
)
def test_help_says_what_each_command_does(args, phrase):
    done = enms(*args, "--help")
    assert done.returncode == 0
    assert phrase in " ".join(done.stdout.split())


def test_a_bad_day_count_is_refused_before_anything_starts():
    done = enms("demo", "--days", "0")
    assert done.returncode == 2
    assert "must be at least 1" in done.stderr
