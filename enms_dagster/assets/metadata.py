"""Metadata the Dagster UI shows natively: tables with a typed schema (sortable, not Markdown),
instants as timestamps (shown in the viewer's zone, all in one offset) and plain numbers (which
the asset's Plots tab draws over materializations)."""

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from decimal import Decimal

import dagster as dg


def plain(value: object) -> str | int | float | bool | None:
    """A database value as a table cell: Decimals as floats, days and instants as ISO text."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def native_table(columns: Sequence[str], rows: Iterable[Sequence]) -> dg.TableMetadataValue:
    """Rows as a Dagster table; each column typed by its first non-empty value (a column of
    only empty cells is text)."""
    cells = [[plain(v) for v in row] for row in rows]
    types = []
    for i, name in enumerate(columns):
        first = next((row[i] for row in cells if row[i] is not None), None)
        types.append(dg.TableColumn(name, dg.TableMetadataValue.infer_column_type(first)))
    return dg.MetadataValue.table(
        records=[dg.TableRecord(dict(zip(columns, row, strict=True))) for row in cells],
        schema=dg.TableSchema(columns=types),
    )


def window_timestamps(time_window: dg.TimeWindow) -> dict[str, dg.TimestampMetadataValue]:
    """The partition window's start and end as timestamps."""
    return {
        "window_start": dg.MetadataValue.timestamp(time_window.start),
        "window_end": dg.MetadataValue.timestamp(time_window.end),
    }


def plottable(value: object, digits: int | None = None) -> float | None:
    """A total or mean from SQL as a float the Plots tab can draw (``None`` when undefined)."""
    value = plain(value)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return round(float(value), digits) if digits is not None else float(value)
