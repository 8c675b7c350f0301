"""Small PNG charts for asset metadata, as Markdown with a base64 ``data:`` image (the Dagster UI
renders it). Kept small: a few kilobytes each. Figures are drawn with matplotlib's object API
(no pyplot, no backend switch), imported when a chart is drawn rather than when the code
location loads."""

from __future__ import annotations

import base64
import io


def subplots(*grid: int, figsize: tuple[float, float], dpi: int = 80, **kwargs):
    """A new figure and its axes (like ``pyplot.subplots``), not registered with pyplot, so
    nothing needs closing and no GUI backend is involved."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    return fig, fig.subplots(*grid, **kwargs)


def figure_markdown(fig, title: str) -> str:
    """The figure as a Markdown image with a base64 PNG ``data:`` URL."""
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    encoded = base64.b64encode(buf.getvalue()).decode()
    return f"![{title}](data:image/png;base64,{encoded})"


def actual_vs_expected_markdown(
    x: list, actual: list[float], expected: list[float], title: str
) -> str:
    """Two panels: actual and model-expected energy over time, and the residuals below."""
    fig, (top, bottom) = subplots(
        2, 1, figsize=(7, 3.6), dpi=80, sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    top.plot(x, actual, color="#3b7dd8", lw=1.2, label="actual")
    top.plot(x, expected, color="#e07b39", lw=1.0, ls="--", label="expected (baseline)")
    top.set_ylabel("kWh")
    top.legend(fontsize=7, loc="upper right")
    top.set_title(title, fontsize=10)
    residuals = [a - e for a, e in zip(actual, expected, strict=True)]
    bottom.bar(x, residuals, color="#888888", width=0.8)
    bottom.axhline(0, color="black", lw=0.6)
    bottom.set_ylabel("actual − expected", fontsize=7)
    for ax in (top, bottom):
        ax.tick_params(labelsize=7)
    fig.autofmt_xdate()
    return figure_markdown(fig, title)


def cusum_markdown(x: list, cusum: list[float], band: list[float], title: str) -> str:
    """CUSUM of savings with its uncertainty band (± band)."""
    fig, ax = subplots(figsize=(7, 2.6), dpi=80)
    low = [c - u for c, u in zip(cusum, band, strict=True)]
    high = [c + u for c, u in zip(cusum, band, strict=True)]
    ax.fill_between(x, low, high, color="#3b7dd8", alpha=0.2, label="68 % uncertainty")
    ax.plot(x, cusum, color="#3b7dd8", lw=1.4, label="CUSUM of savings")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel("kWh saved")
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper left")
    fig.autofmt_xdate()
    return figure_markdown(fig, title)


def forecast_markdown(
    x: list,
    actual: list[float | None],
    forecast: list[float],
    lower: list[float],
    upper: list[float],
    title: str,
    interval_label: str = "80 % interval",
) -> str:
    """Forecast with its prediction interval as a band, and the actuals where they have landed
    (``None`` where not yet)."""
    fig, ax = subplots(figsize=(7, 2.8), dpi=80)
    ax.fill_between(x, lower, upper, color="#e07b39", alpha=0.2, step="mid", label=interval_label)
    ax.plot(x, forecast, color="#e07b39", lw=1.1, ls="--", label="forecast")
    ax.plot(
        x,
        [float("nan") if a is None else a for a in actual],
        color="#3b7dd8",
        lw=1.2,
        label="actual",
    )
    ax.set_ylabel("kWh per hour")
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper left")
    fig.autofmt_xdate()
    return figure_markdown(fig, title)
