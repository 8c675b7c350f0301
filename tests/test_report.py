"""The energy report: the pure HTML builder on hand-built frames (the Sankey conserves energy,
nothing is loaded from the network, every section is there), and the asset on months of
simulated history writing the file."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import psycopg
import pytest

from enms_dagster.assets.report import energy_report
from enms_dagster.plant import BaselineSettings
from enms_dagster.report.contract import (
    ANOMALY_DAY_COLUMNS,
    MACHINE_COLUMNS,
    PERFORMANCE_COLUMNS,
    ReportData,
)
from enms_dagster.report.html import SECTIONS, build_report_html
from enms_dagster.report.sankey import NO_LINE

FIRST, LAST = dt.date(2026, 3, 2), dt.date(2026, 3, 15)
MACHINES = [
    # id, name, type, line, source, productive, idle, out of hours (None: no state metric)
    ("CMP-01", "Compressor 1", "compressor", "utilities", "electricity", 900.0, 120.0, 310.5),
    ("CMP-02", "Compressor 2", "compressor", "utilities", "electricity", 400.0, 80.0, 0.0),
    ("IMM-01", "Moulding 1", "injection_moulding", "line-1", "electricity", 1500.0, 210.0, 12.0),
    ("HYD-01", "Hydraulics 1", "hydraulic_pump", "line-1", "electricity", 350.0, None, 40.0),
    ("OVN-01", "Gas oven", "oven", "line-1", "natural_gas", 2200.0, 0.0, 95.25),
    ("HVAC-01", "AHU hall", "hvac", None, "electricity", 610.0, 0.0, 230.0),
    ("WX-01", "Weather", "weather_station", "building", "electricity", 0.0, 0.0, 0.0),
]


def machines_frame() -> pd.DataFrame:
    rows = []
    for mid, name, mtype, line, source, productive, idle, ooh in MACHINES:
        energy = productive + (idle or 0.0) + ooh
        rows.append(
            {
                "machine_id": mid,
                "machine_name": name,
                "machine_type": mtype,
                "line": line,
                "energy_source": source,
                "energy_kwh": energy,
                "productive_kwh": productive,
                "idle_kwh": idle,
                "out_of_hours_kwh": ooh,
                "parts": 1200.0 if mid == "IMM-01" else None,
                "sec_kwh_per_part": energy / 1200.0 if mid == "IMM-01" else None,
                "peak_15min_kw": 50.0,
                "cost": energy * 0.2,
                "co2e_kg": energy * 0.38,
                "enpi": 0.93 if mid == "IMM-01" else None,
            }
        )
    return pd.DataFrame(rows, columns=list(MACHINE_COLUMNS))


def performance_frame() -> pd.DataFrame:
    days = [FIRST + dt.timedelta(days=i) for i in range((LAST - FIRST).days + 1)]
    rows, cusum = [], 0.0
    for i, day in enumerate(days):
        in_baseline = i < 4
        expected = 1000.0 + 10 * i
        actual = expected * (1.0 if in_baseline else 0.95)
        cusum = None if in_baseline else (cusum or 0.0) + expected - actual
        rows.append((day, actual, expected, actual / expected, cusum, 40.0 + i, in_baseline))
    return pd.DataFrame(rows, columns=list(PERFORMANCE_COLUMNS))


def report(**overrides) -> ReportData:
    anomaly_days = pd.DataFrame(
        [
            ("CMP-01", dt.date(2026, 3, 7), 9, "high", "out_of_hours"),
            ("CMP-01", dt.date(2026, 3, 8), 4, "medium", "out_of_hours"),
            ("HYD-01", dt.date(2026, 3, 11), 2, "low", "base_load_creep"),
        ],
        columns=list(ANOMALY_DAY_COLUMNS),
    )
    events = pd.DataFrame(
        [
            {
                "event_id": "CMP-01.out_of_hours.20260306T2100Z",
                "machine_id": "CMP-01",
                "kind": "out_of_hours",
                "severity": "high",
                "start_ts": pd.Timestamp("2026-03-06T21:00Z"),
                "hours": 13,
                "excess_kwh": 310.5,
                "excess_cost": 46.6,
                "currency": "EUR",
                "sentence": "CMP-01 ran all weekend <with no shift>.",
                "acknowledged_at": None,
            }
        ]
    )
    values = dict(
        site_id="plant-a",
        site_name="Test plant",
        first_day=FIRST,
        last_day=LAST,
        machines=machines_frame(),
        performance=performance_frame(),
        anomaly_days=anomaly_days,
        anomaly_events=events,
        currency="EUR",
        baseline="site daily model v2",
        sources=("energy: hand-built",),
        generated_at=dt.datetime(2026, 3, 16, 6, 0, tzinfo=dt.UTC),
    )
    values.update(overrides)
    return ReportData(**values)


def sankey_of(html: str) -> ET.Element:
    """The Sankey <svg> element of the page, parsed as XML."""
    match = re.search(r'<svg class="sankey".*?</svg>', html, re.S)
    assert match, "no Sankey diagram in the report"
    return ET.fromstring(match.group(0))


def test_the_sankey_conserves_energy_at_every_node():
    svg = sankey_of(build_report_html(report()))
    flows = [
        (p.get("data-source"), p.get("data-target"), float(p.get("data-kwh")))
        for p in svg.iter("path")
        if p.get("class") == "flow"
    ]
    nodes = {
        g.get("data-node"): (int(g.get("data-column")), float(g.get("data-kwh")))
        for g in svg.iter("g")
        if g.get("class") == "node"
    }
    inflow, outflow = defaultdict(float), defaultdict(float)
    for source, target, kwh in flows:
        assert kwh > 0
        assert nodes[source][0] < nodes[target][0]  # every flow runs left to right
        outflow[source] += kwh
        inflow[target] += kwh
    total = sum(p + (i or 0) + o for *_, p, i, o in MACHINES)
    for node, (column, kwh) in nodes.items():
        if column == 0:
            assert outflow[node] == pytest.approx(kwh) == pytest.approx(total)
        elif column == 5:
            assert inflow[node] == pytest.approx(kwh)
            assert node not in outflow
        else:
            assert inflow[node] == pytest.approx(outflow[node]), node
            assert inflow[node] == pytest.approx(kwh), node
    # the sinks carry each machine's split, summed
    assert nodes["use:out_of_hours"][1] == pytest.approx(sum(m[7] for m in MACHINES))
    assert nodes["use:idle"][1] == pytest.approx(sum(m[6] or 0 for m in MACHINES))
    # both energy sources, a machine without a line, and no node for a machine without energy
    assert {"energy_source:electricity", "energy_source:natural_gas"} <= nodes.keys()
    assert f"line:{NO_LINE}" in nodes and nodes["machine:HVAC-01"][1] == pytest.approx(840.0)
    assert "machine:WX-01" not in nodes
    assert float(svg.get("data-total-kwh")) == pytest.approx(total)


def test_the_sankey_draws_each_node_as_tall_as_its_energy():
    svg = sankey_of(build_report_html(report()))
    heights = {
        g.get("data-node"): (float(g.get("data-kwh")), float(g.find("rect").get("height")))
        for g in svg.iter("g")
        if g.get("class") == "node"
    }
    kwh_per_px = {round(kwh / h, 6) for kwh, h in heights.values() if h > 1.0}
    assert max(kwh_per_px) == pytest.approx(min(kwh_per_px), rel=1e-3)


def test_the_report_has_no_external_urls_and_every_section():
    html = build_report_html(report())
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", html, re.I)
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html and "<link" not in html
    for key, title in SECTIONS.items():
        assert f'<section id="{key}">' in html and f"<h2>{title}</h2>" in html
    assert '<svg class="trend"' in html and 'class="cusum"' in html
    assert html.count('class="cell anomaly"') == 3
    # text from the data is escaped, not markup
    assert "&lt;with no shift&gt;" in html and "<with no shift>" not in html
    assert "IMM-01" in html and "0.930" in html  # machine comparison with its EnPI


def test_without_anomaly_detection_the_report_says_it_was_not_run():
    html = build_report_html(report(anomaly_days=None, anomaly_events=None))
    assert "Anomaly detection not run" in html
    assert 'class="heatmap"' not in html


def test_a_period_without_baseline_or_energy_still_renders():
    empty = machines_frame().assign(
        energy_kwh=0.0, productive_kwh=0.0, idle_kwh=0.0, out_of_hours_kwh=0.0
    )
    html = build_report_html(
        report(
            machines=empty,
            performance=pd.DataFrame(columns=list(PERFORMANCE_COLUMNS)),
            anomaly_days=pd.DataFrame(columns=list(ANOMALY_DAY_COLUMNS)),
            anomaly_events=None,
        )
    )
    assert "No energy recorded in the period." in html
    assert "No energy performance for the site in the period" in html
    assert "No anomaly events in the period." in html


# --- the asset on 90 days of a simulated plant ----------------------------------------------


BASELINE_END = dt.date(2026, 3, 5)  # the last day before IMM-01's 10 % saving


def plant_with_baseline_until(plant, end: dt.date):
    """The plant with every machine's and site's baseline period ending on ``end``."""
    until = BaselineSettings(end=end)
    return dataclasses.replace(
        plant,
        machines={k: dataclasses.replace(m, baseline=until) for k, m in plant.machines.items()},
        sites={k: dataclasses.replace(s, baseline=until) for k, s in plant.sites.items()},
    )


@pytest.fixture(scope="module")
def fitted_history(baseline_history):
    """The history with daily baselines on the days before the saving, energy performance and
    the KPI marts built; returns it and its last local day."""
    from enms_dagster.baselines.registry import fit_and_register, rebuild_energy_performance
    from enms_dagster.db import connect
    from enms_dagster.marts.transforms import (
        rebuild_fct_energy_hourly,
        rebuild_fct_kpi_daily,
        rebuild_kpi_daily,
    )
    from enms_dagster.report.data import last_day_with_data

    h = baseline_history
    end = h.start + dt.timedelta(days=h.days)
    with connect(h.database_url, autocommit=True) as conn:
        last = last_day_with_data(conn, "plant-a")
        conn.execute("TRUNCATE marts.baseline_models CASCADE")
        plant = plant_with_baseline_until(h.plant, BASELINE_END)
        fit_and_register(conn, plant, ["daily"], reason="report test")
        rebuild_energy_performance(conn)
        rebuild_kpi_daily(conn, dt.date(2026, 1, 5), last)
        rebuild_fct_energy_hourly(conn, h.start, end)
        rebuild_fct_kpi_daily(conn, dt.date(2026, 1, 5), last)
    return h, last


@pytest.mark.integration
def test_the_asset_writes_one_self_contained_report_per_site(fitted_history, tmp_path, monkeypatch):
    history, last = fitted_history
    monkeypatch.setenv("ENMS_STATE_DIR", str(tmp_path / "state"))
    from enms_dagster.resources import WarehouseResource

    result = dg.materialize(
        [energy_report],
        resources={"warehouse": WarehouseResource(database_url=history.database_url)},
        run_config={"ops": {"energy_report": {"config": {"days": 30}}}},
    )
    assert result.success
    (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    path = (
        tmp_path
        / "state"
        / "reports"
        / (f"energy_report_plant-a_{last - dt.timedelta(days=29)}_{last}.html")
    )
    assert path.exists()
    assert metadata["report_plant-a"].value == str(path)
    assert metadata["report_plant-a_url"].value == path.as_uri()
    by_machine = [r.data for r in metadata["energy_by_machine_plant-a"].value.records]
    assert by_machine and all(row["kWh"] > 0 for row in by_machine)
    assert metadata["energy_kwh"].value == pytest.approx(sum(row["kWh"] for row in by_machine))
    assert "data:image/png;base64," in metadata["cusum_plant-a"].value  # after day 60 of 90

    html = path.read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html
    svg = sankey_of(html)
    with psycopg.connect(history.database_url) as conn:
        (kwh,) = conn.execute(
            "SELECT sum(energy_kwh) FROM core.hourly_energy WHERE local_date BETWEEN %s AND %s",
            (last - dt.timedelta(days=29), last),
        ).fetchone()
    assert float(svg.get("data-total-kwh")) == pytest.approx(kwh, rel=1e-6)
    machines = {g.get("data-node") for g in svg.iter("g") if g.get("class") == "node"}
    assert {f"machine:{m}" for m in ("CMP-01", "HVAC-01", "CNV-01", "HYD-01", "IMM-01")} <= (
        machines
    )
    assert 'class="cusum"' in html  # the period lies after the baseline period
    assert "marts.fct_energy_hourly" in html and " EUR</div>" in html  # priced from the marts
    # marts.anomaly_events exists, but the anomalies asset never ran in this instance
    assert "Anomaly detection not run" in html


@pytest.mark.integration
def test_without_the_priced_marts_the_split_comes_from_the_hourly_layer_alike(fitted_history):
    from enms_dagster.report.data import load_report_data

    history, last = fitted_history
    first = last - dt.timedelta(days=13)
    columns = ["energy_kwh", "productive_kwh", "idle_kwh", "out_of_hours_kwh"]
    with psycopg.connect(history.database_url) as conn:
        marts = load_report_data(conn, "plant-a", first, last)
        conn.execute("TRUNCATE marts.fct_energy_hourly, marts.fct_kpi_daily")
        core = load_report_data(conn, "plant-a", first, last)
        conn.rollback()
    assert marts.sources[0].endswith("marts.fct_energy_hourly")
    assert core.sources[0].endswith("core.hourly_energy + core.hourly_drivers")
    a = marts.machines.set_index("machine_id")[columns]
    b = core.machines.set_index("machine_id")[columns]
    pd.testing.assert_frame_equal(a, b.loc[a.index], rtol=1e-9)
    assert marts.machines["cost"].notna().all() and marts.currency == "EUR"
    assert core.machines["cost"].isna().all()  # no tariff without the marts
    assert (marts.machines["out_of_hours_kwh"] > 0).all()  # nights and weekends
    # the saving shows: IMM-01 draws less than its baseline expects
    enpi = marts.machines.set_index("machine_id")["enpi"]
    assert enpi["IMM-01"] == pytest.approx(0.9, abs=0.04)


@pytest.mark.integration
def test_anomaly_events_become_the_heatmap_and_a_missing_table_a_note(fitted_history):
    from enms_dagster.report.data import load_report_data

    history, last = fitted_history
    first = last - dt.timedelta(days=6)
    start = dt.datetime.combine(first, dt.time(21), dt.UTC)
    hours = [start + dt.timedelta(hours=i) for i in range(5)]
    expected = defaultdict(int)
    for hour in hours:
        expected[("CMP-01", hour.astimezone(ZoneInfo("Europe/Berlin")).date())] += 1
    with psycopg.connect(history.database_url) as conn:
        # inside a transaction rolled back at the end: other tests see none of it
        conn.execute(
            "INSERT INTO marts.anomaly_events (event_id, machine_id, site_id, kind, method, "
            "start_ts, end_ts, hours, severity, score, excess_kwh, sentence) VALUES "
            "('t1', 'CMP-01', 'plant-a', 'out_of_hours', 'rule', %s, %s, 5, 'high', 9, 40, "
            "'CMP-01 ran overnight.')",
            (start, start + dt.timedelta(hours=5)),
        )
        data = load_report_data(conn, "plant-a", first, last)
        cells = {
            (r.machine_id, r.local_date): r.flagged_hours for r in data.anomaly_days.itertuples()
        }
        assert cells == expected and len(expected) == 2  # the event crosses local midnight
        assert 'data-machine="CMP-01"' in build_report_html(data)

        conn.execute("DROP TABLE marts.anomaly_events")
        data = load_report_data(conn, "plant-a", first, last)
        assert data.anomaly_days is None
        assert "Anomaly detection not run" in build_report_html(data)
        conn.rollback()
