"""Orchestration: the nightly schedule asks for one run per connection with stable run keys; its
time comes from the environment, checked; the change sensor scans just the repository that was
pushed to, once, and resumes from its cursor; `nightly_scan` runs on the sandbox, one run per
connection, and the warehouse follows once they have all finished, a failed account included,
whose failure analysts then find in `pipeline_failures`; `scan_on_demand` rescans only the
repositories asked for and keeps the others' rows.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pytest
import requests
import yaml

from ox_bb_pipeline import lake
from ox_bb_pipeline.bitbucket import tables
from ox_bb_pipeline.bitbucket.client import BitbucketClient
from ox_bb_pipeline.bitbucket.errors import NotBitbucketError, ServerError, UnreachableError
from ox_bb_pipeline.bitbucket.git import GitAccess
from ox_bb_pipeline.clock import ManualClock
from ox_bb_pipeline.config import load_connections
from ox_bb_pipeline.definitions import defs
from ox_bb_pipeline.defs.automation.jobs import on_demand_run_config
from ox_bb_pipeline.defs.automation.schedules import (
    build_nightly_schedule,
    nightly_scan_schedule,
    nightly_settings,
)
from ox_bb_pipeline.defs.automation.sensors import (
    bitbucket_changes_sensor,
    night_ready,
    run_failures_sensor,
    warehouse_after_scans_sensor,
)
from ox_bb_pipeline.defs.bitbucket.resources import BitbucketResource
from ox_bb_pipeline.defs.retries import no_retry_for_permanent_errors
from ox_bb_pipeline.defs.storage.resources import StorageResource
from ox_bb_pipeline.run_failures import root_cause_message
from ox_bb_pipeline_tests.conftest import ANCHOR, TINY
from ox_bb_sandbox.server import SandboxServer

WS = "acme-payments"
NIGHT = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
BROKEN_TOKEN = "ATATT3xBrokenTokenForTheNightlyTest0042"


def schedule_tick(schedule, instance: dg.DagsterInstance, when: datetime = NIGHT):
    """Evaluate a schedule as the daemon does. The context is closed afterwards: an instance it
    opened would otherwise stay Dagster's current one and break later definition loads."""
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=when) as context:
        return schedule(context)


def sensor_tick(sensor, instance: dg.DagsterInstance, cursor: str | None = None, **resources):
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        return sensor(context)


# -- the nightly schedule --------------------------------------------------------------------------
def test_the_nightly_schedule_asks_for_one_run_per_connection_with_stable_run_keys():
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("connections", ["cloud-b", "cloud-a"])
        first = schedule_tick(nightly_scan_schedule, instance)
        again = schedule_tick(nightly_scan_schedule, instance)

    assert [(r.partition_key, r.run_key) for r in first] == [
        ("cloud-a", "nightly:2026-11-02:cloud-a"),
        ("cloud-b", "nightly:2026-11-02:cloud-b"),
    ]
    assert [r.run_key for r in again] == [r.run_key for r in first]
    assert first[0].tags == {
        "ox_bb/night": "2026-11-02",
        "ox_bb/night_runs": "2",
        "ox_bb/trigger": "nightly",
    }
    assert nightly_scan_schedule.job_name == "nightly_scan"
    assert (nightly_scan_schedule.cron_schedule, nightly_scan_schedule.execution_timezone) == (
        "0 2 * * *",
        "UTC",
    )


def test_the_night_is_the_scheduled_date_in_the_schedules_time_zone():
    schedule = build_nightly_schedule("30 0 * * *", "Europe/Berlin")
    # 00:30 on 2 November in Berlin is still 1 November in UTC.
    berlin_half_past_midnight = datetime(2026, 11, 2, 0, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("connections", ["cloud-a"])
        requests_ = schedule_tick(schedule, instance, berlin_half_past_midnight)

    assert [r.run_key for r in requests_] == ["nightly:2026-11-02:cloud-a"]


def test_the_nightly_schedule_skips_while_there_is_no_connection():
    with dg.instance_for_test() as instance:
        result = schedule_tick(nightly_scan_schedule, instance)

    assert "connections_sensor" in result.skip_message


def test_nightly_time_and_zone_come_from_the_environment_and_bad_values_say_what_to_do():
    assert nightly_settings({}) == ("0 2 * * *", "UTC")
    assert nightly_settings({"OX_BB_NIGHTLY_CRON": "30 23 * * 1-5", "OX_BB_NIGHTLY_TIMEZONE": "Europe/Berlin"}) == (
        "30 23 * * 1-5",
        "Europe/Berlin",
    )

    with pytest.raises(ValueError, match=r"OX_BB_NIGHTLY_CRON='0 25 \* \* \*' is not a cron schedule"):
        nightly_settings({"OX_BB_NIGHTLY_CRON": "0 25 * * *"})
    with pytest.raises(ValueError, match=r"OX_BB_NIGHTLY_TIMEZONE='Mars/Olympus' is not a time zone.*Europe/Berlin"):
        nightly_settings({"OX_BB_NIGHTLY_TIMEZONE": "Mars/Olympus"})


# -- shared helpers --------------------------------------------------------------------------------
@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("OX_BB_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def connections(server, path: Path, names: list[str], broken: bool = False) -> Path:
    """The sandbox's connections cut down to `names`, plus one with a refused token if `broken`."""
    server.write_connections(path)
    document = yaml.safe_load(path.read_text())
    document["connections"] = [c for c in document["connections"] if c["name"] in names]
    if broken:
        document["connections"].append(
            {
                "name": "broken-token",
                "method": "token",
                "host_url": server.api_url,
                "email": "alice@example.com",
                "api_token": "${OX_BB_BROKEN_TOKEN}",
            }
        )
        with open(path.with_name(path.name + ".env"), "a") as env_file:
            env_file.write(f"OX_BB_BROKEN_TOKEN={BROKEN_TOKEN}\n")
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def push(path: Path, slug: str, work: Path) -> str:
    connection = load_connections(path).get("sandbox-token")
    git = GitAccess(connection.name, connection.git_url, BitbucketClient(connection).auth.git_credentials)
    git.run(["clone", "--quiet", git.remote_url(WS, slug), str(work)], what="clone")
    identity = ["-c", "user.name=Test Pusher", "-c", "user.email=pusher@example.com"]
    git.run(
        ["-C", str(work), *identity, "commit", "--quiet", "--allow-empty", "-m", "Hotfix"],
        what="commit",
        remote=False,
    )
    git.run(["-C", str(work), "push", "--quiet", "origin", "HEAD:main"], what="push")
    return git.run(["-C", str(work), "rev-parse", "HEAD"], what="rev-parse", remote=False).strip()


def stats(server, reset: bool = False) -> dict:
    if reset:
        requests.post(f"{server.base_url}/_sandbox/stats/reset", timeout=10).raise_for_status()
        return {}
    return requests.get(f"{server.base_url}/_sandbox/stats", timeout=10).json()


def execute(
    definitions: dg.Definitions,
    instance: dg.DagsterInstance,
    job_name: str,
    request: dg.RunRequest | None = None,
) -> dg.ExecuteInProcessResult:
    """Run what a schedule or sensor asked for, in-process, as the daemon would launch it."""
    request = request or dg.RunRequest()
    return definitions.resolve_job_def(job_name).execute_in_process(
        instance=instance,
        partition_key=request.partition_key,
        run_config=request.run_config or None,
        tags=request.tags,
        raise_on_error=False,
    )


# -- the change sensor -----------------------------------------------------------------------------
def test_the_change_sensor_scans_just_the_pushed_repository_once_and_resumes_from_its_cursor(
    fresh_sandbox, tmp_path, home
):
    path = connections(fresh_sandbox, tmp_path / "connections.yaml", ["sandbox-token"])
    bitbucket = BitbucketResource(connections_file=str(path))

    def tick(instance, cursor):
        return sensor_tick(bitbucket_changes_sensor, instance, cursor, bitbucket=bitbucket, storage=StorageResource())

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("connections", ["sandbox-token"])
        first = tick(instance, None)
        stats(fresh_sandbox, reset=True)
        quiet = tick(instance, first.cursor)
        per_route = stats(fresh_sandbox)["per_route"]
        requests.post(f"{fresh_sandbox.base_url}/_sandbox/clock", json={"advance_seconds": 60}, timeout=10)
        pushed = push(path, "python-service", tmp_path / "work")

        saved = quiet.cursor  # as the daemon stores it
        changed = tick(instance, saved)
        replayed = tick(instance, saved)  # the same tick evaluated again (the daemon restarted)
        after = tick(instance, changed.cursor)

    assert first.run_requests == [] and quiet.run_requests == []
    # One workspace listing and one repository listing: no per-repository call.
    assert set(per_route) == {"/2.0/user/workspaces", "/2.0/repositories/{workspace}"}
    [request] = changed.run_requests
    assert request.partition_key == "sandbox-token"
    assert request.run_config == on_demand_run_config([f"{WS}/python-service"])
    assert request.tags["ox_bb/trigger"] == "changes"
    # The same key: Dagster launches it once.
    assert [r.run_key for r in replayed.run_requests] == [request.run_key]
    assert after.run_requests == []
    cursor = json.loads(changed.cursor)
    assert cursor["sandbox-token"]["workspaces"][WS]["heads"]["python-service"] == pushed


def test_a_connection_the_sensor_cannot_read_keeps_its_cursor_and_spoils_no_other(fresh_sandbox, tmp_path, home):
    path = connections(fresh_sandbox, tmp_path / "connections.yaml", ["sandbox-token"], broken=True)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("connections", ["sandbox-token", "broken-token"])

    result = sensor_tick(
        bitbucket_changes_sensor,
        instance,
        bitbucket=BitbucketResource(connections_file=str(path)),
        storage=StorageResource(),
    )

    cursor = json.loads(result.cursor)
    assert cursor["broken-token"] == {"workspaces": {}}  # nothing learnt: asked afresh next tick
    assert list(cursor["sandbox-token"]["workspaces"]) == [WS]


# The first test to use `night` pays for a whole nightly scan (a few minutes on a busy machine).
NIGHT_TIMEOUT = pytest.mark.timeout(900)


# -- the nightly pipeline end to end ---------------------------------------------------------------
@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """One night on a sandbox of its own: the schedule's two runs (sandbox-token, and broken-token
    whose token is refused), the warehouse sensor ticking between them, the failure recorded by
    the run-failure sensor, then the warehouse run the sensor asked for. Later tests go on from it.
    """
    root = tmp_path_factory.mktemp("night")
    with (
        SandboxServer(TINY, clock=ManualClock(ANCHOR)) as server,
        dg.instance_for_test() as instance,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv("OX_BB_HOME", str(root / "home"))
        path = connections(server, root / "connections.yaml", ["sandbox-token"], broken=True)
        patch.setenv("OX_BB_CONNECTIONS", str(path))
        definitions = defs()
        instance.add_dynamic_partitions("connections", ["sandbox-token", "broken-token"])
        broken, good = schedule_tick(nightly_scan_schedule, instance)

        def warehouse_tick(cursor=None):
            return sensor_tick(warehouse_after_scans_sensor, instance, cursor)

        scanned = execute(definitions, instance, "nightly_scan", good)
        waiting = warehouse_tick()  # one of the night's two runs has not run yet
        failed = execute(definitions, instance, "nightly_scan", broken)
        ready = warehouse_tick(waiting.cursor)
        done = warehouse_tick(ready.cursor)
        with dg.build_run_status_sensor_context(
            sensor_name="run_failures_sensor",
            dagster_event=failed.get_run_failure_event(),
            dagster_instance=instance,
            dagster_run=instance.get_run_by_id(failed.run_id),
            resources={"storage": StorageResource()},
        ).for_run_failure() as failure_context:
            run_failures_sensor(failure_context)
        built = [execute(definitions, instance, "build_warehouse", r) for r in ready.run_requests]
        yield SimpleNamespace(
            server=server,
            path=path,
            home=root / "home",
            instance=instance,
            definitions=definitions,
            scanned=scanned,
            failed=failed,
            waiting=waiting,
            ready=ready,
            done=done,
            built=built,
        )


@NIGHT_TIMEOUT
def test_nightly_scan_runs_per_connection_then_the_warehouse_even_when_one_account_fails(night):
    assert night.scanned.success and not night.failed.success
    # A refused token fails at once: retrying it would only spend the budget again.
    assert not any(e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY for e in night.failed.all_events)
    assert night.waiting.run_requests == []
    assert [r.run_key for r in night.ready.run_requests] == ["nightly:2026-11-02"]
    assert night.done.run_requests == []
    assert [b.success for b in night.built] == [True]
    con = duckdb.connect(str(night.home / "warehouse.duckdb"), read_only=True)
    try:
        repositories = con.execute(
            "SELECT DISTINCT repository FROM findings WHERE repository <> '' ORDER BY 1"
        ).fetchall()
        queue = con.execute("SELECT count(*) FROM findings_queue").fetchone()[0]
        compliance = con.execute("SELECT count(*) FROM compliance_report").fetchone()[0]
        failures = con.execute(
            "SELECT job_name, connection, night, failed_steps, error FROM pipeline_failures"
        ).fetchall()
    finally:
        con.close()
    assert repositories == [("node-web",), ("python-service",)]
    assert queue > 0 and compliance > 0
    assert (night.home / "reports" / "compliance.html").exists()
    [(job, connection, night_, steps, error)] = failures
    assert (job, connection, night_, steps) == (
        "nightly_scan",
        "broken-token",
        "2026-11-02",
        ["bitbucket_raw_tables"],
    )
    assert "refused the credential" in error and BROKEN_TOKEN not in error


@NIGHT_TIMEOUT
def test_the_warehouse_does_not_wait_past_the_deadline_for_a_run_that_never_finishes(night):
    records = night.instance.get_run_records(dg.RunsFilter(job_name="nightly_scan"))
    started = min(r.create_timestamp for r in records).astimezone(UTC)

    # Suppose the night had a third connection whose run is stuck: two finished runs are not enough
    assert not night_ready(records, expected=3, now=started + timedelta(hours=1))
    # until the deadline, when the warehouse is built with what there is.
    assert night_ready(records, expected=3, now=started + timedelta(hours=7))


# -- on demand -------------------------------------------------------------------------------------
def without_timestamps(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("extracted_at", "checked_at", "scanned_at")} for r in rows]


@NIGHT_TIMEOUT
def test_scan_on_demand_rescans_only_the_repositories_asked_for_and_keeps_the_others(night, tmp_path):
    def of(zone: str, table: str, slug: str) -> list[dict]:
        rows = without_timestamps(
            [r for r in lake.read_partition(zone, table, "sandbox-token", night.home) if r.get("repository") == slug]
        )
        return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True, default=str))

    kept = {t: of("raw", t, "node-web") for t in tables.TABLES if t not in ("repositories", "workspaces")}
    kept_findings = {
        t: of("scans" if t == "scan_runs" else "findings", t, "node-web")
        for t in ("secrets", "sca", "semgrep", "scan_runs")
    }
    assert kept_findings["sca"] and kept_findings["scan_runs"]
    requests.post(f"{night.server.base_url}/_sandbox/clock", json={"advance_seconds": 3600}, timeout=10)
    pushed = push(night.path, "python-service", tmp_path / "work")
    push(night.path, "node-web", tmp_path / "other")  # changed too, but not asked for
    on_demand = dg.RunRequest(partition_key="sandbox-token", run_config=on_demand_run_config([f"{WS}/python-*"]))

    result = execute(night.definitions, night.instance, "scan_on_demand", on_demand)
    follow_up = sensor_tick(warehouse_after_scans_sensor, night.instance, night.ready.cursor)

    assert result.success
    heads = {
        r["repository"]: r["main_head"] for r in lake.read_partition("raw", "repositories", "sandbox-token", night.home)
    }
    assert heads["python-service"] == pushed
    assert {t: of("raw", t, "node-web") for t in kept} == kept
    assert {t: of("scans" if t == "scan_runs" else "findings", t, "node-web") for t in kept_findings} == kept_findings
    assert {r["commit"] for r in of("scans", "scan_runs", "python-service")} == {pushed}
    assert [r.run_key for r in follow_up.run_requests] == [f"on_demand:{result.run_id}"]


@NIGHT_TIMEOUT
def test_a_repository_glob_that_is_not_workspace_slash_slug_fails_at_once_naming_it(night):
    before = lake.partition_path("raw", "repositories", "sandbox-token", night.home).stat().st_mtime_ns

    result = execute(
        night.definitions,
        night.instance,
        "scan_on_demand",
        dg.RunRequest(partition_key="sandbox-token", run_config=on_demand_run_config(["python-service"])),
    )

    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "repository glob 'python-service' must look like workspace/repo_slug" in root_cause_message(
        failure.step_failure_data.error
    )
    assert not any(e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY for e in result.all_events)
    assert lake.partition_path("raw", "repositories", "sandbox-token", night.home).stat().st_mtime_ns == before


# -- step retries: transient errors say when they retry; permanent ones fail at once ---------------
def _failing_job(error: Exception) -> dg.JobDefinition:
    @dg.op
    def read_bitbucket(context) -> None:
        with no_retry_for_permanent_errors(context, delay=lambda retry: 0):  # no real wait in a test
            raise error

    @dg.job
    def read() -> None:
        read_bitbucket()

    return read


def test_a_transient_error_retries_the_step_three_times_saying_when_and_which_attempt(caplog):
    error = ServerError("connection 'x': GET /repositories failed after 6 attempts (HTTP 503)")
    with caplog.at_level("WARNING", logger="ox_bb_pipeline"):
        result = _failing_job(error).execute_in_process(raise_on_error=False)

    assert not result.success
    retries = [r.getMessage() for r in caplog.records if r.name.startswith("ox_bb_pipeline")]
    assert [m.rsplit("retrying in ", 1)[1] for m in retries] == [
        "1 min (attempt 1 of 3)",
        "1 min (attempt 2 of 3)",
        "1 min (attempt 3 of 3)",
    ]
    assert sum(1 for e in result.all_events if e.is_step_failure) == 1


@pytest.mark.parametrize(
    "error",
    [
        UnreachableError("connection 'x': cannot reach 127.0.0.1:1: connection refused", reason="connection refused"),
        NotBitbucketError("connection 'x': / answered text/html, not JSON"),
    ],
)
def test_an_unreachable_or_non_bitbucket_host_is_not_retried_as_a_step(error, caplog):
    with caplog.at_level("WARNING", logger="ox_bb_pipeline"):
        result = _failing_job(error).execute_in_process(raise_on_error=False)

    assert not result.success
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
