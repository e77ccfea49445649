"""A bad production environment — PostgreSQL down, a wrong password, a missing variable, Redis
down — gives one clear sentence at start (never a password) and writes nothing: no lake, no
instance."""

from __future__ import annotations

import subprocess
from contextlib import closing

import dagster as dg
import psycopg2
import pytest

from ox_bb_pipeline.production import PreflightError, preflight

from .conftest import USER, free_port
from .helpers import BIN, REPO_ROOT, dagster_home, deployment_env, sandbox_connections
from .test_celery import scan_on_celery_command

WRONG_PASSWORD = "not-the-pg-password-77"
REDIS_PASSWORD = "redis-secret-31"


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def deployment(postgres, pg_database, fresh_sandbox, tmp_path):
    """A DAGSTER_HOME, a data home and a connections file that would work with good services."""
    home = dagster_home(tmp_path / "dagster_home")
    connections = sandbox_connections(fresh_sandbox, tmp_path / "connections.yaml", ["sandbox-token"])
    data = tmp_path / "data"

    def env(**overrides: str) -> dict[str, str]:
        return deployment_env(
            home,
            postgres.env(pg_database, **overrides),
            OX_BB_HOME=str(data),
            OX_BB_CONNECTIONS=str(connections),
        )

    return env, data, connections, postgres.env(pg_database)


def dagster_tables(pg_env: dict) -> list[str]:
    connection = psycopg2.connect(
        host=pg_env["OX_BB_PG_HOST"],
        port=pg_env["OX_BB_PG_PORT"],
        user=USER,
        password=pg_env["OX_BB_PG_PASSWORD"],
        dbname=pg_env["OX_BB_PG_DB"],
    )
    with closing(connection), connection.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        return [row[0] for row in cursor.fetchall()]


def test_ox_bb_run_refuses_a_postgres_that_is_down_before_writing(deployment):
    env, data, connections, pg_env = deployment
    port = free_port()  # nothing listens here

    result = run(
        [str(BIN / "ox-bb"), "run", "--stage", "extract", "--connections", str(connections)],
        env(OX_BB_PG_PORT=str(port)),
    )

    assert result.returncode == 1
    assert f"cannot reach PostgreSQL at 127.0.0.1:{port} as user {USER}" in result.stderr
    assert "Connection refused" in result.stderr and "start it, or fix OX_BB_PG_HOST" in result.stderr
    assert "Traceback" not in result.stderr
    assert pg_env["OX_BB_PG_PASSWORD"] not in result.stdout + result.stderr
    assert not data.exists()


def test_ox_bb_run_refuses_a_wrong_password_before_writing(deployment):
    env, data, connections, pg_env = deployment

    result = run(
        [str(BIN / "ox-bb"), "run", "--stage", "extract", "--connections", str(connections)],
        env(OX_BB_PG_PASSWORD=WRONG_PASSWORD),
    )

    assert result.returncode == 1
    assert f'password authentication failed for user "{USER}"' in result.stderr
    assert WRONG_PASSWORD not in result.stdout + result.stderr
    assert not data.exists()
    assert dagster_tables(pg_env) == []  # the instance was never created either


def test_preflight_names_a_missing_variable_and_checks_every_service(deployment, redis_server):
    env, data, _, _ = deployment
    missing = env()
    del missing["OX_BB_PG_HOST"]

    refused = run([str(BIN / "ox-bb"), "preflight"], missing)
    passed = run(
        [str(BIN / "ox-bb"), "preflight", "--celery"],
        {**env(), "OX_BB_REDIS_URL": redis_server.url},
    )

    assert refused.returncode == 1
    assert "PostgreSQL hostname comes from $OX_BB_PG_HOST, which is not set" in refused.stderr
    assert passed.returncode == 0, passed.stderr
    assert "ok  Dagster instance: PostgreSQL at 127.0.0.1:" in passed.stdout
    assert f"ok  Celery broker: Redis at {redis_server.url}" in passed.stdout
    assert not data.exists()


def test_redis_down_is_refused_by_preflight_and_by_the_celery_run_before_any_step(deployment, monkeypatch):
    env, data, _, pg_env = deployment
    port = free_port()  # nothing listens here
    down = {**env(), "OX_BB_REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0"}
    for name in (*pg_env, "DAGSTER_HOME"):
        monkeypatch.setenv(name, down[name])
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("connections", ["sandbox-token"])

        preflight = run([str(BIN / "ox-bb"), "preflight", "--celery"], down)
        launch = run(scan_on_celery_command("sandbox-token"), down)

        (failed,) = instance.get_runs(dg.RunsFilter(job_name="scan_on_celery"))
        events = instance.all_logs(failed.run_id)
    message = f"cannot reach Redis at redis://:***@127.0.0.1:{port}/0"
    assert preflight.returncode == 1
    assert message in preflight.stderr and "Connection refused" in preflight.stderr
    # The executor checks the broker before the run starts: the run record `dagster job execute`
    # made never starts (launched through the daemon, the run worker marks it failed instead).
    assert failed.status == dg.DagsterRunStatus.NOT_STARTED
    assert launch.returncode != 0 and message in launch.stdout + launch.stderr
    assert not any(e.is_dagster_event and e.dagster_event.is_step_start for e in events)
    for output in (preflight, launch):
        assert REDIS_PASSWORD not in output.stdout + output.stderr
    assert not (data / "lake").exists()


def test_an_instance_configured_by_postgres_url_is_checked_and_its_password_masked(postgres, pg_database, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("storage:\n  postgres:\n    postgres_url: {env: DAGSTER_PG_URL}\n")
    pg = postgres.env(pg_database)
    url = "postgresql://{user}:{password}@127.0.0.1:{port}/{db}"
    good = url.format(user=USER, password=pg["OX_BB_PG_PASSWORD"], port=postgres.port, db=pg_database)
    wrong = url.format(user=USER, password=WRONG_PASSWORD, port=postgres.port, db=pg_database)

    checked = preflight({"DAGSTER_HOME": str(home), "DAGSTER_PG_URL": good})
    with pytest.raises(PreflightError) as refused:
        preflight({"DAGSTER_HOME": str(home), "DAGSTER_PG_URL": wrong})
    with pytest.raises(PreflightError) as unset:
        preflight({"DAGSTER_HOME": str(home)})

    where = f"127.0.0.1:{postgres.port} database {pg_database} as user {USER}"
    assert checked == [f"Dagster instance: PostgreSQL at {where}"]
    assert "password authentication failed" in str(refused.value)
    assert WRONG_PASSWORD not in str(refused.value)
    assert str(unset.value).startswith("the PostgreSQL URL comes from $DAGSTER_PG_URL, which is not set")
