"""Sensors: on-demand scans of the repositories that changed, the warehouse after the nightly
(and on-demand) scans, and a record of every failed run where analysts look.

Bounded work per tick everywhere: the change sensor handles at most `CHANGES_PER_TICK` changed
repositories per connection (the cursor resumes with the rest), and the warehouse sensor looks
at runs of the last few days only. Run keys are derived from what triggered a run, so a tick
evaluated twice launches nothing twice.
"""

import hashlib
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import dagster as dg

from ... import lake
from ...bitbucket.changes import ChangeDetector, RepositoryChange
from ...bitbucket.errors import BitbucketError
from ...clock import SystemClock
from ...config import ConfigError
from ...run_failures import record_run_failure, root_cause_message
from ..bitbucket.partitions import connections_partitions
from ..bitbucket.resources import BitbucketResource
from ..storage.resources import StorageResource
from .jobs import on_demand_run_config
from .schedules import NIGHT_RUNS_TAG, NIGHT_TAG, TRIGGER_TAG

CHANGES_PER_TICK = 25  # changed repositories handled per connection and tick
# After this, the warehouse is built without the connections still running.
NIGHTLY_WAIT = timedelta(hours=6)
LOOKBACK = timedelta(days=3)  # runs older than this are not looked at again
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


# -- changes in Bitbucket -> scan_on_demand --------------------------------------------------------
def change_run_request(connection: str, changes: list[RepositoryChange]) -> dg.RunRequest:
    """One on-demand run for a connection's changed repositories. The run key names each repository
    at its new head: the same changes give the same key, so a repeated tick launches nothing."""
    names = sorted(c.full_name for c in changes)
    digest = hashlib.sha256("\n".join(sorted(f"{c.full_name}@{c.main_head}" for c in changes)).encode())
    return dg.RunRequest(
        run_key=f"changes:{connection}:{digest.hexdigest()[:20]}",
        partition_key=connection,
        run_config=on_demand_run_config(names),
        tags={TRIGGER_TAG: "changes"},
    )


@dg.sensor(
    job_name="scan_on_demand",
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Polls each connection cheaply (one repository listing per workspace sorted by "
    "updated_on, git ls-remote for main heads) and scans just the repositories whose "
    "main branch moved. Off by default: it spends part of each connection's API budget "
    "(about 12 × (1 + workspaces) requests an hour when quiet).",
)
def bitbucket_changes_sensor(
    context: dg.SensorEvaluationContext, bitbucket: BitbucketResource, storage: StorageResource
):
    cursor = json.loads(context.cursor) if context.cursor else {}
    try:
        configured = bitbucket.connections().names
    except ConfigError as exc:
        return dg.SensorResult(skip_reason=str(exc))
    partitions = set(context.instance.get_dynamic_partitions(connections_partitions.name))
    requests = []
    for name in [n for n in configured if n in partitions]:
        try:  # one failing account keeps its cursor and spoils no other
            client = bitbucket.client(name)
            client.max_retries = 1  # a tick must end well inside 60 s; the next tick asks again
            detector = ChangeDetector(
                client,
                bitbucket.git(client),
                max_repositories=CHANGES_PER_TICK,
                baseline=lake.read_partition("raw", "repositories", name, storage.home_path()),
            )
            poll = detector.poll(cursor.get(name))
        except BitbucketError as exc:
            context.log.warning(f"{name}: {exc}")
            continue
        for problem in poll.problems:
            context.log.warning(f"{name}: {problem}")
        cursor[name] = poll.cursor
        if poll.changes:
            requests.append(change_run_request(name, poll.changes))
            context.log.info(
                f"{name}: main moved in {', '.join(c.full_name for c in poll.changes)}"
                + (" (more next tick)" if poll.more else "")
            )
    for gone in set(cursor) - set(configured):
        del cursor[gone]
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True))


# -- nightly scans (and on-demand scans) -> build_warehouse ----------------------------------------
def night_ready(runs: list, expected: int, now: datetime) -> bool:
    """Whether a night's connection runs allow the warehouse: all `expected` have finished
    (succeeded, failed or canceled: a failed account must not block the rest), or the first
    started more than `NIGHTLY_WAIT` ago (one stuck account must not block them either).
    `runs` are the night's run records, newest first; a retried partition counts its newest run."""
    newest = {}
    for record in runs:
        newest.setdefault(record.dagster_run.tags.get("dagster/partition"), record)
    finished = all(r.dagster_run.status in FINISHED for r in newest.values())
    if finished and len(newest) >= expected:
        return True
    started = min(r.create_timestamp for r in runs)
    return now - started.astimezone(UTC) > NIGHTLY_WAIT


def warehouse_requests(instance: dg.DagsterInstance, cursor: dict, now: datetime) -> list[dg.RunRequest]:
    """Warehouse runs due: one per finished night (run key `nightly:<night>`), and one after
    on-demand scans once none is queued or running (run key: the newest of them)."""
    requests = []
    since = now - LOOKBACK
    nights = defaultdict(list)
    for record in instance.get_run_records(
        dg.RunsFilter(job_name="nightly_scan", created_after=since, tags={TRIGGER_TAG: "nightly"})
    ):
        nights[record.dagster_run.tags[NIGHT_TAG]].append(record)
    built = cursor.setdefault("nights_built", [])
    for night, runs in sorted(nights.items()):
        expected = int(runs[0].dagster_run.tags.get(NIGHT_RUNS_TAG, "1"))
        if night not in built and night_ready(runs, expected, now):
            requests.append(dg.RunRequest(run_key=f"nightly:{night}", tags={NIGHT_TAG: night, TRIGGER_TAG: "nightly"}))
            built.append(night)
    cursor["nights_built"] = sorted(built)[-10:]
    on_demand = instance.get_run_records(dg.RunsFilter(job_name="scan_on_demand", created_after=since))
    newest_done = next((r for r in on_demand if r.dagster_run.status == dg.DagsterRunStatus.SUCCESS), None)
    if (
        newest_done
        and newest_done.dagster_run.run_id != cursor.get("on_demand_built")
        and all(r.dagster_run.status in FINISHED for r in on_demand)
    ):
        requests.append(
            dg.RunRequest(run_key=f"on_demand:{newest_done.dagster_run.run_id}", tags={TRIGGER_TAG: "changes"})
        )
        cursor["on_demand_built"] = newest_done.dagster_run.run_id
    return requests


@dg.sensor(
    job_name="build_warehouse",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Builds the warehouse once all of a night's nightly_scan runs have finished "
    "(succeeded or failed), and after on-demand scans once none is still running.",
)
def warehouse_after_scans_sensor(context: dg.SensorEvaluationContext):
    cursor = json.loads(context.cursor) if context.cursor else {}
    requests = warehouse_requests(context.instance, cursor, SystemClock().now())
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True))


# -- failed runs -> lake/ops/run_failures -> warehouse pipeline_failures ---------------------------
def _trigger(tags: dict) -> str:
    for key in ("dagster/schedule_name", "dagster/sensor_name"):
        if key in tags:
            return tags[key]
    return "backfill" if "dagster/backfill" in tags else "manual"


@dg.run_failure_sensor(
    name="run_failures_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records every failed run (job, connection, steps, redacted error) "
    "in the lake; the warehouse shows them as pipeline_failures.",
)
def run_failures_sensor(context: dg.RunFailureSensorContext, storage: StorageResource):
    run = context.dagster_run
    steps = context.get_step_failure_events()
    errors = [root_cause_message(e.step_failure_data.error) for e in steps if e.step_failure_data]
    path = record_run_failure(
        run_id=run.run_id,
        job_name=run.job_name,
        trigger=_trigger(run.tags),
        night=run.tags.get(NIGHT_TAG),
        connection=run.tags.get("ox_bb/connection") or run.tags.get("dagster/partition"),
        failed_steps=[e.step_key for e in steps],
        error="\n".join(errors) or context.failure_event.message or "",
        failed_at=SystemClock().now(),
        home=storage.home_path(),
    )
    context.log.info(f"recorded the failure of run {run.run_id} ({run.job_name}) in {path}")
