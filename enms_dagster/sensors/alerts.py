"""The alert sensor: publishes new and escalated anomaly events on ``enms/<site>/alerts``."""

import uuid

import dagster as dg

from enms_dagster.alerts import publish_alerts, webhook_url_from_env
from enms_dagster.resources import WarehouseResource
from enms_dagster.settings import Settings


class AlertsResource(dg.ConfigurableResource):
    """Where alerts go. Empty ``mqtt_url``: ``ENMS_MQTT_URL``; empty ``webhook_url``:
    ``ENMS_ALERT_WEBHOOK_URL`` (unset: MQTT only). Events below ``min_severity`` never alert."""

    mqtt_url: str = ""
    webhook_url: str = ""
    min_severity: str = "low"

    def broker_url(self) -> str | None:
        return self.mqtt_url or Settings.from_env().mqtt_url

    def webhook(self) -> str | None:
        return self.webhook_url or webhook_url_from_env()


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description=(
        "Sends each anomaly event once when it appears and once more whenever its severity "
        "rises, as JSON on enms/<site>/alerts (QoS 1) and to ENMS_ALERT_WEBHOOK_URL if set; "
        "acknowledged events (enms alerts ack) stay quiet. Stopped by default: alerts reach "
        "people, so whoever runs the plant decides where they go before starting it."
    ),
)
def anomaly_alerts_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource, alerts: AlertsResource
) -> dg.SensorResult | dg.SkipReason:
    """Sends each anomaly event once when it appears and once more whenever its severity rises;
    acknowledged events (``enms alerts ack``) stay quiet. Stopped by default: alerts reach people,
    so whoever runs the plant decides where they go (``ENMS_MQTT_URL``, ``ENMS_ALERT_WEBHOOK_URL``)
    before starting it."""
    broker = alerts.broker_url()
    if not broker:
        return dg.SkipReason("no MQTT broker configured: set ENMS_MQTT_URL")
    with warehouse.connect() as conn:
        report = publish_alerts(
            conn,
            broker,
            alerts.webhook(),
            min_severity=alerts.min_severity,
            client_id=f"enms-alerts-{uuid.uuid4().hex[:8]}",
        )
    if not report.sent:
        return dg.SkipReason("no new or escalated anomaly events")
    for error in report.webhook_errors:
        context.log.warning(f"alert webhook failed: {error}")
    return dg.SensorResult(
        asset_events=[
            dg.AssetObservation(
                asset_key="anomalies",
                metadata={
                    "alerts_sent": len(report.sent),
                    "summary": report.summary(),
                    "events": ", ".join(
                        f"{a.event_id} ({a.status} {a.severity})" for a in report.sent
                    ),
                },
            )
        ]
    )
