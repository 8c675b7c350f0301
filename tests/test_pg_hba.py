"""The stack's pg_hba.conf (deploy/postgres/pg_hba.conf) keeps enms_analyst on the energy
database: checked on a throwaway PostgreSQL cluster started with that file, since roles are
cluster-wide and PUBLIC may connect to every new database."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

from enms_dagster.settings import REPO_DIR
from tests.conftest import local_server_missing

pytestmark = pytest.mark.integration

HBA_FILE = REPO_DIR / "deploy" / "postgres" / "pg_hba.conf"


def _as_postgres(*command: str) -> list[str]:
    """initdb refuses to run as root: run the server as the postgres user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return list(command)


@pytest.fixture(scope="module")
def cluster():
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        local_server_missing("no initdb (apt-get install postgresql)")
    bin_dir = Path(binaries[-1]).parent
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    directory = Path(tempfile.mkdtemp(prefix="enms-hba-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
    data, hba = directory / "data", directory / "pg_hba.conf"
    hba.write_text(HBA_FILE.read_text())
    subprocess.run(
        _as_postgres(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c hba_file={hba}"
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(directory / "log")]
    subprocess.run(_as_postgres(*pg_ctl, "-o", options, "-w", "start"), check=True)
    try:
        admin = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("SET password_encryption = 'scram-sha-256'")
            conn.execute("CREATE ROLE enms_analyst LOGIN PASSWORD 'analyst'")
            conn.execute("CREATE DATABASE enms")
            conn.execute("CREATE DATABASE dagster")
        yield port, directory
    finally:
        subprocess.run(_as_postgres(*pg_ctl, "-m", "immediate", "stop"), capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)


def analyst(
    port: int, dbname: str, host: str = "127.0.0.1", password: str = "analyst"
) -> psycopg.Connection:
    return psycopg.connect(
        host=host, port=port, user="enms_analyst", password=password, dbname=dbname
    )


def test_the_analyst_reaches_the_energy_database_with_its_password(cluster):
    port, _ = cluster
    with analyst(port, "enms") as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("enms",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        analyst(port, "enms", password="wrong")


@pytest.mark.parametrize("dbname", ["dagster", "postgres", "template1"])
def test_the_analyst_is_refused_on_every_other_database(cluster, dbname):
    port, directory = cluster
    for host in ("127.0.0.1", str(directory)):  # over TCP and over the socket
        with pytest.raises(psycopg.OperationalError, match="pg_hba.conf rejects connection"):
            analyst(port, dbname, host)


def test_the_platform_still_connects_to_every_database(cluster):
    port, _ = cluster
    for dbname in ("enms", "dagster", "postgres"):
        psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=dbname).close()
