"""The production instance: deploy/dagster.yaml on a real PostgreSQL server. A pipeline run
against the sandbox stores its runs, event logs, dynamic partitions and the connections sensor's
ticks (evaluated by `dagster-daemon run`) in PostgreSQL, and a second process sees them all."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from contextlib import closing

import dagster as dg
import psycopg2
import pytest
import requests
from dagster._core.scheduler.instigation import InstigatorType
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from ox_bb_pipeline.app.runner import run_stages
from ox_bb_pipeline.production import ensure_pools

from .conftest import STARTUP_DEADLINE, USER, free_port, wait_until
from .helpers import BIN, REPO_ROOT, dagster_home, deployment_env, sandbox_connections, service

DAEMON_DEADLINE = 180.0  # the daemon loads the code location in a subprocess before its first tick


@pytest.fixture
def instance_env(postgres, pg_database, tmp_path, monkeypatch):
    """DAGSTER_HOME with deploy/dagster.yaml and the OX_BB_PG_* variables, in-process."""
    home = dagster_home(tmp_path / "dagster_home")
    pg_env = postgres.env(pg_database)
    for name, value in {
        **pg_env,
        "DAGSTER_HOME": str(home),
        "OX_BB_HOME": str(tmp_path / "data"),
    }.items():
        monkeypatch.setenv(name, value)
    return home, pg_env


def test_the_instance_loads_from_deploy_dagster_yaml_on_postgres(instance_env):
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert not instance.telemetry_enabled
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert not instance.run_retries_retry_on_asset_or_op_failure
        runs = instance.get_concurrency_config().run_queue_config
        assert runs.max_concurrent_runs == 8
        assert runs.tag_concurrency_limits == [
            {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
        ]
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 4


def stored_tables(pg_env: dict) -> dict[str, int]:
    """Row counts straight from PostgreSQL, so the test does not take Dagster's word for it."""
    connection = psycopg2.connect(
        host=pg_env["OX_BB_PG_HOST"],
        port=pg_env["OX_BB_PG_PORT"],
        user=USER,
        password=pg_env["OX_BB_PG_PASSWORD"],
        dbname=pg_env["OX_BB_PG_DB"],
    )
    with closing(connection), connection.cursor() as cursor:
        counts = {}
        for table in ("runs", "event_logs", "dynamic_partitions", "job_ticks"):
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
        return counts


def connections_sensor_ticks(instance: dg.DagsterInstance) -> list:
    states = [
        s
        for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
        if s.instigator_name == "connections_sensor"
    ]
    return [t for s in states for t in instance.get_ticks(s.instigator_origin_id, s.selector_id)]


def added_partitions(ticks: list) -> list[str]:
    return sorted(k for t in ticks for r in t.tick_data.dynamic_partitions_request_results for k in r.added_partitions)


def wait_for_partitions_tick(instance: dg.DagsterInstance, daemon, log) -> None:
    """Until the daemon has stored a tick of connections_sensor that added partitions."""
    deadline = time.monotonic() + DAEMON_DEADLINE
    while time.monotonic() < deadline:
        if added_partitions(connections_sensor_ticks(instance)):
            return
        assert daemon.poll() is None, f"dagster-daemon exited:\n{log.read_text()[-3000:]}"
        time.sleep(0.5)
    raise AssertionError(f"no connections_sensor tick within {DAEMON_DEADLINE:.0f} s:\n{log.read_text()[-3000:]}")


def webserver_runs(url: str) -> list[str]:
    """Run statuses as the UI's GraphQL API reports them, once the webserver answers."""
    wait_until(
        lambda: requests.get(f"{url}/server_info", timeout=5).ok,
        f"dagster-webserver at {url}",
        DAEMON_DEADLINE,
    )
    query = "{ runsOrError { ... on Runs { results { status } } } }"
    response = requests.post(f"{url}/graphql", json={"query": query}, timeout=60)
    response.raise_for_status()
    return [run["status"] for run in response.json()["data"]["runsOrError"]["results"]]


SECOND_PROCESS = """
import json
import dagster as dg
from ox_bb_pipeline_tests.production.test_instance import added_partitions, connections_sensor_ticks

REPOSITORIES = dg.AssetKey(["bitbucket", "repositories"])

with dg.DagsterInstance.get() as instance:
    runs = instance.get_runs()
    print(json.dumps({
        "storage": type(instance.run_storage).__name__,
        # run_stages' runs (a sensor of the automation may launch runs of its own jobs meanwhile)
        "runs": sorted((r.tags["ox_bb/stage"], r.status.value) for r in runs
                       if r.job_name == "__ephemeral_asset_job__"),
        "partitions": sorted(instance.get_dynamic_partitions("connections")),
        "materialized": sorted(instance.get_materialized_partitions(REPOSITORIES)),
        "added": added_partitions(connections_sensor_ticks(instance)),
    }))
"""


@pytest.mark.timeout(900)
def test_a_pipeline_run_and_a_sensor_tick_are_stored_in_postgres_and_seen_by_a_second_process(
    instance_env, fresh_sandbox, tmp_path
):
    home, pg_env = instance_env
    connections = sandbox_connections(fresh_sandbox, tmp_path / "connections.yaml", ["sandbox-token", "sandbox-app"])

    env = deployment_env(home, pg_env, OX_BB_CONNECTIONS=str(connections), OX_BB_HOME=str(tmp_path / "data"))
    for command in (
        ["instance", "migrate"],
        ["instance", "concurrency", "set", "duckdb_writer", "1"],
    ):
        done = subprocess.run(
            [str(BIN / "dagster"), *command],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    with dg.DagsterInstance.get() as instance:
        assert instance.event_log_storage.get_concurrency_info("duckdb_writer").slot_count == 1
        results = run_stages("all", connections, "sandbox-token", dagster_instance=instance, progress=lambda _: None)
        assert [(r.stage, r.success) for r in results] == [
            ("extract", True),
            ("scan", True),
            ("warehouse", True),
        ]
        # The daemon evaluates connections_sensor (RUNNING by default): it adds sandbox-app.
        log, port = tmp_path / "daemon.log", free_port()
        with (
            service([str(BIN / "dagster-daemon"), "run"], env, log) as daemon,
            service(
                [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port)],
                env,
                tmp_path / "webserver.log",
            ),
        ):
            wait_for_partitions_tick(instance, daemon, log)
            ui_runs = webserver_runs(f"http://127.0.0.1:{port}")
    assert sum(1 for status in ui_runs if status == "SUCCESS") >= 3

    counts = stored_tables(pg_env)
    assert counts["runs"] >= 3 and counts["event_logs"] > 0 and counts["job_ticks"] >= 1
    assert counts["dynamic_partitions"] == 2

    second = subprocess.run(
        [sys.executable, "-c", SECOND_PROCESS],
        env=deployment_env(home, pg_env),
        capture_output=True,
        text=True,
        timeout=STARTUP_DEADLINE * 4,
        check=False,
    )
    assert second.returncode == 0, second.stderr
    seen = json.loads(second.stdout.strip().splitlines()[-1])
    assert seen["storage"] == "PostgresRunStorage"
    assert seen["runs"] == [["extract", "SUCCESS"], ["scan", "SUCCESS"], ["warehouse", "SUCCESS"]]
    assert seen["partitions"] == ["sandbox-app", "sandbox-token"]
    assert seen["materialized"] == ["sandbox-token"]
    assert seen["added"] == ["sandbox-app"]


def test_runs_starting_together_on_a_fresh_instance_all_get_the_step_pools(instance_env):
    """The cause of the flaky Celery test: two runs on a fresh PostgreSQL instance both found the
    `scanners` pool missing and both created it; Dagster's loser fails in an aborted transaction."""
    with dg.DagsterInstance.get() as instance:
        instance.event_log_storage.initialize_concurrency_limit_to_default("scanners")
        with pytest.raises(Exception, match="InFailedSqlTransaction"):  # what the losing run died of
            instance.event_log_storage.initialize_concurrency_limit_to_default("scanners")

    # ensure_pools (run start: ox-bb run, the Celery executor) is safe in the same race.
    start, errors = threading.Barrier(4), []

    def starting_run() -> None:
        with dg.DagsterInstance.get() as own:  # each run has its own instance and connections
            start.wait()
            try:
                ensure_pools(own)
            except Exception as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

    threads = [threading.Thread(target=starting_run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    with dg.DagsterInstance.get() as instance:
        limits = {p.name: (p.limit, p.from_default) for p in instance.event_log_storage.get_pool_limits()}
    assert limits == {"bitbucket_api": (4, True), "scanners": (4, True)}
