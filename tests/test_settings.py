import pytest

from enms_dagster.db import libpq_url
from enms_dagster.settings import DEFAULT_PLANT_FILE, MqttAddress, Settings


def test_unset_urls_mean_embedded_servers_and_defaults_are_documented_ones(tmp_path):
    settings = Settings.from_env({"ENMS_STATE_DIR": str(tmp_path)})
    assert settings.database_url is None and settings.mqtt_url is None
    assert settings.state_dir == tmp_path.resolve()
    assert settings.plant_file == DEFAULT_PLANT_FILE


def test_configured_urls_are_used_as_given():
    settings = Settings.from_env(
        {"ENMS_DATABASE_URL": "postgresql://u@db/enms", "ENMS_MQTT_URL": "mqtt://broker:1884"}
    )
    assert settings.database_url == "postgresql://u@db/enms"
    assert settings.mqtt_url == "mqtt://broker:1884"


def test_mqtt_url_carries_credentials_and_port():
    address = MqttAddress.from_url("mqtt://ingestor:s%40cret@10.0.0.5:8883")
    assert (address.host, address.port, address.username, address.password) == (
        "10.0.0.5",
        8883,
        "ingestor",
        "s@cret",
    )
    assert MqttAddress.from_url("mqtt://broker").port == 1883


@pytest.mark.parametrize("url", ["http://broker:1883", "mqtt://"])
def test_bad_mqtt_urls_are_refused_with_an_example(url):
    with pytest.raises(ValueError, match="MQTT URL"):
        MqttAddress.from_url(url)


def test_sqlalchemy_style_database_urls_are_accepted():
    assert libpq_url("postgresql+psycopg://u@h/db") == "postgresql://u@h/db"
    assert libpq_url("postgresql://u@h/db") == "postgresql://u@h/db"


def test_the_plausible_reading_window_is_set_by_environment_and_checked():
    import datetime as dt

    settings = Settings.from_env(
        {"ENMS_READINGS_MAX_AGE_DAYS": "30", "ENMS_READINGS_MAX_AHEAD_S": "60"}
    )
    now = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)
    assert settings.readings_window().bounds(now) == (
        now - dt.timedelta(days=30),
        now + dt.timedelta(seconds=60),
    )
    since = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert settings.readings_window(since).bounds(now)[0] == since
    default = Settings.from_env({}).readings_window().bounds(now)
    assert default == (now - dt.timedelta(days=400), now + dt.timedelta(minutes=5))
    with pytest.raises(ValueError, match="ENMS_READINGS_MAX_AGE_DAYS must be positive"):
        Settings.from_env({"ENMS_READINGS_MAX_AGE_DAYS": "0"})
