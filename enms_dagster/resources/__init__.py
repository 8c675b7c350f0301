"""Dagster resources: the only place where assets and sensors learn where the servers are."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg

from enms_dagster.anomalies.alert_delivery import DeliveryPolicy
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
    """The plant file; empty means ``ENMS_PLANT_FILE``, the one remembered in the state folder or
    the bundled reference plant (``Settings``)."""

    plant_file: str = ""

    def path(self) -> str:
        return self.plant_file or str(Settings.from_env().plant_file)

    def may_change_intervals(self) -> bool:
        """``ENMS_PLANT_CHANGE_INTERVALS``: registering may change the sample interval of
        machines that have readings."""
        return Settings.from_env().plant_change_intervals

    def load(self) -> Plant:
        return load_plant(self.path())


_DEFAULT = DeliveryPolicy()


class AlertsResource(dg.ConfigurableResource):
    """Where alerts go and how hard each channel tries. Empty ``mqtt_url``: ``ENMS_MQTT_URL``;
    empty ``webhook_url``: ``ENMS_ALERT_WEBHOOK_URL`` (unset: MQTT only). Events below
    ``min_severity`` never alert. A delivery gives up after ``max_attempts`` attempts or
    ``give_up_after_hours``; one tick spends at most ``webhook_budget_s`` on the webhook."""

    mqtt_url: str = ""
    webhook_url: str = ""
    min_severity: str = "low"
    max_attempts: int = _DEFAULT.max_attempts
    give_up_after_hours: float = _DEFAULT.give_up_after / dt.timedelta(hours=1)
    webhook_budget_s: float = _DEFAULT.webhook_budget_s

    def broker_url(self) -> str | None:
        return self.mqtt_url or Settings.from_env().mqtt_url

    def webhook(self) -> str | None:
        from enms_dagster.anomalies.alerts import webhook_url_from_env  # pandas: only when used

        return self.webhook_url or webhook_url_from_env()

    def policy(self) -> DeliveryPolicy:
        return DeliveryPolicy(
            max_attempts=self.max_attempts,
            give_up_after=dt.timedelta(hours=self.give_up_after_hours),
            webhook_budget_s=self.webhook_budget_s,
        )
