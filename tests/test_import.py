"""`enms import`: historical CSV lands through the landing path, once, and every line that
cannot be used is quarantined with its bytes and line number (real PostgreSQL, both backends)."""

import datetime as dt
import shutil

import pytest

from enms_dagster import cli
from enms_dagster.ingest.csv_import import ImportFormatError, import_csv
from enms_dagster.ingest.payload import PlausibleTime
from tests.conftest import TESTS_DIR

pytestmark = pytest.mark.integration

DATA = TESTS_DIR / "data"
INTERVAL = DATA / "import_interval_long.csv"
COUNTER = DATA / "import_counter_wide.csv"
BAD = DATA / "import_bad_lines.csv"


def readings(conn, metric):
    return conn.execute(
        "SELECT count(*), coalesce(sum(value), 0) FROM raw.readings WHERE metric = %s", (metric,)
    ).fetchone()


def test_interval_energy_lands_and_a_second_import_adds_nothing(warehouse):
    first = import_csv(warehouse, INTERVAL)
    assert (first.lines, first.inserted, first.rejected) == (96, 96, 0)
    count, total = readings(warehouse, "energy_kwh_interval")
    expected = sum(float(line.split(",")[3]) for line in INTERVAL.read_text().splitlines()[1:])
    assert count == 96 and total == pytest.approx(expected)

    again = import_csv(warehouse, INTERVAL)
    assert (again.inserted, again.duplicates, again.quarantined) == (0, 96, 0)
    assert readings(warehouse, "energy_kwh_interval")[0] == 96
    sources = warehouse.execute("SELECT DISTINCT source FROM raw.ingest_batches").fetchall()
    assert sources == [("import",)]


def test_wide_counter_file_in_local_time_lands_in_utc_across_the_clock_change(warehouse):
    result = import_csv(warehouse, COUNTER)
    assert (result.lines, result.inserted, result.rejected) == (23, 46, 0)
    stamps = dict(
        warehouse.execute(
            "SELECT value, ts FROM raw.readings WHERE metric = 'energy_kwh_total'"
        ).fetchall()
    )
    utc = dt.UTC
    assert stamps[125055.5] == dt.datetime(2026, 3, 28, 12, tzinfo=utc)  # 13:00 CET
    assert stamps[125721.5] == dt.datetime(2026, 3, 29, 0, tzinfo=utc)  # 01:00 CET
    assert stamps[125777.0] == dt.datetime(2026, 3, 29, 1, tzinfo=utc)  # 03:00 CEST
    assert readings(warehouse, "power_kw")[0] == 23


def test_bad_lines_are_quarantined_with_their_line_number_and_the_good_ones_land(warehouse):
    result = import_csv(warehouse, BAD)
    assert (result.lines, result.inserted, result.rejected, result.quarantined) == (11, 3, 8, 8)
    rows = warehouse.execute(
        "SELECT source, topic, payload, reason, detail FROM raw.quarantine ORDER BY quarantine_id"
    ).fetchall()
    lines = BAD.read_bytes().splitlines()
    by_line = {}
    for source, topic, payload, reason, detail in rows:
        assert (source, topic) == ("import", str(BAD.resolve()))
        number = int(detail.split(":")[0].removeprefix("line "))
        assert bytes(payload) == lines[number - 1]
        by_line[number] = reason
    assert by_line == {
        3: "bad_number",
        4: "unknown_machine",
        5: "bad_timestamp",
        6: "non_finite_number",
        7: "dst_gap",
        8: "dst_ambiguous",
        9: "bad_shape",
        10: "unknown_metric",
    }
    landed = [v for (v,) in warehouse.execute("SELECT value FROM raw.readings ORDER BY ts")]
    assert landed == [12.5, 13.0, 14.0]

    again = import_csv(warehouse, BAD)
    assert (again.inserted, again.rejected, again.quarantined) == (0, 8, 0)
    assert warehouse.execute("SELECT count(*) FROM raw.quarantine").fetchone()[0] == 8


def test_a_large_file_is_landed_in_chunks_with_the_same_result(warehouse):
    result = import_csv(warehouse, INTERVAL, chunk_lines=10)
    assert (result.batches, result.inserted) == (10, 96)
    assert warehouse.execute("SELECT count(*) FROM raw.ingest_batches").fetchone()[0] == 10


def test_a_file_with_an_unknown_layout_is_refused_before_anything_lands(warehouse, tmp_path):
    odd = tmp_path / "odd.csv"
    odd.write_text("when,what\n2026-03-10T08:00:00+01:00,1\n")
    with pytest.raises(ImportFormatError, match="expected 'ts,machine,metric,value'"):
        import_csv(warehouse, odd)
    assert warehouse.execute("SELECT count(*) FROM raw.ingest_batches").fetchone()[0] == 0


def test_enms_import_prints_a_summary_per_file_and_exits_1_when_lines_were_set_aside(
    warehouse, services, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("ENMS_DATABASE_URL", services.database_url)
    monkeypatch.setenv("ENMS_MQTT_URL", services.mqtt_url)
    copy = tmp_path / "meter.csv"
    shutil.copy(INTERVAL, copy)
    assert cli.main(["import", str(copy)]) == 0  # every line landed
    assert cli.main(["import", str(copy), str(BAD)]) == 1
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert out[1].startswith(str(copy)) and "0 readings landed, 96 already there" in out[1]
    # two of its good lines repeat readings of the first file: they are not landed twice
    assert "1 readings landed, 2 already there, 8 lines set aside" in out[2]
    assert captured.err.strip().splitlines()[-1] == (
        "enms: 8 lines were set aside (not landed); `enms quarantine list` shows them and why"
    )


def test_a_quoted_value_spanning_lines_is_one_record(warehouse, tmp_path):
    quoted = tmp_path / "quoted.csv"
    quoted.write_text(
        "ts,machine,metric,value\n"
        '2026-03-10T08:00:00+01:00,MTR-01,energy_kwh_interval,"12.5\n7"\n'
        "2026-03-10T08:15:00+01:00,MTR-01,energy_kwh_interval,3.0\n"
    )
    result = import_csv(warehouse, quoted)
    assert (result.lines, result.inserted, result.rejected) == (2, 1, 1)
    landed = [v for (v,) in warehouse.execute("SELECT value FROM raw.readings")]
    assert landed == [3.0]  # never 7.0 from a value cut at its line break
    payload, detail = warehouse.execute("SELECT payload, detail FROM raw.quarantine").fetchone()
    assert bytes(payload).endswith(b'"12.5\n7"') and detail.startswith("line 2: ")


def test_a_semicolon_separated_file_gets_one_line_and_exit_code_2(
    warehouse, services, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("ENMS_DATABASE_URL", services.database_url)
    monkeypatch.setenv("ENMS_MQTT_URL", services.mqtt_url)
    semi = tmp_path / "semi.csv"
    semi.write_text("ts;machine;metric;value\n2026-03-10T08:00:00+01:00;MTR-01;power_kw;1,5\n")
    assert cli.main(["import", str(semi)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"enms: {semi}, line 1: the header looks ';'-separated; this importer expects ',' "
        "(e.g. convert with: sed 's/;/,/g') (--verbose shows the traceback)"
    ]
    assert warehouse.execute("SELECT count(*) FROM raw.ingest_batches").fetchone()[0] == 0


def test_history_older_than_the_window_needs_since(warehouse, tmp_path):
    old = tmp_path / "old.csv"
    old.write_text("ts,machine,metric,value\n2026-03-10T08:00:00+01:00,MTR-01,power_kw,1.0\n")
    later = dt.datetime(2026, 3, 20, tzinfo=dt.UTC)
    short = PlausibleTime(max_age=dt.timedelta(days=5))
    assert import_csv(warehouse, old, now=later, window=short).inserted == 0
    reason = warehouse.execute("SELECT reason FROM raw.quarantine").fetchone()[0]
    assert reason == "too_old"
    since = PlausibleTime(since=dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    assert import_csv(warehouse, old, now=later, window=since).inserted == 1
