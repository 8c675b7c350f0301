"""`enms` says what each command does and refuses bad arguments clearly."""

import os
import subprocess
import sys

import pytest


def enms(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "enms_dagster.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def with_env(**settings):
    return {**os.environ, **settings}


@pytest.mark.parametrize(
    ("settings", "phrases"),
    [
        (
            {"ENMS_DATABASE_URL": "postgresql://enms:s3cret@127.0.0.1:1/enms"},
            ["Connection refused", "ENMS_DATABASE_URL=postgresql://enms:***@127.0.0.1:1/enms"],
        ),
        (
            {"ENMS_DATABASE_URL": "mysql://root@127.0.0.1/enms"},
            ["ENMS_DATABASE_URL must be a PostgreSQL URL", "'mysql'"],
        ),
        (
            {
                "ENMS_DATABASE_URL": "postgresql://x@127.0.0.1:1/x",
                "ENMS_READINGS_MAX_AGE_DAYS": "a",
            },
            ["ENMS_READINGS_MAX_AGE_DAYS='a' is not a number"],
        ),
    ],
)
def test_a_misconfiguration_is_one_line_naming_the_setting_not_a_traceback(settings, phrases):
    done = enms("db", "migrate", env=with_env(**settings))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("enms: "), done.stderr
    for phrase in phrases:
        assert phrase in lines[0]
    assert "s3cret" not in done.stderr


@pytest.mark.integration
def test_a_refused_broker_is_one_line_naming_enms_mqtt_url(local_services):
    done = enms(
        "ingest",
        "--client-id",
        "cli-refused-broker",
        env=with_env(
            ENMS_DATABASE_URL=local_services.database_url, ENMS_MQTT_URL="mqtt://127.0.0.1:1"
        ),
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "ENMS_MQTT_URL=mqtt://127.0.0.1:1" in done.stderr.strip().splitlines()[-1]


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
