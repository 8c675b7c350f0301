"""Write the plant registry into the ``core`` schema (upserts: machines are never deleted, because
their history stays in the warehouse).

Two ways: ``save_plant`` makes the registry say what the file says (the ``plant_registry`` asset,
``enms simulate``); ``add_missing_plant`` only adds what the registry lacks and never changes a
registered row (``enms db migrate`` and ``enms ingest`` at start, so a fresh warehouse knows its
machines, while a plant registered from another file, e.g. other sample intervals, stays).

``save_plant`` refuses to change the sample interval of a machine type whose machines have
readings, unless told to (``ENMS_PLANT_CHANGE_INTERVALS=1``): completeness is judged against the
registered interval, so a plant file of other intervals (the reference plant's 1-30 s over the
demo's 60 s) would make every hour already landed fail it."""

from __future__ import annotations

import dataclasses
import json

import psycopg
from psycopg import sql

from enms_dagster.plant import Plant, PlantFileError

IntervalChange = tuple[str, int | None, int | None]  # machine type, registered, in the file


class SampleIntervalChangeError(PlantFileError):
    """Registering the plant file would change the sample interval of machines with readings."""


def save_plant(
    conn: psycopg.Connection,
    plant: Plant,
    *,
    source: str = "the plant file",
    change_intervals: bool = False,
) -> dict[str, int]:
    """Upsert the whole registry in one transaction; return row counts per table. Raise
    ``SampleIntervalChangeError`` (and write nothing) if a machine type whose machines have
    readings would get another sample interval, unless ``change_intervals``."""
    with conn.transaction():
        if not change_intervals:
            changes = changed_intervals_with_readings(conn, plant)
            if changes:
                raise SampleIntervalChangeError(_refusal(changes, source))
        return _write_plant(conn, plant, overwrite=True)


def changed_intervals(conn: psycopg.Connection, plant: Plant) -> list[IntervalChange]:
    """The registered machine types whose sample interval differs from the plant file's."""
    registered = dict(
        conn.execute(
            "SELECT machine_type, sample_interval_s FROM core.machine_types "
            "WHERE machine_type = ANY(%s)",
            (list(plant.machine_types),),
        ).fetchall()
    )
    return [
        (name, registered[name], t.sample_interval_s)
        for name, t in sorted(plant.machine_types.items())
        if name in registered and registered[name] != t.sample_interval_s
    ]


def changed_intervals_with_readings(conn: psycopg.Connection, plant: Plant) -> list[IntervalChange]:
    """``changed_intervals`` of the machine types that have a machine with readings (a type
    without data can change its interval harmlessly)."""
    changes = changed_intervals(conn, plant)
    if not changes:
        return []
    with_readings = {
        machine_type
        for (machine_type,) in conn.execute(
            "SELECT DISTINCT m.machine_type FROM core.machines m WHERE m.machine_type = ANY(%s) "
            "AND EXISTS (SELECT 1 FROM raw.readings r WHERE r.machine_id = m.machine_id)",
            ([name for name, _, _ in changes],),
        )
    }
    return [change for change in changes if change[0] in with_readings]


def describe_intervals(changes: list[IntervalChange]) -> str:
    """``compressor 60 s -> 1 s, hvac 60 s -> 10 s``."""
    return ", ".join(f"{name} {old} s -> {new} s" for name, old, new in changes)


def _refusal(changes: list[IntervalChange], source: str) -> str:
    return (
        f"{source} would change the sample interval of machines that have readings "
        f"({describe_intervals(changes)}): their hours were landed at the registered interval "
        "and would all fail completeness. Use the plant file that registered them, or set "
        "ENMS_PLANT_CHANGE_INTERVALS=1 to change the intervals anyway"
    )


def add_missing_plant(conn: psycopg.Connection, plant: Plant) -> dict[str, int]:
    """Add the sites (with their calendar, tariffs and emission factors), machine types, metrics
    and machines of ``plant`` that are not registered yet, in one transaction; change nothing
    registered. Return how many rows of each table were added."""
    return _write_plant(conn, plant, overwrite=False)


def _write_plant(conn: psycopg.Connection, plant: Plant, *, overwrite: bool) -> dict[str, int]:
    def on_conflict(key: str, updates: str) -> str:
        return (
            f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
            if overwrite
            else "ON CONFLICT DO NOTHING"
        )

    with conn.transaction(), conn.cursor() as cur:
        before = None if overwrite else _row_counts(cur)
        if overwrite:
            of_sites = plant
        else:  # a registered site keeps its calendar, tariffs and emission factors too
            registered = {
                site_id
                for (site_id,) in cur.execute(
                    "SELECT site_id FROM core.sites WHERE site_id = ANY(%s)", (list(plant.sites),)
                )
            }
            of_sites = dataclasses.replace(
                plant, sites={k: v for k, v in plant.sites.items() if k not in registered}
            )
        cur.executemany(
            "INSERT INTO core.sites (site_id, name, timezone, commissioned_on) "
            "VALUES (%s, %s, %s, %s) "
            + on_conflict(
                "site_id",
                "name = EXCLUDED.name, timezone = EXCLUDED.timezone, "
                "commissioned_on = EXCLUDED.commissioned_on",
            ),
            [(s.site_id, s.name, s.timezone, s.commissioned_on) for s in of_sites.sites.values()],
        )
        _save_site_calendars(cur, of_sites)
        cur.executemany(
            "INSERT INTO core.machine_types (machine_type, description, sample_interval_s) "
            "VALUES (%s, %s, %s) "
            + on_conflict(
                "machine_type",
                "description = EXCLUDED.description, "
                "sample_interval_s = EXCLUDED.sample_interval_s",
            ),
            [
                (t.machine_type, t.description, t.sample_interval_s)
                for t in plant.machine_types.values()
            ],
        )
        cur.executemany(
            "INSERT INTO core.metrics (metric, unit, kind, min_value, max_value, description) "
            "VALUES (%s, %s, %s, %s, %s, %s) "
            + on_conflict(
                "metric",
                "unit = EXCLUDED.unit, kind = EXCLUDED.kind, min_value = EXCLUDED.min_value, "
                "max_value = EXCLUDED.max_value, description = EXCLUDED.description",
            ),
            [
                (m.metric, m.unit, m.kind, m.min_value, m.max_value, m.description)
                for m in plant.metrics.values()
            ],
        )
        cur.executemany(
            "INSERT INTO core.machines (machine_id, site_id, name, machine_type, line, "
            "rated_power_kw, energy_source) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            + on_conflict(
                "machine_id",
                "site_id = EXCLUDED.site_id, name = EXCLUDED.name, "
                "machine_type = EXCLUDED.machine_type, line = EXCLUDED.line, "
                "rated_power_kw = EXCLUDED.rated_power_kw, energy_source = EXCLUDED.energy_source",
            ),
            [
                (
                    m.machine_id,
                    m.site_id,
                    m.name,
                    m.machine_type,
                    m.line,
                    m.rated_power_kw,
                    m.energy_source,
                )
                for m in plant.machines.values()
            ],
        )
        tariffs = [
            (
                s.site_id,
                t.get("name", "tariff"),
                t["valid_from"],
                t.get("currency", "EUR"),
                json.dumps(t, default=str),
            )
            for s in of_sites.sites.values()
            for t in s.tariffs
        ]
        cur.executemany(
            "INSERT INTO core.tariffs (site_id, name, valid_from, currency, definition) "
            "VALUES (%s, %s, %s, %s, %s) "
            + on_conflict(
                "site_id, valid_from",
                "name = EXCLUDED.name, currency = EXCLUDED.currency, "
                "definition = EXCLUDED.definition",
            ),
            tariffs,
        )
        factors = [
            (s.site_id, f["valid_from"], f["kg_co2e_per_kwh"])
            for s in of_sites.sites.values()
            for f in s.emission_factors
        ]
        cur.executemany(
            "INSERT INTO core.emission_factors (site_id, valid_from, kg_co2e_per_kwh) "
            "VALUES (%s, %s, %s) "
            + on_conflict("site_id, valid_from", "kg_co2e_per_kwh = EXCLUDED.kg_co2e_per_kwh"),
            factors,
        )
        if before is not None:
            after = _row_counts(cur)
            return {table: after[table] - before[table] for table in after}
    return {
        "sites": len(plant.sites),
        "machine_types": len(plant.machine_types),
        "metrics": len(plant.metrics),
        "machines": len(plant.machines),
        "tariffs": len(tariffs),
        "emission_factors": len(factors),
    }


def _save_site_calendars(cur: psycopg.Cursor, plant: Plant) -> None:
    """Shift pattern and holidays of each site (core.sites, core.site_holidays): the hourly
    drivers read the calendar from the warehouse. A site's holidays are replaced as a whole."""
    cur.executemany(
        "UPDATE core.sites SET shift_weekdays = %s, shift_start = %s, shift_end = %s "
        "WHERE site_id = %s",
        [
            (list(s.shift.weekdays), s.shift.start, s.shift.end, s.site_id)
            for s in plant.sites.values()
        ],
    )
    cur.execute("DELETE FROM core.site_holidays WHERE site_id = ANY(%s)", (list(plant.sites),))
    cur.executemany(
        "INSERT INTO core.site_holidays (site_id, holiday) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        [(s.site_id, day) for s in plant.sites.values() for day in sorted(s.holidays)],
    )


_REGISTRY_TABLES = ("sites", "machine_types", "metrics", "machines", "tariffs", "emission_factors")


def _row_counts(cur: psycopg.Cursor) -> dict[str, int]:
    return {
        table: cur.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("core", table))
        ).fetchone()[0]
        for table in _REGISTRY_TABLES
    }
