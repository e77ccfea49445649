"""Every run creates the step pools before any step claims a slot, whatever launched it: the code location's
default executor (multiprocess, used by the runs the daemon launches for schedules, sensors, the UI and run
retries) calls `production.ensure_pools` at run start, as `ox-bb run` and the Celery executor do. On a fresh
PostgreSQL instance, runs starting together must all start (the race of issue 15's flaky Celery test)."""

from __future__ import annotations

import threading

import dagster as dg
import pytest
from dagster._core.definitions.job_base import InMemoryJob

from ox_bb_pipeline.definitions import defs
from ox_bb_pipeline.defs.automation.executors import multiprocess_with_pools
from ox_bb_pipeline.production import POOLS

from .helpers import dagster_home


@pytest.fixture
def fresh_instance(postgres, pg_database, tmp_path, monkeypatch):
    """DAGSTER_HOME with the top-level dagster.yaml on a new PostgreSQL database (no pools yet)."""
    home = dagster_home(tmp_path / "dagster_home")
    for name, value in {
        **postgres.env(pg_database),
        "DAGSTER_HOME": str(home),
        "OX_BB_HOME": str(tmp_path / "data"),
    }.items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.get() as instance:
        assert instance.event_log_storage.get_pool_limits() == []
    return home


def pooled_jobs() -> dict[str, dg.JobDefinition]:
    """The code location's jobs with a step in one of the pools (the implicit asset job included)."""
    repository = defs().get_repository_def()
    return {
        job.name: job
        for job in repository.get_all_jobs()
        if any(getattr(op, "pool", None) in POOLS for op in job.graph.iterate_op_defs())
    }  # graphs too


def start_run(job: dg.JobDefinition, instance: dg.DagsterInstance) -> dg.Executor:
    """What a run worker does at run start: its executor, made from the job's resolved run config."""
    config = dg.validate_run_config(job, {})["execution"][job.executor_def.name]
    return job.executor_def.executor_creation_fn(
        dg.InitExecutorContext(
            job=InMemoryJob(job), executor_def=job.executor_def, executor_config=config, instance=instance
        )
    )


def test_every_pooled_job_but_celerys_runs_on_the_executor_that_creates_the_pools():
    jobs = pooled_jobs()

    assert {"__ASSET_JOB", "nightly_scan", "scan_on_demand", "scan_on_celery"} <= set(jobs)
    assert {name for name, job in jobs.items() if job.executor_def is not multiprocess_with_pools} == {
        "scan_on_celery"
    }  # its own executor calls ensure_pools (defs/scale_out/jobs.py)


def test_runs_starting_together_on_a_fresh_instance_create_the_pools_before_any_step(fresh_instance):
    jobs = pooled_jobs()
    names = ["nightly_scan", "scan_on_demand", "__ASSET_JOB", "nightly_scan"]
    start, errors, executors = threading.Barrier(len(names)), [], []

    def run_worker(name: str) -> None:
        with dg.DagsterInstance.get() as own:  # each run worker has its own instance and connections
            start.wait()
            try:
                executors.append(start_run(jobs[name], own))
            except Exception as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

    threads = [threading.Thread(target=run_worker, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert len(executors) == len(names)
    assert {type(e).__name__ for e in executors} == {"MultiprocessExecutor"}
    with dg.DagsterInstance.get() as instance:
        limits = {p.name: (p.limit, p.from_default) for p in instance.event_log_storage.get_pool_limits()}
    assert limits == {pool: (4, True) for pool in POOLS}
