"""Scale-out: the scan stage on two Celery workers over a real Redis broker, with the production
instance on PostgreSQL. Two connection partitions launched together run on both workers (their
step events name the worker), and the lake they write equals an in-process scan's."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import dagster as dg
import pytest
from celery import Celery

from ox_bb_pipeline import lake
from ox_bb_pipeline.app.runner import run_stages
from ox_bb_pipeline.defs.scanning.assets import FINDING_TABLES

from .conftest import STARTUP_DEADLINE
from .helpers import BIN, REPO_ROOT, dagster_home, deployment_env, sandbox_connections, service

CONNECTIONS = ["sandbox-app", "sandbox-token"]
WORKERS = ["scan-1", "scan-2"]
CELERY_YAML = "ox_bb_pipeline/celery.yaml"


def worker_command(name: str) -> list[str]:
    """The README's worker command: one step at a time, on the `dagster` queue."""
    return [
        str(BIN / "dagster-celery"),
        "worker",
        "start",
        "-A",
        "dagster_celery.app",
        "-y",
        CELERY_YAML,
        "-q",
        "dagster",
        "-n",
        name,
        "--",
        "--concurrency=1",
    ]


def scan_on_celery_command(connection: str) -> list[str]:
    """The README's terminal launch of one connection's scan on the workers."""
    return [
        str(BIN / "dagster"),
        "job",
        "execute",
        "-m",
        "ox_bb_pipeline.definitions",
        "-j",
        "scan_on_celery",
        "--tags",
        json.dumps({"dagster/partition": connection}),
    ]


def wait_for_workers(redis_url: str, names: list[str], processes: list) -> None:
    app = Celery(broker=redis_url, backend=redis_url)
    deadline = time.monotonic() + STARTUP_DEADLINE * 4
    answering: set[str] = set()
    while time.monotonic() < deadline:
        assert all(p.poll() is None for p in processes), "a Celery worker exited; see worker-*.log"
        answering = {name.split("@")[0] for reply in app.control.ping(timeout=1) for name in reply}
        if answering >= set(names):
            return
    raise AssertionError(f"Celery workers {sorted(set(names) - answering)} did not answer a ping")


def finding_ids(home: Path) -> dict[str, list[str]]:
    return {
        f"{table}/{name}": sorted(r["finding_id"] for r in lake.read_partition("findings", table, name, home))
        for table in FINDING_TABLES
        for name in CONNECTIONS
    }


def celery_workers_of(instance: dg.DagsterInstance, run_id: str) -> dict[str, set[str]]:
    """Step key -> the worker hostnames in the run's engine events ("Executing steps … in celery
    worker"; the orchestrator repeats each worker's event, so a step may be seen twice)."""
    steps: dict[str, set[str]] = {}
    for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        metadata = e.dagster_event.engine_event_data.metadata
        if "Celery worker" in metadata:
            steps.setdefault(e.dagster_event.step_key, set()).add(metadata["Celery worker"].value)
    return steps


@pytest.mark.timeout(1200)
def test_the_scan_stage_runs_on_two_celery_workers_and_writes_what_an_in_process_run_writes(
    postgres, pg_database, redis_server, fresh_sandbox, tmp_path, monkeypatch
):
    monkeypatch.setenv("OX_BB_SECRET_SALT", "scale-out-salt")  # both homes fingerprint secrets alike
    connections = sandbox_connections(fresh_sandbox, tmp_path / "connections.yaml", CONNECTIONS)
    in_process, on_celery = tmp_path / "in-process", tmp_path / "on-celery"
    monkeypatch.setenv("OX_BB_HOME", str(in_process))
    results = run_stages(
        "scan",
        connections,
        progress=lambda _: None,
        dagster_instance=dg.DagsterInstance.ephemeral(),
    )
    assert all(r.success for r in results), [r.error for r in results]
    # The Celery home starts from the same extract, with no findings, inventory or scan cache.
    shutil.copytree(in_process / "lake" / "raw", on_celery / "lake" / "raw")

    home = dagster_home(tmp_path / "dagster_home")
    env = deployment_env(
        home,
        postgres.env(pg_database),
        OX_BB_HOME=str(on_celery),
        OX_BB_CONNECTIONS=str(connections),
        OX_BB_REDIS_URL=redis_server.url,
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("connections", CONNECTIONS)
        with (
            service(worker_command(WORKERS[0]), env, tmp_path / "worker-1.log") as first,
            service(worker_command(WORKERS[1]), env, tmp_path / "worker-2.log") as second,
        ):
            wait_for_workers(redis_server.url, WORKERS, [first, second])
            launches = [
                subprocess.Popen(
                    scan_on_celery_command(c),
                    env=env,
                    cwd=REPO_ROOT,
                    text=True,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                )
                for c in CONNECTIONS
            ]
            outputs = [p.communicate(timeout=900)[0] for p in launches]
        runs = instance.get_runs(dg.RunsFilter(job_name="scan_on_celery"))
        assert len(runs) == 2 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), outputs
        assert sorted(r.tags["dagster/partition"] for r in runs) == CONNECTIONS
        workers = {r.tags["dagster/partition"]: celery_workers_of(instance, r.run_id) for r in runs}

    # Every step (the scan and its data-quality check, per run) ran once, on one worker, and the
    # runs' steps used both workers.
    for steps in workers.values():
        # the scan is a graph of steps (plan, one step per repository shard, merge), then its check
        assert {step.split(".")[0] for step in steps} == {"scan_findings", "scanning_findings_expectations"}, workers
        assert {"scan_findings.plan_scan_shards", "scan_findings.merge_scan_shards"} <= set(steps), workers
        assert all(len(names) == 1 for names in steps.values()), workers
    used = {name.split("@")[0] for steps in workers.values() for names in steps.values() for name in names}
    assert sorted(used) == WORKERS, workers
    expected = finding_ids(in_process)
    assert sum(len(ids) for ids in expected.values()) > 0
    assert finding_ids(on_celery) == expected
    # Nothing went through a worker's local disk: step outputs would be under DAGSTER_HOME/storage.
    assert [p for p in (home / "storage").rglob("*") if p.is_file() and "compute_logs" not in p.parts] == []
