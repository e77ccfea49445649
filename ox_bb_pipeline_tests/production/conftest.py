"""Real services for the production tests: a throwaway PostgreSQL cluster (Debian's server
binaries) and a Redis server, each on a free loopback port, started here and removed at the end.

initdb refuses to run as root, so as root the cluster runs as the `postgres` user in a directory
it owns. Readiness is polled with a deadline; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest
import redis

PG_ROOT = Path("/usr/lib/postgresql")  # Debian's server binaries, one directory per major version


def pg_bin() -> Path:
    versions = sorted(PG_ROOT.glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not versions:
        raise RuntimeError(f"no PostgreSQL server under {PG_ROOT}: run `make install` (Debian package postgresql)")
    return versions[-1].parent


STARTUP_DEADLINE = 30.0  # seconds a service may take to answer before the fixture gives up
USER, PASSWORD = "ox_bb", "pg-test-secret-5f1c"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(ready, what: str, seconds: float = STARTUP_DEADLINE) -> None:
    """Poll `ready()` until it returns true, or fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except (OSError, psycopg2.Error, redis.RedisError) as exc:  # not up yet: remember why
            error = exc
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready within {seconds:.0f} s: {error}")


def as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@dataclass
class Postgres:
    port: int
    root: Path
    superuser_password: str
    host: str = "127.0.0.1"
    _databases = itertools.count()

    def admin(self):
        """A superuser connection in autocommit mode (CREATE DATABASE refuses a transaction)."""
        conn = psycopg2.connect(
            host=self.host,
            port=self.port,
            user="postgres",
            password=self.superuser_password,
            dbname="postgres",
        )
        conn.autocommit = True
        return conn

    def create_database(self) -> str:
        """A new empty database owned by the test user, so each test starts from nothing."""
        name = f"dagster_{os.getpid()}_{next(self._databases)}"
        with closing(self.admin()) as conn, conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name} OWNER {USER}")
        return name

    def env(self, database: str, **overrides: str) -> dict[str, str]:
        """The environment deploy/dagster.yaml reads."""
        return {
            "OX_BB_PG_HOST": self.host,
            "OX_BB_PG_PORT": str(self.port),
            "OX_BB_PG_USER": USER,
            "OX_BB_PG_PASSWORD": PASSWORD,
            "OX_BB_PG_DB": database,
            **overrides,
        }


@contextlib.contextmanager
def running_postgres():
    """A throwaway PostgreSQL cluster on a free port, removed on exit (the `postgres` fixture; the scale
    benchmark starts its Celery instance the same way)."""
    binaries, port = pg_bin(), free_port()
    root = Path(tempfile.mkdtemp(prefix="ox-bb-pg-"))  # /tmp: the postgres user can reach it
    data, superuser_password = root / "data", "pg-superuser-" + os.urandom(6).hex()
    (root / "pwfile").write_text(superuser_password + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(root / "pwfile", "postgres", "postgres")
    server = Postgres(port=port, root=root, superuser_password=superuser_password)
    try:
        subprocess.run(
            as_postgres(
                [
                    str(binaries / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    f"--pwfile={root / 'pwfile'}",
                ]
            ),
            check=True,
            capture_output=True,
        )
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
        subprocess.run(
            as_postgres(
                [
                    str(binaries / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(root / "server.log"),
                    "-o",
                    options,
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        wait_until(lambda: server.admin().close() is None, f"PostgreSQL on port {port}")
        with closing(server.admin()) as conn, conn.cursor() as cursor:
            cursor.execute(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'")
        yield server
    finally:
        if data.exists():
            subprocess.run(
                as_postgres([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                capture_output=True,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    with running_postgres() as server:
        yield server


@pytest.fixture
def pg_database(postgres) -> str:
    return postgres.create_database()


@dataclass
class Redis:
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@contextlib.contextmanager
def running_redis():
    """A Redis server on a free loopback port, stopped on exit (the `redis_server` fixture)."""
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: redis.Redis(port=port, socket_timeout=1).ping(), f"Redis on port {port}")
        yield Redis(port)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def redis_server():
    with running_redis() as server:
        yield server
