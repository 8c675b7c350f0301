"""Write the plant registry into the ``core`` schema (upserts: machines are never deleted, because
their history stays in the warehouse).

Two ways: ``save_plant`` makes the registry say what the file says (the ``plant_registry`` asset,
``enms simulate``); ``add_missing_plant`` only adds what the registry lacks and never changes a
registered row (``enms db migrate`` and ``enms ingest`` at start, so a fresh warehouse knows its
machines, while a plant registered from another file, e.g. other sample intervals, stays)."""

from __future__ import annotations

import dataclasses
import json

import psycopg
from psycopg import sql

from enms_dagster.plant import Plant


def save_plant(conn: psycopg.Connection, plant: Plant) -> dict[str, int]:
    """Upsert the whole registry in one transaction; return row counts per table."""
    return _write_plant(conn, plant, overwrite=True)


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
