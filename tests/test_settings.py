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


def test_the_plant_file_remembered_in_the_state_folder_is_used_until_enms_plant_file_says_otherwise(
    tmp_path,
):
    state = {"ENMS_STATE_DIR": str(tmp_path)}
    chosen = tmp_path / "demo_plant.yaml"
    Settings.from_env(state).remember_plant_file(chosen, "enms demo")

    remembered = Settings.from_env(state)
    assert remembered.plant_file == chosen
    assert remembered.plant_file_origin.startswith(
        f"remembered in {tmp_path / 'plant_file'}, chosen by enms demo; ENMS_PLANT_FILE overrides"
    )
    explicit = Settings.from_env({**state, "ENMS_PLANT_FILE": "/etc/enms/plant.yaml"})
    assert explicit.plant_file.as_posix() == "/etc/enms/plant.yaml"
    assert explicit.plant_file_origin == "set by ENMS_PLANT_FILE"
    elsewhere = Settings.from_env({"ENMS_STATE_DIR": str(tmp_path / "other")})
    assert elsewhere.plant_file == DEFAULT_PLANT_FILE
    assert elsewhere.plant_file_origin.startswith("the reference plant")


@pytest.mark.parametrize(
    ("text", "allowed"), [("", False), ("0", False), ("1", True), ("yes", True)]
)
def test_changing_registered_sample_intervals_is_allowed_only_when_asked(text, allowed):
    settings = Settings.from_env({"ENMS_PLANT_CHANGE_INTERVALS": text})
    assert settings.plant_change_intervals is allowed


def test_an_unreadable_yes_no_setting_is_refused():
    with pytest.raises(ValueError, match="ENMS_PLANT_CHANGE_INTERVALS='maybe': write 1"):
        Settings.from_env({"ENMS_PLANT_CHANGE_INTERVALS": "maybe"})
