"""The energy report of one site and period as one self-contained HTML page: inline CSS and SVG,
no script and no external URL, so it opens offline, prints, and can be mailed as it is.

Pure: DataFrames in (``ReportData``, the contract in ``enms_dagster.report.contract``, filled by
``enms_dagster.report.data``), a string out.
Sections: summary, energy flow (Sankey), machines compared, EnPI and CUSUM, anomalies.
"""

from __future__ import annotations

import datetime as dt
import math
from html import escape

import pandas as pd

from enms_dagster.report.contract import ReportData
from enms_dagster.report.sankey import USES, energy_flows, sankey_svg

SECTIONS = {
    "summary": "Summary",
    "energy-flow": "Where the energy goes",
    "machines": "Machines compared",
    "performance": "Energy performance: EnPI and CUSUM",
    "anomalies": "Anomalies",
}
_SEVERITY_COLOURS = {"low": "#f4c27a", "medium": "#e57a3c", "high": "#b2182b"}


def build_report_html(data: ReportData) -> str:
    """The whole report as one HTML document."""
    title = f"Energy report — {data.site_name} ({data.site_id}), {_period(data)}"
    sections = [
        _section("summary", _summary(data)),
        _section("energy-flow", _flow(data)),
        _section("machines", _machines(data)),
        _section("performance", _performance(data)),
        _section("anomalies", _anomalies(data)),
    ]
    sources = "".join(f"<li>{escape(s)}</li>" for s in data.sources)
    notes = "".join(f"<li>{escape(n)}</li>" for n in data.notes)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>Energy report — {escape(data.site_name)}</h1>"
        f'<p class="sub">Site <b>{escape(data.site_id)}</b> · {escape(_period(data))} · '
        f"generated {data.generated_at:%Y-%m-%d %H:%M} UTC</p>"
        "<nav>"
        + " ".join(f'<a href="#{key}">{escape(name)}</a>' for key, name in SECTIONS.items())
        + "</nav></header><main>"
        + "".join(sections)
        + f"<footer><h2>Sources</h2><ul>{sources}</ul>"
        + (f"<h2>Notes</h2><ul>{notes}</ul>" if notes else "")
        + "<p>Energy in kWh per local day of the site. EnPI = actual ÷ baseline-expected energy "
        "for the same drivers (1.0 = as expected, below 1 = better); CUSUM = running sum of "
        "expected − actual since the baseline period, with its 68 % uncertainty (ASHRAE 14). "
        "Out of hours: hours outside the site's shift; idle: the machine reported idle "
        "during the shift; productive: the rest of the shift energy.</p></footer>"
        "</main></body></html>\n"
    )


def _period(data: ReportData) -> str:
    days = (data.last_day - data.first_day).days + 1
    return f"{data.first_day:%Y-%m-%d} .. {data.last_day:%Y-%m-%d} ({days} days)"


def _section(key: str, body: str) -> str:
    return f'<section id="{key}"><h2>{escape(SECTIONS[key])}</h2>{body}</section>'


def _number(value, pattern: str = "{:,.0f}", missing: str = "—") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return missing
    return pattern.format(value)


def _text(value) -> str:
    return (
        "—"
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
        else str(value)
    )


def _sum(frame: pd.DataFrame, column: str) -> float | None:
    """Sum of a column, None where it has no value at all (the source table is missing)."""
    if column not in frame or frame[column].isna().all():
        return None
    return float(frame[column].sum())


def _summary(data: ReportData) -> str:
    m, p = data.machines, data.performance
    energy = _sum(m, "energy_kwh") or 0.0
    tiles = [("energy", f"{energy:,.0f} kWh")]
    if (cost := _sum(m, "cost")) is not None:
        tiles.append(("cost", f"{cost:,.0f} {data.currency or ''}".strip()))
    if (co2e := _sum(m, "co2e_kg")) is not None:
        tiles.append(("CO2e", f"{co2e / 1000:,.2f} t"))
    for use in ("idle", "out_of_hours"):
        if energy and (kwh := _sum(m, f"{use}_kwh")) is not None:
            tiles.append((f"{USES[use][0]} share", f"{kwh / energy:.1%}"))
    after = p[~p["in_baseline_period"].astype(bool)] if len(p) else p
    if len(after) and after["expected_kwh"].sum() > 0:
        enpi = after["actual_kwh"].sum() / after["expected_kwh"].sum()
        tiles.append(("site EnPI after baseline", f"{enpi:.3f}"))
        last = after.sort_values("local_date").iloc[-1]
        if not pd.isna(last["cusum_savings_kwh"]):
            tiles.append(
                (
                    f"CUSUM of savings on {last['local_date']:%Y-%m-%d}",
                    f"{last['cusum_savings_kwh']:,.0f} ± {_number(last['uncertainty_68_kwh'])} kWh",
                )
            )
    if data.anomaly_events is not None:
        tiles.append(("anomaly events", f"{len(data.anomaly_events)}"))
    body = "".join(
        f'<div class="tile"><div class="k">{escape(k)}</div><div class="v">{escape(v)}</div></div>'
        for k, v in tiles
    )
    baseline = f"<p>Baseline: {escape(data.baseline)}</p>" if data.baseline else ""
    return f'<div class="tiles">{body}</div>{baseline}'


def _flow(data: ReportData) -> str:
    nodes, flows = energy_flows(data.machines, data.site_id)
    legend = "".join(
        f'<span class="key"><i style="background:{colour}"></i>{escape(label)}</span>'
        for label, colour in USES.values()
    )
    return (
        "<p>Energy of the period from the site through its energy sources, lines and machine "
        "types to each machine, and what each machine drew it for. Hover for kWh and shares.</p>"
        f'<div class="legend">{legend}</div><div class="wide">'
        + sankey_svg(nodes, flows, title=f"Energy flow, {data.site_id}, {_period(data)}")
        + "</div>"
    )


def _machines(data: ReportData) -> str:
    m = data.machines[data.machines["energy_kwh"].fillna(0) > 0]
    if m.empty:
        return '<p class="note">No machine drew energy in the period.</p>'
    m = m.sort_values("energy_kwh", ascending=False)
    total = float(m["energy_kwh"].sum())
    top = float(m["energy_kwh"].max())
    currency = f" ({escape(data.currency)})" if data.currency else ""
    head = (
        "<tr><th>machine</th><th>type</th><th>line</th><th>kWh</th><th>share</th>"
        "<th>productive / idle / out of hours</th><th>SEC kWh/part</th><th>peak 15-min kW</th>"
        f"<th>cost{currency}</th><th>kg CO2e</th><th>EnPI</th></tr>"
    )
    rows = []
    for r in m.itertuples(index=False):
        split = "".join(
            f'<i style="width:{100 * (getattr(r, f"{use}_kwh") or 0) / r.energy_kwh:.1f}%;'
            f'background:{colour}" title="{escape(label)}: '
            f'{_number(getattr(r, f"{use}_kwh"), "{:,.1f}")} kWh"></i>'
            for use, (label, colour) in USES.items()
            if not pd.isna(getattr(r, f"{use}_kwh"))
        )
        enpi = _number(r.enpi, "{:.3f}")
        enpi_class = "" if pd.isna(r.enpi) else (' class="worse"' if r.enpi > 1.05 else "")
        rows.append(
            f'<tr><td title="{escape(str(r.machine_name))}">{escape(r.machine_id)}</td>'
            f"<td>{escape(str(r.machine_type))}</td><td>{escape(_text(r.line))}</td>"
            f'<td class="n">{r.energy_kwh:,.0f}</td>'
            f'<td class="bar"><i style="width:{100 * r.energy_kwh / top:.1f}%"></i>'
            f"<span>{r.energy_kwh / total:.1%}</span></td>"
            f'<td class="split">{split}</td>'
            f'<td class="n">{_number(r.sec_kwh_per_part, "{:,.3f}")}</td>'
            f'<td class="n">{_number(r.peak_15min_kw, "{:,.1f}")}</td>'
            f'<td class="n">{_number(r.cost, "{:,.0f}")}</td>'
            f'<td class="n">{_number(r.co2e_kg, "{:,.0f}")}</td>'
            f'<td class="n"{enpi_class}>{enpi}</td></tr>'
        )
    return (
        "<p>SEC: energy per part produced (machines that count parts). EnPI: the machine's "
        "actual ÷ baseline-expected energy over the period (machines with a valid baseline); "
        "above 1.05 is marked.</p>"
        f'<div class="wide"><table class="machines">{head}{"".join(rows)}</table></div>'
    )


def _performance(data: ReportData) -> str:
    p = data.performance
    if p.empty:
        return (
            '<p class="note">No energy performance for the site in the period: no valid daily '
            "baseline yet (materialize energy_baselines, then energy_performance).</p>"
        )
    return (
        "<p>Daily site EnPI (actual ÷ expected; grey: days inside the baseline period) and the "
        "CUSUM of savings since the baseline period with its 68 % uncertainty band. A CUSUM "
        "that rises means energy is being saved against the baseline.</p>"
        f'<div class="wide">{_trend_svg(p, data.first_day, data.last_day)}</div>'
    )


def _anomalies(data: ReportData) -> str:
    if data.anomaly_days is None:
        return (
            '<p class="note">Anomaly detection not run: no anomaly events to show '
            "(materialize the anomalies asset).</p>"
        )
    if data.anomaly_days.empty:
        return '<p class="note">No anomaly events in the period.</p>'
    heatmap = _heatmap_svg(data.anomaly_days, data.machines, data.first_day, data.last_day)
    table = ""
    events = data.anomaly_events
    if events is not None and len(events):
        rows = "".join(
            f"<tr><td>{escape(str(e.machine_id))}</td><td>{escape(str(e.kind))}</td>"
            f'<td><span class="sev {escape(str(e.severity))}">{escape(str(e.severity))}</span>'
            f"</td><td>{pd.Timestamp(e.start_ts):%Y-%m-%d %H:%M}</td>"
            f'<td class="n">{e.hours}</td><td class="n">{_number(e.excess_kwh, "{:,.1f}")}</td>'
            f'<td class="n">{_number(e.excess_cost, "{:,.2f}")} {escape(str(e.currency or ""))}'
            f"</td><td>{escape(str(e.sentence))}</td></tr>"
            for e in events.head(15).itertuples(index=False)
        )
        table = (
            '<h3>Largest events</h3><div class="wide"><table><tr><th>machine</th><th>kind</th>'
            "<th>severity</th><th>start (UTC)</th><th>hours</th><th>excess kWh</th>"
            f"<th>excess cost</th><th>what happened</th></tr>{rows}</table></div>"
        )
    return (
        "<p>Hours in anomaly events per machine and local day; the colour is the day's highest "
        "severity, the number its flagged hours.</p>"
        f'<div class="wide">{heatmap}</div>{table}'
    )


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def _heatmap_svg(
    days_frame: pd.DataFrame, machines: pd.DataFrame, first: dt.date, last: dt.date
) -> str:
    """Machine × day grid: colour = highest severity of the day, number = flagged hours."""
    days = _days(first, last)
    with_energy = machines.loc[machines["energy_kwh"].fillna(0) > 0, "machine_id"]
    ids = sorted(set(with_energy) | set(days_frame["machine_id"]))
    cell = max(8.0, min(24.0, 880 / len(days)))
    left, top, row_h = 90, 34, 20
    width = left + cell * len(days) + 10
    height = top + row_h * len(ids) + 6
    cells = {(r.machine_id, pd.Timestamp(r.local_date).date()): r for r in days_frame.itertuples()}
    parts, labelled_at = [], -100.0
    for i, day in enumerate(days):
        x = left + i * cell
        if (i == 0 or day.day == 1 or day.weekday() == 0) and x - labelled_at >= 42:
            parts.append(f'<text class="axis" x="{x:.1f}" y="12">{day:%d %b}</text>')
            labelled_at = x
        if day.weekday() >= 5:
            parts.append(
                f'<rect x="{x:.1f}" y="{top - 14}" width="{cell:.1f}" height="10" fill="#eee"/>'
            )
        if cell >= 12:
            parts.append(
                f'<text class="axis small" x="{x + cell / 2:.1f}" y="{top - 6}" '
                f'text-anchor="middle">{day.strftime("%a")[0]}</text>'
            )
    for j, machine in enumerate(ids):
        y = top + j * row_h
        parts.append(
            f'<text x="{left - 6}" y="{y + row_h / 2 + 4:.1f}" text-anchor="end">'
            f"{escape(machine)}</text>"
        )
        for i, day in enumerate(days):
            x = left + i * cell
            r = cells.get((machine, day))
            if r is None:
                parts.append(
                    f'<rect class="cell" x="{x + 1:.1f}" y="{y + 1}" width="{cell - 2:.1f}" '
                    f'height="{row_h - 2}" fill="#f3f3f3"/>'
                )
                continue
            tip = f"{machine} {day}: {r.flagged_hours} h flagged, {r.severity}: {r.kinds}"
            parts.append(
                f'<g class="cell anomaly" data-machine="{escape(machine)}" data-day="{day}" '
                f'data-hours="{r.flagged_hours}"><rect x="{x + 1:.1f}" y="{y + 1}" '
                f'width="{cell - 2:.1f}" height="{row_h - 2}" '
                f'fill="{_SEVERITY_COLOURS.get(r.severity, "#999")}"/>'
                + (
                    f'<text x="{x + cell / 2:.1f}" y="{y + row_h / 2 + 4:.1f}" '
                    f'text-anchor="middle" class="in">{r.flagged_hours}</text>'
                    if cell >= 14
                    else ""
                )
                + f"<title>{escape(tip)}</title></g>"
            )
    legend = "".join(
        f'<span class="key"><i style="background:{c}"></i>{s}</span>'
        for s, c in _SEVERITY_COLOURS.items()
    )
    return (
        f'<div class="legend">{legend}</div>'
        f'<svg class="heatmap" viewBox="0 0 {width:.0f} {height}" width="{width:.0f}" '
        f'height="{height}" role="img" aria-label="Anomaly heatmap">{"".join(parts)}</svg>'
    )


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    return [start + i * step for i in range(int(math.ceil((high - start) / step)) + 1)]


def _trend_svg(p: pd.DataFrame, first: dt.date, last: dt.date) -> str:
    """Two panels over the period: daily EnPI, and the CUSUM of savings with its band."""
    p = p.sort_values("local_date")
    days = _days(first, last)
    width, left, right, panel_h, gap = 1000, 70, 20, 170, 46
    span = max(len(days) - 1, 1)

    def x(day) -> float:
        return left + (pd.Timestamp(day).date() - first).days * (width - left - right) / span

    out = []

    def panel(top: float, low: float, high: float, label: str) -> tuple:
        ticks = _nice_ticks(low, high)
        low, high = ticks[0], ticks[-1]

        def y(v: float) -> float:
            return top + panel_h - (v - low) / (high - low) * panel_h

        out.append(f'<text class="axis" x="{left}" y="{top - 8}">{escape(label)}</text>')
        for t in ticks:
            out.append(
                f'<line x1="{left}" x2="{width - right}" y1="{y(t):.1f}" y2="{y(t):.1f}" '
                f'stroke="#e4e4e4"/><text class="axis" x="{left - 6}" y="{y(t) + 4:.1f}" '
                f'text-anchor="end">{t:,.{_decimals(ticks)}f}</text>'
            )
        return y

    enpi = p.dropna(subset=["enpi"])
    values = list(enpi["enpi"]) + [1.0]
    y1 = panel(20, min(values), max(values), "EnPI (actual ÷ expected)")
    day_w = (width - left - right) / span
    for day in p[p["in_baseline_period"].astype(bool)]["local_date"]:
        out.append(
            f'<rect class="baseline-day" x="{x(day) - day_w / 2:.1f}" y="20" '
            f'width="{day_w:.1f}" height="{panel_h}" fill="#ececec"/>'
        )
    out.append(
        f'<line x1="{left}" x2="{width - right}" y1="{y1(1.0):.1f}" y2="{y1(1.0):.1f}" '
        'stroke="#444" stroke-dasharray="4 3"/>'
    )
    if len(enpi):
        points = " ".join(
            f"{x(d):.1f},{y1(v):.1f}" for d, v in zip(enpi["local_date"], enpi["enpi"], strict=True)
        )
        out.append(
            f'<polyline class="enpi" points="{points}" fill="none" stroke="#3b7dd8" '
            'stroke-width="1.5"/>'
        )
        out.extend(
            f'<circle cx="{x(d):.1f}" cy="{y1(v):.1f}" r="2.5" fill="#3b7dd8">'
            f"<title>{pd.Timestamp(d):%Y-%m-%d}: EnPI {v:.3f}</title></circle>"
            for d, v in zip(enpi["local_date"], enpi["enpi"], strict=True)
        )

    top2 = 20 + panel_h + gap
    cusum = p.dropna(subset=["cusum_savings_kwh"])
    if len(cusum):
        band = cusum["uncertainty_68_kwh"].fillna(0.0)
        lows, highs = cusum["cusum_savings_kwh"] - band, cusum["cusum_savings_kwh"] + band
        y2 = panel(top2, min(lows.min(), 0.0), max(highs.max(), 0.0), "CUSUM of savings, kWh")
        dates = list(cusum["local_date"])
        polygon = " ".join(
            [f"{x(d):.1f},{y2(v):.1f}" for d, v in zip(dates, highs, strict=True)]
            + [f"{x(d):.1f},{y2(v):.1f}" for d, v in zip(dates[::-1], lows[::-1], strict=True)]
        )
        points = " ".join(
            f"{x(d):.1f},{y2(v):.1f}"
            for d, v in zip(dates, cusum["cusum_savings_kwh"], strict=True)
        )
        out.append(f'<polygon points="{polygon}" fill="#3b7dd8" fill-opacity="0.18"/>')
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y2(0):.1f}" y2="{y2(0):.1f}" '
            'stroke="#444"/>'
        )
        out.append(
            f'<polyline class="cusum" points="{points}" fill="none" stroke="#3b7dd8" '
            'stroke-width="1.8"/>'
        )
    else:
        out.append(
            f'<text class="axis" x="{left}" y="{top2 + 20}">No day after the baseline period in '
            "the report period: no CUSUM yet.</text>"
        )
    bottom = top2 + panel_h
    for day in days:
        if day == first or day.day == 1 or (len(days) <= 62 and day.weekday() == 0):
            out.append(
                f'<text class="axis" x="{x(day):.1f}" y="{bottom + 18}" '
                f'text-anchor="middle">{day:%d %b}</text>'
            )
    return (
        f'<svg class="trend" viewBox="0 0 {width} {bottom + 26}" width="{width}" '
        f'height="{bottom + 26}" role="img" aria-label="EnPI and CUSUM">{"".join(out)}</svg>'
    )


def _decimals(ticks: list[float]) -> int:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    return max(0, -math.floor(math.log10(step))) if step < 1 else 0


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;margin:0;
background:#fafafa}
header{background:#1f3a5f;color:#fff;padding:18px 28px 10px}
header h1{margin:0;font-size:24px}
header .sub{margin:4px 0 8px;opacity:.85}
nav a{color:#cfe0ff;margin-right:14px;text-decoration:none;font-size:13px}
main{padding:8px 28px 28px;max-width:1180px}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:6px 18px 16px;
margin:16px 0}
h2{font-size:18px;color:#1f3a5f}
h3{font-size:15px}
.tiles{display:flex;flex-wrap:wrap;gap:10px}
.tile{border:1px solid #dde3ea;border-radius:6px;padding:8px 14px;min-width:140px;
background:#f6f9fc}
.tile .k{font-size:12px;color:#566}
.tile .v{font-size:20px;font-weight:600}
.wide{overflow-x:auto}
svg text{font-size:11px;fill:#222}
svg text.column{font-size:12px;font-weight:600;fill:#1f3a5f}
svg text.axis{font-size:10px;fill:#555}
svg text.small{font-size:8px}
svg text.in{font-size:9px;fill:#fff}
table{border-collapse:collapse;font-size:13px;width:100%}
th,td{border-bottom:1px solid #eee;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f2f5f9;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums}
td.worse{color:#b2182b;font-weight:600}
td.bar{min-width:110px;position:relative}
td.bar i{display:block;height:14px;background:#8aa6d4}
td.bar span{position:absolute;right:8px;top:4px;font-size:11px}
td.split{min-width:140px}
td.split i{display:inline-block;height:14px}
.legend{margin:4px 0 8px}
.key{margin-right:14px;font-size:12px}
.key i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-2px}
.note{color:#6a5b2b;background:#fff8e1;border-left:4px solid #e0a030;padding:8px 12px}
.sev{padding:1px 6px;border-radius:3px;color:#fff;font-size:12px}
.sev.low{background:#d8a23a}.sev.medium{background:#e57a3c}.sev.high{background:#b2182b}
footer{font-size:12px;color:#555}
footer h2{font-size:14px}
@media print{body{background:#fff}section{break-inside:avoid;border:none}}
"""
