"""Dagster resources: the only place where assets and sensors learn where the servers are."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg

from enms_dagster.db import connect
from enms_dagster.plant import Plant, load_plant
from enms_dagster.settings import Settings


class WarehouseResource(dg.ConfigurableResource):
    """The PostgreSQL warehouse (``ENMS_DATABASE_URL``)."""

    database_url: str

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        """An autocommit connection: each ``conn.transaction()`` block commits on its own."""
        with connect(self.database_url, autocommit=True) as conn:
            yield conn


class PlantResource(dg.ConfigurableResource):
    """The plant file; empty means ``ENMS_PLANT_FILE`` or the bundled reference plant."""

    plant_file: str = ""

    def path(self) -> str:
        return self.plant_file or str(Settings.from_env().plant_file)

    def load(self) -> Plant:
        return load_plant(self.path())
