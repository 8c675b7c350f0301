import pytest

from enms_dagster.settings import DEFAULT_PLANT_FILE, MqttAddress, Settings
from enms_dagster.warehouse import libpq_url


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
