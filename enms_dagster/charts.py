"""Small PNG charts for asset metadata, as Markdown with a base64 ``data:`` image (the Dagster UI
renders it). Kept small: a few kilobytes each."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def bar_chart_markdown(labels: list[str], values: list[float], title: str, unit: str) -> str:
    fig, ax = plt.subplots(figsize=(6, 0.25 * len(labels) + 1.0), dpi=80)
    try:
        ax.barh(labels[::-1], values[::-1], color="#3b7dd8")
        ax.set_xlabel(unit)
        ax.set_title(title, fontsize=10)
        ax.tick_params(labelsize=8)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    encoded = base64.b64encode(buf.getvalue()).decode()
    return f"![{title}](data:image/png;base64,{encoded})"


def markdown_table(columns: list[str], rows: list[tuple]) -> str:
    def fmt(value) -> str:
        return f"{value:,.2f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
