"""The energy flow of a site as a Sankey diagram in inline SVG, drawn here (no chart library):
site → energy source → line → machine type → machine → productive / idle / out-of-hours.

Every column carries the whole energy of the site, so a node's height is its kWh on one scale.
Each node and ribbon carries its kWh in a ``data-kwh`` attribute, the numbers it is drawn from,
so the flow can be checked (conservation at every node) from the SVG itself.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from html import escape

import pandas as pd

COLUMNS = ("site", "energy source", "line", "machine type", "machine", "use")
USES = {
    "productive": ("productive", "#4e9a5b"),
    "idle": ("idle", "#e0a030"),
    "out_of_hours": ("out of hours", "#c8473d"),
}
NO_LINE = "(no line)"
_COLUMN_COLOURS = ("#2f4b7c", "#4a6fa5", "#6b8cc0", "#8aa6d4", "#a9c0e4")


@dataclass(frozen=True)
class Node:
    node_id: str
    label: str
    column: int


@dataclass(frozen=True)
class Flow:
    source: str
    target: str
    kwh: float


def energy_flows(machines: pd.DataFrame, site_label: str) -> tuple[list[Node], list[Flow]]:
    """Nodes and flows from one row per machine with ``machine_id``, ``machine_type``, ``line``,
    ``energy_source`` and the split of its energy into ``productive_kwh``, ``idle_kwh`` and
    ``out_of_hours_kwh``. A machine's energy is the sum of its split; machines without energy
    are left out. Machine types and lines are shared nodes, so flows may converge."""
    uses = [f"{use}_kwh" for use in USES]
    rows = machines.assign(
        line=machines["line"].fillna(NO_LINE).replace("", NO_LINE),
        **{c: machines[c].fillna(0.0).clip(lower=0.0) for c in uses},
    )
    rows = rows.assign(total=rows[uses].sum(axis=1))
    rows = rows[rows["total"] > 0]

    nodes: dict[str, Node] = {}
    flows: dict[tuple[str, str], float] = defaultdict(float)

    def node(column: int, key: str, label: str) -> str:
        node_id = f"{COLUMNS[column].replace(' ', '_')}:{key}"
        nodes.setdefault(node_id, Node(node_id, label, column))
        return node_id

    site = node(0, site_label, site_label)
    for r in rows.itertuples(index=False):
        path = [
            site,
            node(1, r.energy_source, r.energy_source),
            node(2, r.line, r.line),
            node(3, r.machine_type, r.machine_type),
            node(4, r.machine_id, r.machine_id),
        ]
        for a, b in zip(path, path[1:], strict=False):
            flows[(a, b)] += r.total
        for use, (label, _) in USES.items():
            kwh = getattr(r, f"{use}_kwh")
            if kwh > 0:
                flows[(path[-1], node(5, use, label))] += kwh
    return list(nodes.values()), [Flow(a, b, kwh) for (a, b), kwh in flows.items()]


def sankey_svg(
    nodes: list[Node], flows: list[Flow], width: int = 1100, title: str = "Energy flow"
) -> str:
    """The diagram as an ``<svg>`` element (empty flows give a one-line note instead)."""
    if not flows:
        return '<p class="note">No energy recorded in the period.</p>'
    by_id = {n.node_id: n for n in nodes}
    inflow: dict[str, list[Flow]] = defaultdict(list)
    outflow: dict[str, list[Flow]] = defaultdict(list)
    for f in flows:
        outflow[f.source].append(f)
        inflow[f.target].append(f)
    value = {n: max(sum(f.kwh for f in inflow[n]), sum(f.kwh for f in outflow[n])) for n in by_id}
    columns: list[list[str]] = [[] for _ in COLUMNS]
    for n in nodes:
        columns[n.column].append(n.node_id)
    total = sum(value[n] for n in columns[0])

    node_w, gap, top, label_w = 12, 14, 34, 180
    crowded = max(len(c) for c in columns)
    height = max(380, crowded * 24 + top + 20)
    scale = (height - top - 20 - gap * (crowded - 1)) / total
    step = (width - label_w - node_w - 10) / (len(COLUMNS) - 1)
    x = {n.node_id: 10 + n.column * step for n in nodes}
    y: dict[str, float] = {}
    centre: dict[str, float] = {}
    use_order = [f"use:{u}" for u in USES]
    for c, ids in enumerate(columns):
        if c == len(COLUMNS) - 1:
            ids.sort(key=use_order.index)
        elif c > 0:
            ids.sort(key=lambda n: (_barycentre(inflow[n], centre), -value[n]))
        used = sum(value[n] * scale for n in ids) + gap * (len(ids) - 1)
        cursor = top + (height - top - 20 - used) / 2
        for n in ids:
            y[n] = cursor
            centre[n] = cursor + value[n] * scale / 2
            cursor += value[n] * scale + gap

    # ribbons leave a node in the order of their targets and enter in the order of their sources
    out_offset, in_offset, starts = dict(y), dict(y), {}
    for f in sorted(flows, key=lambda f: (y[f.source], y[f.target])):
        starts[(f.source, f.target)] = out_offset[f.source]
        out_offset[f.source] += f.kwh * scale
    ribbons = []
    for f in sorted(flows, key=lambda f: (y[f.target], y[f.source])):
        w = f.kwh * scale
        y0, y1 = starts[(f.source, f.target)], in_offset[f.target]
        in_offset[f.target] += w
        x0, x1 = x[f.source] + node_w, x[f.target]
        xm = (x0 + x1) / 2
        colour = USES[f.target.split(":", 1)[1]][1] if f.target in use_order else "#7f93b0"
        share = f.kwh / total
        tip = f"{by_id[f.source].label} → {by_id[f.target].label}: {f.kwh:,.1f} kWh ({share:.1%})"
        ribbons.append(
            f'<path class="flow" data-source="{escape(f.source)}" '
            f'data-target="{escape(f.target)}" data-kwh="{f.kwh:.6f}" fill="{colour}" '
            f'fill-opacity="0.38" d="M{x0:.1f},{y0:.2f} C{xm:.1f},{y0:.2f} {xm:.1f},{y1:.2f} '
            f"{x1:.1f},{y1:.2f} L{x1:.1f},{y1 + w:.2f} C{xm:.1f},{y1 + w:.2f} {xm:.1f},"
            f'{y0 + w:.2f} {x0:.1f},{y0 + w:.2f} Z"><title>{escape(tip)}</title></path>'
        )

    boxes = []
    for n in nodes:
        v, h = value[n.node_id], max(value[n.node_id] * scale, 1.0)
        colour = (
            USES[n.node_id.split(":", 1)[1]][1]
            if n.column == len(COLUMNS) - 1
            else _COLUMN_COLOURS[n.column]
        )
        label = n.label if len(n.label) <= 24 else n.label[:23] + "…"
        tx, ty = x[n.node_id] + node_w + 4, y[n.node_id] + h / 2
        if h >= 26:  # room for the kWh on a line of its own
            text = (
                f'<text x="{tx:.1f}" y="{ty - 6:.2f}" dominant-baseline="middle">{escape(label)}'
                f'<tspan x="{tx:.1f}" dy="13" class="kwh">{v:,.0f} kWh</tspan></text>'
            )
        else:
            text = (
                f'<text x="{tx:.1f}" y="{ty:.2f}" dominant-baseline="middle">'
                f"{escape(label if len(label) <= 14 else label[:13] + '…')} · {v:,.0f} kWh</text>"
            )
        boxes.append(
            f'<g class="node" data-node="{escape(n.node_id)}" data-column="{n.column}" '
            f'data-kwh="{v:.6f}"><rect x="{x[n.node_id]:.1f}" y="{y[n.node_id]:.2f}" '
            f'width="{node_w}" height="{h:.2f}" fill="{colour}"/>{text}'
            f"<title>{escape(f'{n.label}: {v:,.1f} kWh ({v / total:.1%})')}</title></g>"
        )
    headers = "".join(
        f'<text class="column" x="{10 + c * step:.1f}" y="16">{escape(name)}</text>'
        for c, name in enumerate(COLUMNS)
    )
    return (
        f'<svg class="sankey" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}" '
        f'data-total-kwh="{total:.6f}">'
        f"<title>{escape(title)}</title>{headers}"
        f'<g class="flows">{"".join(ribbons)}</g><g class="nodes">{"".join(boxes)}</g></svg>'
    )


def _barycentre(incoming: list[Flow], centre: dict[str, float]) -> float:
    """kWh-weighted mean height of the sources feeding a node: keeps ribbons from crossing."""
    weight = sum(f.kwh for f in incoming)
    return sum(centre[f.source] * f.kwh for f in incoming) / weight if weight else 0.0
