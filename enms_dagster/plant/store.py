"""Write the plant registry into the ``core`` schema (upserts: machines are never deleted, because
their history stays in the warehouse)."""

from __future__ import annotations

import json

import psycopg

from enms_dagster.plant import Plant


def save_plant(conn: psycopg.Connection, plant: Plant) -> dict[str, int]:
    """Upsert the whole registry in one transaction; return row counts per table."""
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO core.sites (site_id, name, timezone, commissioned_on) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (site_id) DO UPDATE SET "
            "name = EXCLUDED.name, timezone = EXCLUDED.timezone, "
            "commissioned_on = EXCLUDED.commissioned_on",
            [(s.site_id, s.name, s.timezone, s.commissioned_on) for s in plant.sites.values()],
        )
        _save_site_calendars(cur, plant)
        cur.executemany(
            "INSERT INTO core.machine_types (machine_type, description, sample_interval_s) "
            "VALUES (%s, %s, %s) ON CONFLICT (machine_type) DO UPDATE SET "
            "description = EXCLUDED.description, sample_interval_s = EXCLUDED.sample_interval_s",
            [
                (t.machine_type, t.description, t.sample_interval_s)
                for t in plant.machine_types.values()
            ],
        )
        cur.executemany(
            "INSERT INTO core.metrics (metric, unit, kind, min_value, max_value, description) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (metric) DO UPDATE SET "
            "unit = EXCLUDED.unit, kind = EXCLUDED.kind, min_value = EXCLUDED.min_value, "
            "max_value = EXCLUDED.max_value, description = EXCLUDED.description",
            [
                (m.metric, m.unit, m.kind, m.min_value, m.max_value, m.description)
                for m in plant.metrics.values()
            ],
        )
        cur.executemany(
            "INSERT INTO core.machines (machine_id, site_id, name, machine_type, line, "
            "rated_power_kw, energy_source) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (machine_id) DO UPDATE SET site_id = EXCLUDED.site_id, "
            "name = EXCLUDED.name, machine_type = EXCLUDED.machine_type, line = EXCLUDED.line, "
            "rated_power_kw = EXCLUDED.rated_power_kw, energy_source = EXCLUDED.energy_source",
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
            for s in plant.sites.values()
            for t in s.tariffs
        ]
        cur.executemany(
            "INSERT INTO core.tariffs (site_id, name, valid_from, currency, definition) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (site_id, valid_from) DO UPDATE SET "
            "name = EXCLUDED.name, currency = EXCLUDED.currency, definition = EXCLUDED.definition",
            tariffs,
        )
        factors = [
            (s.site_id, f["valid_from"], f["kg_co2e_per_kwh"])
            for s in plant.sites.values()
            for f in s.emission_factors
        ]
        cur.executemany(
            "INSERT INTO core.emission_factors (site_id, valid_from, kg_co2e_per_kwh) "
            "VALUES (%s, %s, %s) ON CONFLICT (site_id, valid_from) DO UPDATE SET "
            "kg_co2e_per_kwh = EXCLUDED.kg_co2e_per_kwh",
            factors,
        )
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
        "INSERT INTO core.site_holidays (site_id, holiday) VALUES (%s, %s)",
        [(s.site_id, day) for s in plant.sites.values() for day in sorted(s.holidays)],
    )
