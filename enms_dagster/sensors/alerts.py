"""The alert sensor: queues new and escalated anomaly events and delivers the alert outbox on
``enms/<site>/alerts`` and the webhook."""

import uuid

import dagster as dg

from enms_dagster.resources import AlertsResource, WarehouseResource


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description=(
        "Sends each anomaly event once when it appears and once more whenever its severity "
        "rises, as JSON on enms/<site>/alerts (QoS 1) and to ENMS_ALERT_WEBHOOK_URL if set; "
        "failed deliveries are retried with back-off on later ticks; acknowledged events "
        "(enms alerts ack) stay quiet. Stopped by default: alerts reach people, so whoever "
        "runs the plant decides where they go before starting it."
    ),
)
def anomaly_alerts_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource, alerts: AlertsResource
) -> dg.SensorResult | dg.SkipReason:
    """Sends each anomaly event once when it appears and once more whenever its severity rises,
    at least once per channel, retrying failed deliveries on later ticks; acknowledged events
    (``enms alerts ack``) stay quiet. Stopped by default: alerts reach people, so whoever runs
    the plant decides where they go (``ENMS_MQTT_URL``, ``ENMS_ALERT_WEBHOOK_URL``) before
    starting it."""
    from enms_dagster.anomalies.alerts import publish_alerts  # pandas: only when a tick runs

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
            policy=alerts.policy(),
        )
    for line in report.problems():
        context.log.warning(line)
    if not report.did_something():
        return dg.SkipReason(f"nothing new or due: {report.summary()}")
    return dg.SensorResult(
        asset_events=[dg.AssetObservation(asset_key="anomalies", metadata=report.metadata())]
    )
