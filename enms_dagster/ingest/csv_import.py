"""Import historical readings from CSV through the one landing path (``land_batch``).

Two layouts, told apart by the header:

- long: ``ts,machine,metric,value`` — one reading per line;
- wide: ``ts,machine,<metric>,<metric>,...`` — one sample per line, an empty cell is no reading.

Timestamps are ISO 8601; with an offset they are exact, without one they are read in the
machine's site time zone, and a local time that falls in a daylight-saving gap or overlap is
quarantined (``dst_gap`` / ``dst_ambiguous``) rather than guessed. Any line that cannot be used
is quarantined whole, with its raw bytes and its line number; the good lines still land. The
file is read as CSV records (a quoted value may span lines) and landed in chunks, so memory
stays bounded; landing twice adds nothing (readings are keyed on machine, metric and ts,
quarantined records are not repeated). The delimiter is ``,``: a header that only makes sense
split on ``;`` or a tab is refused with a message saying so.

Readings outside the plausible time window (``PlausibleTime``: by default 400 days back, 5
minutes ahead) are quarantined as ``too_old`` / ``future_timestamp``; an import of older history
states its start explicitly (``window.since``, ``enms import --since DATE``).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

from enms_dagster.ingest.landing import QuarantinedInput, land_batch
from enms_dagster.ingest.payload import PlausibleTime, Reading, Rejection
from enms_dagster.plant import STATE_CODES
from enms_dagster.progress import ProgressCallback

SOURCE = "import"
LONG_COLUMNS = ("ts", "machine", "metric", "value")
PROGRESS_EVERY_LINES = 10_000


class ImportFormatError(ValueError):
    """The file as a whole cannot be imported (its header); nothing was landed."""


@dataclass(frozen=True)
class ImportRegistry:
    """What an import checks a line against: machines with their site's zone and commissioning
    instant, and the metric catalog."""

    zones: dict[str, ZoneInfo]
    commissioned: dict[str, dt.datetime]
    metrics: frozenset[str]


@dataclass
class ImportResult:
    path: str
    lines: int = 0
    readings: int = 0
    inserted: int = 0
    rejected: int = 0  # lines that could not be used
    quarantined: int = 0  # of those, stored in raw.quarantine now (not already there)
    batches: int = 0

    @property
    def duplicates(self) -> int:
        return self.readings - self.inserted

    def summary(self) -> str:
        return (
            f"{self.path}: {self.lines:,} lines, {self.inserted:,} readings landed, "
            f"{self.duplicates:,} already there, {self.rejected:,} lines set aside "
            f"({self.quarantined:,} newly in raw.quarantine; {self.batches} batches)"
        )


def load_import_registry(conn: psycopg.Connection) -> ImportRegistry:
    rows = conn.execute(
        "SELECT m.machine_id, s.timezone, s.commissioned_on "
        "FROM core.machines m JOIN core.sites s USING (site_id)"
    ).fetchall()
    metrics = frozenset(m for (m,) in conn.execute("SELECT metric FROM core.metrics")) | {"state"}
    zones = {m: ZoneInfo(tz) for m, tz, _ in rows}
    return ImportRegistry(
        zones=zones,
        commissioned={m: dt.datetime.combine(d, dt.time(), zones[m]) for m, _, d in rows},
        metrics=metrics,
    )


class LineParser:
    """Turns one CSV line into readings, or a rejection; pure (no I/O)."""

    def __init__(
        self,
        header: list[str],
        registry: ImportRegistry,
        now: dt.datetime,
        window: PlausibleTime | None = None,
    ):
        columns = [c.strip().lower() for c in header]
        self.registry = registry
        self.now = now
        self.earliest, self.latest = (window or PlausibleTime()).bounds(now)
        if tuple(columns) == LONG_COLUMNS:
            self.long = True
            self.metric_columns: list[str] = []
        elif columns[:2] == ["ts", "machine"] and len(columns) > 2:
            self.long = False
            self.metric_columns = columns[2:]
            unknown = [c for c in self.metric_columns if c not in registry.metrics]
            if unknown:
                raise ImportFormatError(f"header names metrics not in the catalog: {unknown}")
        else:
            for other, name in ((";", "';'"), ("\t", "tab")):
                split = [c.strip().lower() for c in ",".join(header).split(other)]
                if split[:2] == ["ts", "machine"] and len(split) > 2:
                    raise ImportFormatError(
                        f"the header looks {name}-separated; this importer expects ',' "
                        "(e.g. convert with: sed 's/;/,/g')"
                    )
            raise ImportFormatError(
                f"header {header!r}: expected 'ts,machine,metric,value' (long) or "
                "'ts,machine,<metric>,...' (wide)"
            )
        self.width = len(columns)

    def parse(self, fields: list[str]) -> tuple[list[Reading], Rejection | None]:
        if len(fields) != self.width:
            return [], Rejection("bad_shape", f"{len(fields)} fields, the header has {self.width}")
        machine = fields[1].strip()
        zone = self.registry.zones.get(machine)
        if zone is None:
            return [], Rejection("unknown_machine", f"machine {machine!r} not registered")
        ts, problem = self._timestamp(fields[0].strip(), zone)
        if problem is not None:
            return [], problem
        if ts > self.latest:
            return [], Rejection(
                "future_timestamp", f"ts {ts.isoformat()} is after {self.latest.isoformat()}"
            )
        if ts < self.registry.commissioned[machine]:
            return [], Rejection(
                "before_commissioning",
                f"ts {ts.isoformat()} precedes commissioning "
                f"{self.registry.commissioned[machine].date()}",
            )
        if ts < self.earliest:
            return [], Rejection(
                "too_old",
                f"ts {ts.isoformat()} is before {self.earliest.isoformat()} "
                "(older history: enms import --since DATE)",
            )
        if self.long:
            cells = [(fields[2].strip(), fields[3])]
            if cells[0][0] not in self.registry.metrics:
                return [], Rejection("unknown_metric", f"metric {cells[0][0]!r} not in catalog")
        else:
            cells = [(m, v) for m, v in zip(self.metric_columns, fields[2:], strict=True)]
            cells = [(m, v) for m, v in cells if v.strip()]
            if not cells:
                return [], Rejection("bad_shape", "line carries no values")
        readings = []
        for metric, text in cells:
            value, problem = _number(metric, text.strip())
            if problem is not None:
                return [], problem
            readings.append((machine, metric, ts, value))
        return readings, None

    @staticmethod
    def _timestamp(text: str, zone: ZoneInfo) -> tuple[dt.datetime, Rejection | None]:
        try:
            ts = dt.datetime.fromisoformat(text)
        except ValueError:
            return dt.datetime.min, Rejection("bad_timestamp", f"ts {text!r} is not ISO 8601")
        if ts.tzinfo is not None:
            return ts, None
        early, late = ts.replace(tzinfo=zone, fold=0), ts.replace(tzinfo=zone, fold=1)
        if early.utcoffset() == late.utcoffset():
            return early, None
        if early.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) != ts:
            return ts, Rejection(
                "dst_gap", f"local time {text} does not exist in {zone.key} (clocks went forward)"
            )
        return ts, Rejection(
            "dst_ambiguous",
            f"local time {text} occurs twice in {zone.key} (clocks went back); give an offset",
        )


def _number(metric: str, text: str) -> tuple[float, Rejection | None]:
    if metric == "state" and text in STATE_CODES:
        return float(STATE_CODES[text]), None
    try:
        value = float(text)
    except ValueError:
        return 0.0, Rejection("bad_number", f"{metric} value {text!r} is not a number")
    if not math.isfinite(value):
        return 0.0, Rejection("non_finite_number", f"{metric} value {text!r} is not finite")
    return value, None


class _RecordLines:
    """Feeds a csv reader line by line and keeps the physical lines of the record it is reading,
    so a rejected record is quarantined with its own bytes and first line number."""

    def __init__(self, lines: Iterable[str]):
        self._lines = iter(lines)
        self.taken: list[str] = []
        self.line = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        text = next(self._lines)
        self.line += 1
        self.taken.append(text)
        return text

    def record_bytes(self) -> bytes:
        raw = "".join(self.taken).encode("utf-8", "surrogateescape").rstrip(b"\r\n")
        self.taken.clear()
        return raw


def import_csv(
    conn: psycopg.Connection,
    path: Path | str,
    *,
    chunk_lines: int = 50_000,
    now: dt.datetime | None = None,
    window: PlausibleTime | None = None,
    progress: ProgressCallback | None = None,
) -> ImportResult:
    """Land a CSV file chunk by chunk with ``land_batch`` (source 'import', topic the absolute
    file path); return how many records, readings landed and records quarantined.
    ``progress`` hears the share of the file read and the lines so far."""
    path = Path(path).resolve()
    topic = str(path)
    now = now or dt.datetime.now(dt.UTC)
    registry = load_import_registry(conn)
    seen = {
        (bytes(p), d)
        for p, d in conn.execute(
            "SELECT payload, detail FROM raw.quarantine WHERE source = %s AND topic = %s",
            (SOURCE, topic),
        )
    }
    result = ImportResult(topic)
    window = window or PlausibleTime()
    size = path.stat().st_size or 1
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as f:

        def report() -> None:
            if progress is not None:
                read = min(f.buffer.tell() / size, 1.0)
                progress(read, result.lines, f"{result.readings:,} readings")

        source = _RecordLines(f)
        records = csv.reader(source)
        try:
            header = next(records, None)
        except csv.Error as exc:
            raise ImportFormatError(f"{path}: header: {exc}") from None
        if header is None:
            raise ImportFormatError(f"{path}: empty file")
        source.record_bytes()
        try:
            parser = LineParser(header, registry, now, window)
        except ImportFormatError as exc:
            raise ImportFormatError(f"{path}, line 1: {exc}") from None
        _land_records(
            conn, records, source, parser, topic, seen, result, chunk_lines, window, now, report
        )
    return result


def _land_records(
    conn: psycopg.Connection,
    records: Iterator[list[str]],
    source: _RecordLines,
    parser: LineParser,
    topic: str,
    seen: set[tuple[bytes, str]],
    result: ImportResult,
    chunk_lines: int,
    window: PlausibleTime,
    now: dt.datetime,
    report: Callable[[], None],
) -> None:
    readings: list[Reading] = []
    quarantined: list[QuarantinedInput] = []
    in_chunk = 0

    def flush() -> None:
        nonlocal readings, quarantined, in_chunk
        if in_chunk:
            batch = land_batch(
                conn,
                readings,
                quarantined,
                source=SOURCE,
                messages=in_chunk,
                window=window,
                now=now,
            )
            result.inserted += batch.inserted
            result.batches += 1
        readings, quarantined, in_chunk = [], [], 0

    while True:
        number = source.line + 1
        try:
            fields = next(records)
        except StopIteration:
            break
        except csv.Error as exc:
            fields, error = None, Rejection("bad_shape", str(exc))
        raw = source.record_bytes()
        if fields is not None and not raw.strip():
            continue
        result.lines += 1
        in_chunk += 1
        if fields is None:
            new, problem = [], error
        elif any("\udc80" <= c <= "\udcff" for f in fields for c in f):
            new, problem = [], Rejection("invalid_utf8", "the record is not valid UTF-8")
        else:
            new, problem = parser.parse(fields)
        if problem is None:
            readings.extend(new)
            result.readings += len(new)
        else:
            result.rejected += 1
            rejection = Rejection(problem.reason, f"line {number}: {problem.detail}")
            if (raw, rejection.detail) not in seen:
                quarantined.append(QuarantinedInput(topic, raw, rejection))
                result.quarantined += 1
        if in_chunk >= chunk_lines:
            flush()
        if result.lines % PROGRESS_EVERY_LINES == 0:
            report()
    flush()
