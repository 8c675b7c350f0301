"""`enms` says what each command does and refuses bad arguments clearly: a misconfiguration is
one line on stderr naming the cause and what to do, exit code 2, never a traceback."""

import os
import subprocess
import sys

import pytest

from tests.conftest import SMALL_PLANT

CLOSED_PORT = "postgresql://enms:s3cret@127.0.0.1:1/enms"


def enms(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "enms_dagster.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def with_env(**settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENMS_")}
    return {**env, **settings}


def assert_one_line(done, *phrases, after=0):
    """Exit 2 and one line `enms: ...` with every phrase, the last on stderr (``after`` lines
    of the command's own before it), no traceback."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == after + 1 and lines[-1].startswith("enms: "), done.stderr
    for phrase in phrases:
        assert phrase in lines[-1], lines[-1]


@pytest.mark.parametrize(
    ("settings", "phrases"),
    [
        (
            {"ENMS_DATABASE_URL": CLOSED_PORT},
            [
                "Connection refused",
                "ENMS_DATABASE_URL=postgresql://enms:***@127.0.0.1:1/enms",
                "start PostgreSQL there",
            ],
        ),
        (
            {"ENMS_DATABASE_URL": "mysql://root@127.0.0.1/enms"},
            ["ENMS_DATABASE_URL must be a PostgreSQL URL", "'mysql'", "example: postgresql://"],
        ),
        (
            {"ENMS_DATABASE_URL": CLOSED_PORT, "ENMS_READINGS_MAX_AGE_DAYS": "a"},
            ["ENMS_READINGS_MAX_AGE_DAYS='a' is not a number"],
        ),
    ],
)
def test_a_misconfiguration_is_one_line_naming_the_setting_not_a_traceback(
    settings, phrases, tmp_path
):
    done = enms("db", "migrate", env=with_env(ENMS_STATE_DIR=str(tmp_path), **settings))
    assert_one_line(done, *phrases)
    assert "s3cret" not in done.stderr


def test_a_state_folder_that_cannot_be_created_is_one_line_naming_enms_state_dir(tmp_path):
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("")
    done = enms("db", "migrate", env=with_env(ENMS_STATE_DIR=str(a_file / "state")))
    assert_one_line(done, f"ENMS_STATE_DIR={a_file / 'state'}", "must be a folder")


@pytest.mark.integration
def test_a_missing_database_is_one_line_saying_to_create_it(local_services, tmp_path):
    url = "postgresql://postgres@127.0.0.1:5432/no_such_db"
    done = enms("db", "migrate", env=with_env(ENMS_DATABASE_URL=url, ENMS_STATE_DIR=str(tmp_path)))
    assert_one_line(done, 'database "no_such_db" does not exist', "createdb", url)


@pytest.mark.integration
def test_a_refused_broker_is_one_line_naming_enms_mqtt_url(local_services, tmp_path):
    done = enms(
        "ingest",
        "--client-id",
        "cli-refused-broker",
        env=with_env(
            ENMS_DATABASE_URL=local_services.database_url,
            ENMS_MQTT_URL="mqtt://127.0.0.1:1",
            ENMS_STATE_DIR=str(tmp_path),
            ENMS_PLANT_FILE=str(SMALL_PLANT),
        ),
    )
    # before it: the plant file the ingestor registered and what it added (also on stderr)
    assert_one_line(done, "ENMS_MQTT_URL=mqtt://127.0.0.1:1", "start it there", after=2)


def bad_plant_files(tmp_path):
    bad_yaml = tmp_path / "bad_yaml.yaml"
    bad_yaml.write_text("sites:\n  - site_id: a\n   timezone: [\n")
    units = tmp_path / "units.yaml"
    units.write_text(
        SMALL_PLANT.read_text().replace("rated_power_kw: 75}", "rated_power_kw: 75kW}")
    )
    assert "75kW" in units.read_text()
    return {
        "missing": ("/nope.yaml", ["plant file not found: /nope.yaml", "existing plant file"]),
        "bad YAML": (bad_yaml, [f"{bad_yaml}, line 3, column 4: not valid YAML", "correct it"]),
        "units": (
            units,
            [f"{units}: machines[0] (CMP-01): rated_power_kw: '75kW'", "rated_power_kw: 75)"],
        ),
    }


@pytest.mark.parametrize("case", ["missing", "bad YAML", "units"])
def test_a_bad_plant_file_is_one_line_naming_file_line_and_variable(case, tmp_path):
    plant_file, phrases = bad_plant_files(tmp_path)[case]
    env = with_env(
        ENMS_PLANT_FILE=str(plant_file), ENMS_DATABASE_URL=CLOSED_PORT, ENMS_STATE_DIR=str(tmp_path)
    )
    done = enms("simulate", "--direct", env=env)
    assert_one_line(done, *phrases, "that plant file is set by ENMS_PLANT_FILE")
    assert done.stdout.splitlines()[0] == f"plant file {plant_file} (set by ENMS_PLANT_FILE)"


def test_a_missing_csv_is_one_line_before_any_server_starts(tmp_path):
    env = with_env(ENMS_DATABASE_URL=CLOSED_PORT, ENMS_STATE_DIR=str(tmp_path))
    assert_one_line(enms("import", "/nope.csv", env=env), "/nope.csv: no such file")


@pytest.mark.integration
def test_a_csv_with_a_bad_header_is_one_line_naming_the_file_and_the_layouts(
    local_services, tmp_path
):
    odd = tmp_path / "odd.csv"
    odd.write_text("when,what\n2026-03-10T08:00:00+01:00,1\n")
    env = with_env(ENMS_DATABASE_URL=local_services.database_url, ENMS_STATE_DIR=str(tmp_path))
    done = enms("import", str(odd), env=env)
    assert_one_line(done, f"{odd}, line 1: header ['when', 'what']", "'ts,machine,metric,value'")


def test_verbose_keeps_the_traceback(tmp_path):
    env = with_env(ENMS_DATABASE_URL="mysql://root@127.0.0.1/enms", ENMS_STATE_DIR=str(tmp_path))
    done = enms("-v", "db", "migrate", env=env)
    assert done.returncode != 0
    assert (
        "Traceback" in done.stderr and "ENMS_DATABASE_URL must be a PostgreSQL URL" in done.stderr
    )


def test_help_shows_the_default_of_each_option():
    simulate = " ".join(enms("simulate", "--help").stdout.split())
    assert "simulator seed (default: 42)" in simulate
    assert "injected faults per machine and week (default: 0.0)" in simulate
    assert "(default: ENMS_PLANT_FILE, else the plant file remembered there" in simulate
    imp = " ".join(enms("import", "--help").stdout.split())
    assert "lines landed per batch (default: 50000)" in imp
    quarantine = " ".join(enms("quarantine", "--help").stdout.split())
    assert "what to do (default: summary)" in quarantine
    assert "entries to list (default: 20)" in quarantine


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        ((), "ENMS_DATABASE_URL"),
        (("db", "migrate"), "pending migrations"),
        (("demo",), "precision and recall against the injected faults"),
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


@pytest.mark.integration
def test_acknowledging_an_unknown_event_fails_and_a_known_one_succeeds(local_services):
    import os

    from enms_dagster.db import connect

    env = {**os.environ, "ENMS_DATABASE_URL": local_services.database_url}
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "enms_dagster.cli", *a], capture_output=True, text=True,
        timeout=120, env=env,
    )  # fmt: skip
    done = run("alerts", "ack", "CMP-01.out_of_hours.20990101T0000Z")
    assert done.returncode == 1
    assert "no anomaly event 'CMP-01.out_of_hours.20990101T0000Z'" in done.stderr
    with connect(local_services.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM marts.anomaly_events WHERE event_id = 'cli-test'")
        conn.execute(
            "INSERT INTO marts.anomaly_events (event_id, machine_id, site_id, kind, method, "
            "start_ts, end_ts, hours, severity, score, sentence) VALUES ('cli-test', 'CMP-01', "
            "'plant-a', 'out_of_hours', 'rule', now() - interval '2 hours', now(), 2, 'high', 9, "
            "'Compressor 1 drew 4 kWh more than expected')"
        )
    done = run("alerts", "ack", "cli-test", "--by", "night shift")
    assert done.returncode == 0, done.stderr
    with connect(local_services.database_url) as conn:
        by = conn.execute(
            "SELECT acknowledged_by FROM marts.anomaly_events WHERE event_id = 'cli-test'"
        ).fetchone()[0]
    assert by == "night shift"
    report = run("evaluate", "anomalies", "--days", "1")
    assert report.returncode == 0, report.stderr
    assert "anomaly events" in report.stdout


@pytest.mark.integration
def test_alerts_status_counts_deliveries_and_names_the_one_that_gave_up(local_services):
    import os

    from enms_dagster.db import connect

    with connect(local_services.database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE core.alert_outbox, core.alert_deliveries")
        conn.execute(
            "INSERT INTO core.alert_outbox VALUES ('00000000-0000-0000-0000-00000000cafe', "
            "'cli-test', 'high', 'new', 'enms/plant-a/alerts', '{}', now())"
        )
        conn.execute(
            "INSERT INTO core.alert_deliveries (alert_id, channel, state, attempts, "
            "next_attempt_at, last_error) VALUES "
            "('00000000-0000-0000-0000-00000000cafe', 'mqtt', 'delivered', 1, now(), NULL), "
            "('00000000-0000-0000-0000-00000000cafe', 'webhook', 'failed', 20, now(), "
            "'OSError: webhook answered HTTP 500')"
        )
    done = subprocess.run(
        [sys.executable, "-m", "enms_dagster.cli", "alerts", "status"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ENMS_DATABASE_URL": local_services.database_url},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "mqtt: 1 delivered, 0 pending, 0 failed",
        "webhook: 0 delivered, 0 pending, 1 failed",
        "failed webhook 00000000-0000-0000-0000-00000000cafe (cli-test): 20 attempts; "
        "last error: OSError: webhook answered HTTP 500",
    ]
