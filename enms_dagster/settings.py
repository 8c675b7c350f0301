"""The one place where the platform's settings and their defaults are documented.

Every setting comes from an environment variable, read when a command starts (never at import):

- ``ENMS_DATABASE_URL``: ``postgresql://user:pass@host:port/db``; unset → embedded PostgreSQL.
- ``ENMS_MQTT_URL``: ``mqtt://user:pass@host:port``; unset → embedded amqtt broker.
- ``ENMS_STATE_DIR``: embedded database, broker log, local Dagster home; default ``./.enms``.
- ``ENMS_PLANT_FILE``: YAML declaring sites, machines, tariffs. Unset → the plant file
  remembered in the state folder (``ENMS_STATE_DIR/plant_file``, written by a command that chose
  one: ``enms demo`` its once-a-minute demo plant, ``enms simulate --plant FILE`` that file), else
  the reference plant. Commands that use it say which file and why in their first lines.
- ``ENMS_PLANT_CHANGE_INTERVALS``: ``1`` lets registering a plant file (the ``plant_registry``
  asset, ``enms simulate``) change the sample interval of a machine type whose machines already
  have readings. Unset, that is refused with the types and intervals named: completeness is
  judged against the registered interval, so every hour already landed would fail it.
- ``ENMS_ALERT_WEBHOOK_URL``: where anomaly alerts are POSTed besides MQTT; unset → MQTT only.
- ``ENMS_READINGS_MAX_AGE_DAYS``: readings older than this many days are quarantined as
  ``too_old`` and get no partition; default 400. ``enms import --since DATE`` reaches further
  back for one import.
- ``ENMS_READINGS_MAX_AHEAD_S``: readings more than this many seconds ahead of the clock are
  quarantined as ``future_timestamp``; default 300 (device clock skew).
- ``ENMS_ANALYST_PASSWORD``: read by ``enms db analyst-password`` to let the read-only
  ``enms_analyst`` role log in (BI tools); unset → the role cannot log in.
- ``ENMS_ANALYST_STATEMENT_TIMEOUT`` (default ``60s``), ``ENMS_ANALYST_IDLE_TIMEOUT`` (an open
  transaction left idle, default ``5min``), ``ENMS_ANALYST_TEMP_FILE_LIMIT`` (temporary files of
  one session, default ``1GB``), ``ENMS_ANALYST_CONNECTION_LIMIT`` (default ``10``): limits of
  every ``enms_analyst`` session, set on the role by ``enms db analyst-password``. The role cannot
  raise the temp-file or connection limit; it can change its own timeouts (docs/marts.md).
- ``ENMS_MIGRATION_LOCK_WAIT_S``: how long ``enms db migrate`` (and every command that migrates
  first) waits for another migration, and each migration for a table a session holds; default
  ``60``. Past it the command stops and names the session in the way.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
DEFAULT_PLANT_FILE = PACKAGE_DIR / "plant" / "reference_plant.yaml"
REMEMBERED_PLANT_FILE = "plant_file"  # in the state folder: the path, then who chose it


@dataclass(frozen=True)
class MqttAddress:
    """Where a broker listens and who we are on it, parsed from an ``mqtt://`` URL."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str) -> MqttAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "tcp"):
            raise ValueError(
                f"MQTT URL must start with mqtt:// (got {url!r}); "
                "example: mqtt://ingestor:secret@127.0.0.1:1883"
            )
        if not parts.hostname:
            raise ValueError(f"MQTT URL {url!r} names no host")
        return cls(
            host=parts.hostname,
            port=parts.port or 1883,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


@dataclass(frozen=True)
class AnalystLimits:
    """What one ``enms_analyst`` session may cost. The values are PostgreSQL settings as written
    in ``ALTER ROLE ... SET`` (units allowed); the server checks them."""

    statement_timeout: str = "60s"
    idle_in_transaction_session_timeout: str = "5min"
    temp_file_limit: str = "1GB"
    connection_limit: int = 10


@dataclass(frozen=True)
class Settings:
    """Resolved configuration of one process; ``None`` URLs mean "start the embedded one"."""

    database_url: str | None
    mqtt_url: str | None
    state_dir: Path
    plant_file: Path
    readings_max_age_days: int = 400
    readings_max_ahead_s: int = 300
    analyst_limits: AnalystLimits = AnalystLimits()
    migration_lock_wait_s: float = 60.0
    plant_file_origin: str = "given"  # why this plant file, for the user (from_env says)
    plant_change_intervals: bool = False

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        default = AnalystLimits()
        state_dir = Path(env.get("ENMS_STATE_DIR") or Path.cwd() / ".enms").resolve()
        plant_file, plant_file_origin = _plant_file(env.get("ENMS_PLANT_FILE"), state_dir)
        return cls(
            database_url=_database_url(env.get("ENMS_DATABASE_URL") or None),
            mqtt_url=env.get("ENMS_MQTT_URL") or None,
            state_dir=state_dir,
            plant_file=plant_file,
            plant_file_origin=plant_file_origin,
            plant_change_intervals=_flag(env, "ENMS_PLANT_CHANGE_INTERVALS"),
            readings_max_age_days=_number(
                env, "ENMS_READINGS_MAX_AGE_DAYS", 400, int, positive=True
            ),
            readings_max_ahead_s=_number(env, "ENMS_READINGS_MAX_AHEAD_S", 300, int, positive=True),
            analyst_limits=AnalystLimits(
                statement_timeout=env.get("ENMS_ANALYST_STATEMENT_TIMEOUT")
                or default.statement_timeout,
                idle_in_transaction_session_timeout=env.get("ENMS_ANALYST_IDLE_TIMEOUT")
                or default.idle_in_transaction_session_timeout,
                temp_file_limit=env.get("ENMS_ANALYST_TEMP_FILE_LIMIT") or default.temp_file_limit,
                connection_limit=_number(
                    env, "ENMS_ANALYST_CONNECTION_LIMIT", default.connection_limit, int
                ),
            ),
            migration_lock_wait_s=_number(env, "ENMS_MIGRATION_LOCK_WAIT_S", 60.0, float),
        )

    def remember_plant_file(self, plant_file: Path | str, chosen_by: str) -> None:
        """Make ``plant_file`` the plant file of this state folder for every later command
        that runs without ``ENMS_PLANT_FILE`` (``chosen_by`` says which command chose it)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / REMEMBERED_PLANT_FILE).write_text(
            f"{Path(plant_file).resolve()}\n# chosen by {chosen_by}\n"
        )

    def readings_window(self, since: dt.datetime | None = None):
        """The plausible time window of readings (``PlausibleTime``); ``since`` reaches back to
        an explicit instant instead of the maximum age."""
        from enms_dagster.ingest.payload import PlausibleTime

        return PlausibleTime(
            max_age=dt.timedelta(days=self.readings_max_age_days),
            max_ahead=dt.timedelta(seconds=self.readings_max_ahead_s),
            since=since,
        )


def _database_url(url: str | None) -> str | None:
    """``ENMS_DATABASE_URL`` if it names PostgreSQL (``postgresql://``, ``postgres://``, a
    SQLAlchemy-style ``postgresql+driver://``, or libpq's ``key=value`` form); a clear error
    for a URL of another database."""
    if url is None or "://" not in url:
        return url
    scheme = url.split("://", 1)[0]
    if scheme.split("+", 1)[0] in ("postgresql", "postgres"):
        return url
    raise ValueError(
        f"ENMS_DATABASE_URL must be a PostgreSQL URL, got one starting {scheme!r}; example: "
        "postgresql://enms:secret@127.0.0.1:5432/enms"
    )


def _plant_file(configured: str | None, state_dir: Path) -> tuple[Path, str]:
    """The plant file and why it is the one: ``ENMS_PLANT_FILE``, else the one remembered in the
    state folder, else the reference plant."""
    if configured:
        return Path(configured).resolve(), "set by ENMS_PLANT_FILE"
    note = state_dir / REMEMBERED_PLANT_FILE
    if note.is_file():
        lines = note.read_text().splitlines()
        path = next((line for line in lines if line and not line.startswith("#")), None)
        if path:
            chosen_by = next((line[1:].strip() for line in lines if line.startswith("#")), "")
            return Path(path), (
                f"remembered in {note}, {chosen_by}; ENMS_PLANT_FILE overrides it, "
                "deleting that file goes back to the reference plant"
            )
    return DEFAULT_PLANT_FILE, "the reference plant: ENMS_PLANT_FILE is unset"


def _flag(env, name: str) -> bool:
    """A yes/no variable: 1, true, yes (any case) are yes; unset or empty is no."""
    text = (env.get(name) or "").strip().lower()
    if text in ("", "0", "false", "no"):
        return False
    if text in ("1", "true", "yes"):
        return True
    raise ValueError(f"{name}={text!r}: write 1 (yes) or 0 (no)")


def _number(env, name: str, default, kind, *, positive: bool = False):
    """The variable ``name`` as a finite ``kind`` (0 or more, above 0 if ``positive``)."""
    text = env.get(name)
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise ValueError(f"{name}={text!r} must be a finite number, 0 or more")
    if positive and value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value
