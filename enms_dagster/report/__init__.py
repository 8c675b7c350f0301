"""The energy report: one self-contained HTML file per site and period (``html``, ``sankey``),
filled from the warehouse (``data``); the Dagster asset is ``enms_dagster.assets.report``."""

from enms_dagster.report.contract import ReportData
from enms_dagster.report.data import last_day_with_data, load_report_data, report_sites
from enms_dagster.report.html import build_report_html

__all__ = [
    "ReportData",
    "build_report_html",
    "last_day_with_data",
    "load_report_data",
    "report_sites",
]
