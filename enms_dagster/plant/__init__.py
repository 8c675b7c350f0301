"""The plant registry as data: sites, machine types, metrics, machines, tariffs, emission factors.

A plant file is YAML (see ``reference_plant.yaml``). Loading validates it and says exactly what is
wrong and where, because a plant file is written by hand.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

METRIC_KINDS = ("gauge", "counter", "interval", "state")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
STATE_CODES = {"off": 0, "idle": 1, "running": 2}


class PlantFileError(ValueError):
    """The plant file is not usable; the message names the file and the offending entry."""


@dataclass(frozen=True)
class Shift:
    weekdays: tuple[int, ...]  # 0 = Monday
    start: dt.time
    end: dt.time


@dataclass(frozen=True)
class BaselineSettings:
    """A machine's or site's ``baseline:`` entry: candidate drivers and the baseline period
    (local dates, inclusive). Unset fields take the defaults of ``baselines.registry``."""

    drivers: tuple[str, ...] | None = None
    start: dt.date | None = None
    end: dt.date | None = None


@dataclass(frozen=True)
class Site:
    site_id: str
    name: str
    timezone: str
    commissioned_on: dt.date
    shift: Shift
    holidays: frozenset[dt.date] = frozenset()
    tariffs: tuple[dict[str, Any], ...] = ()
    emission_factors: tuple[dict[str, Any], ...] = ()
    baseline: BaselineSettings = BaselineSettings()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Metric:
    metric: str
    unit: str
    kind: str
    min_value: float | None = None
    max_value: float | None = None
    description: str = ""


@dataclass(frozen=True)
class MachineType:
    machine_type: str
    description: str = ""
    sample_interval_s: int | None = None


@dataclass(frozen=True)
class Machine:
    machine_id: str
    site_id: str
    name: str
    machine_type: str
    line: str | None = None
    rated_power_kw: float | None = None
    energy_source: str = "electricity"
    baseline: BaselineSettings = BaselineSettings()


@dataclass(frozen=True)
class Plant:
    sites: dict[str, Site]
    machine_types: dict[str, MachineType]
    metrics: dict[str, Metric]
    machines: dict[str, Machine] = field(default_factory=dict)
    history_start: dt.date | None = None  # first local day of the plant's data, if declared

    def site_of(self, machine_id: str) -> Site:
        return self.sites[self.machines[machine_id].site_id]


def _time(value: Any, where: str) -> dt.time:
    try:
        return dt.time.fromisoformat(str(value))
    except ValueError as exc:
        raise PlantFileError(f"{where}: {value!r} is not a time like '06:00'") from exc


def _number(value: Any, where: str, example: str, *, positive: bool = False) -> float | None:
    """An optional finite number of the plant file (``None`` stays ``None``)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PlantFileError(f"{where}: {value!r} is not a number (write e.g. {example})")
    if positive and value <= 0:
        raise PlantFileError(f"{where}: {value!r} must be above 0 (e.g. {example})")
    return float(value)


def _whole(value: float | None, where: str) -> int | None:
    if value is not None and value != int(value):
        raise PlantFileError(f"{where}: {value!r} must be a whole number of seconds")
    return None if value is None else int(value)


def _date(value: Any, where: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise PlantFileError(f"{where}: {value!r} is not a date like 2025-01-01") from exc


def _baseline(entry: dict, where: str) -> BaselineSettings:
    spec = entry.get("baseline") or {}
    if not isinstance(spec, dict):
        raise PlantFileError(f"{where}: baseline must be a mapping with drivers, start, end")
    unknown = sorted(set(spec) - {"drivers", "start", "end"})
    if unknown:
        raise PlantFileError(f"{where}: unknown baseline fields {unknown} (drivers, start, end)")
    drivers = spec.get("drivers")
    if drivers is not None and not (
        isinstance(drivers, list) and all(isinstance(d, str) for d in drivers)
    ):
        raise PlantFileError(f"{where}: baseline.drivers must be a list of driver names")
    return BaselineSettings(
        drivers=tuple(drivers) if drivers is not None else None,
        start=_date(spec["start"], where) if spec.get("start") else None,
        end=_date(spec["end"], where) if spec.get("end") else None,
    )


def _require(entry: dict, key: str, where: str) -> Any:
    if key not in entry or entry[key] in (None, ""):
        raise PlantFileError(f"{where}: missing required field '{key}'")
    return entry[key]


def parse_plant(doc: dict, source: str = "<plant>") -> Plant:
    """Validate a parsed plant document and build the registry."""
    if not isinstance(doc, dict):
        raise PlantFileError(f"{source}: expected a mapping with sites, machine_types, metrics")
    sites = {}
    for i, entry in enumerate(doc.get("sites") or []):
        where = f"{source}: sites[{i}]"
        site_id = str(_require(entry, "site_id", where))
        tz = str(_require(entry, "timezone", where))
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise PlantFileError(f"{where} ({site_id}): unknown time zone {tz!r}") from exc
        shifts = entry.get("shifts") or {}
        days = shifts.get("weekdays", ["mon", "tue", "wed", "thu", "fri"])
        unknown = [d for d in days if d not in WEEKDAYS]
        if unknown:
            raise PlantFileError(f"{where} ({site_id}): unknown weekdays {unknown}")
        sites[site_id] = Site(
            site_id=site_id,
            name=str(entry.get("name", site_id)),
            timezone=tz,
            commissioned_on=_date(_require(entry, "commissioned_on", where), where),
            shift=Shift(
                weekdays=tuple(WEEKDAYS.index(d) for d in days),
                start=_time(shifts.get("start", "06:00"), where),
                end=_time(shifts.get("end", "22:00"), where),
            ),
            holidays=frozenset(_date(d, where) for d in entry.get("holidays") or []),
            tariffs=tuple(entry.get("tariffs") or []),
            emission_factors=tuple(entry.get("emission_factors") or []),
            baseline=_baseline(entry, where),
        )
    if not sites:
        raise PlantFileError(f"{source}: declares no sites")

    machine_types = {
        name: MachineType(
            name,
            str(spec.get("description", "")),
            _whole(
                _number(
                    spec.get("sample_interval_s"),
                    f"{source}: machine type {name!r} sample_interval_s",
                    "sample_interval_s: 10",
                    positive=True,
                ),
                f"{source}: machine type {name!r} sample_interval_s",
            ),
        )
        for name, spec in (doc.get("machine_types") or {}).items()
    }
    metrics = {}
    for name, spec in (doc.get("metrics") or {}).items():
        kind = spec.get("kind")
        if kind not in METRIC_KINDS:
            raise PlantFileError(
                f"{source}: metric {name!r} has kind {kind!r}; expected one of {METRIC_KINDS}"
            )
        metrics[name] = Metric(
            name,
            str(_require(spec, "unit", f"{source}: metric {name!r}")),
            kind,
            _number(spec.get("min"), f"{source}: metric {name!r} min", "min: 0"),
            _number(spec.get("max"), f"{source}: metric {name!r} max", "max: 5000"),
            str(spec.get("description", "")),
        )

    machines = {}
    for i, entry in enumerate(doc.get("machines") or []):
        where = f"{source}: machines[{i}]"
        machine_id = str(_require(entry, "machine_id", where))
        if machine_id in machines:
            raise PlantFileError(f"{where}: duplicate machine_id {machine_id!r}")
        site_id = str(_require(entry, "site", where))
        if site_id not in sites:
            raise PlantFileError(
                f"{where} ({machine_id}): unknown site {site_id!r}; known: {sorted(sites)}"
            )
        machine_type = str(_require(entry, "type", where))
        if machine_type not in machine_types:
            raise PlantFileError(
                f"{where} ({machine_id}): unknown machine type {machine_type!r}; "
                f"declare it under machine_types (known: {sorted(machine_types)})"
            )
        rated = entry.get("rated_power_kw")
        machines[machine_id] = Machine(
            machine_id=machine_id,
            site_id=site_id,
            name=str(entry.get("name", machine_id)),
            machine_type=machine_type,
            line=entry.get("line"),
            rated_power_kw=_number(
                rated,
                f"{where} ({machine_id}): rated_power_kw",
                "rated_power_kw: 75",
                positive=True,
            ),
            energy_source=str(entry.get("energy_source", "electricity")),
            baseline=_baseline(entry, where),
        )
    return Plant(sites, machine_types, metrics, machines, _history_start(doc, source))


def _history_start(doc: dict, source: str) -> dt.date | None:
    """The optional top-level ``history_start``: the first local day of the plant's data (its
    daily partitions begin there), not in the future."""
    value = doc.get("history_start")
    if value is None:
        return None
    where = f"{source}: history_start"
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date | str):
        raise PlantFileError(f"{where}: {value!r} is not a date like 2016-01-01")
    day = _date(value, where)
    if day > dt.date.today():
        raise PlantFileError(f"{where}: {day} is in the future; name the first day of data")
    return day


def load_plant(path: Path | str) -> Plant:
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise PlantFileError(
            f"plant file not found: {path}; give the path of an existing plant file"
        ) from exc
    except OSError as exc:
        raise PlantFileError(f"plant file {path} cannot be read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PlantFileError(f"{where}: not valid YAML ({problem}); correct it there") from exc
    return parse_plant(doc, str(path))


def is_working_day(site: Site, day: dt.date) -> bool:
    """A shift weekday of the site that is not one of its holidays; the rule of the SQL function
    ``core.is_working_day`` (the two are held to the same answers by a test)."""
    return day.weekday() in site.shift.weekdays and day not in site.holidays


def is_production_time(site: Site, local: dt.datetime) -> bool:
    """True during the site's shift hours on a working day (``core.is_working_hour``): the
    local time lies in [start, end) on a working day, judged by its own date; an end at or before
    the start crosses midnight (22:00-06:00 is a night shift, equal times a day of 24 hours)."""
    if not is_working_day(site, local.date()):
        return False
    start, end, now = site.shift.start, site.shift.end, local.time()
    if start < end:
        return start <= now < end
    return now >= start or now < end


@dataclass(frozen=True)
class MachineLabel:
    """How a machine is named in a sentence, and where it is."""

    name: str
    site_id: str
    timezone: str = "UTC"


def machine_labels(plant: Plant) -> dict[str, MachineLabel]:
    """Name, site and time zone of each machine, for the event sentences."""
    return {
        m.machine_id: MachineLabel(m.name, m.site_id, plant.sites[m.site_id].timezone)
        for m in plant.machines.values()
    }


def plant_currency(plant: Plant, default: str = "EUR") -> str:
    """The currency of the first site tariff that names one."""
    for site in plant.sites.values():
        for tariff in site.tariffs:
            if tariff.get("currency"):
                return str(tariff["currency"])
    return default
