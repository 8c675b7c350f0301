"""The one way SQL files are read: from the ``sql/`` folder of the domain package that owns them,
through ``importlib.resources`` so an installed wheel finds them as well as a checkout."""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def read_sql(package: str, name: str) -> str:
    """Return the text of ``<package>/sql/<name>.sql``, e.g. ``read_sql("enms_dagster.hourly",
    "hourly_energy")``."""
    return (files(package) / "sql" / f"{name}.sql").read_text(encoding="utf-8")
