"""Pull-request scans in Dagster: `pull_request_scan_sensor` finds open pull requests whose source commit moved
since their last scan and launches `scan_pull_request` for each; the work is in scanners/pull_requests.py.

The sensor reads the extract's `pull_requests` rows and the lake's record of past scans (no request to
Bitbucket, no clone): an unchanged pull request costs nothing. Run keys name the pull request at its source
commit, so a tick evaluated twice launches nothing twice.
"""

import json

import dagster as dg

from ... import lake
from ...config import ConfigError
from ...findings import FINDING_SCHEMA
from ...scanners import pull_requests
from ..bitbucket.resources import BitbucketResource
from ..metadata import column_schema
from ..storage.resources import StorageResource

PULL_REQUESTS_PER_TICK = 20  # runs launched per connection and tick; the rest wait for the next tick

# Written by scan_pull_request runs (not asset materializations of their own: one run per pull request); declared
# so that warehouse/pull_request_findings has real upstreams, and materialized by each run.
PULL_REQUEST_SCANS = dg.AssetSpec(
    ["pull_requests", "pull_request_scans"],
    group_name="pull_requests",
    kinds={"parquet"},
    owners=["team:appsec"],
    description="lake/scans/pull_request_scans: one row per pull request and scanned source commit.",
    metadata={
        "dagster/column_schema": column_schema(
            [(f.name, str(f.type), "") for f in pull_requests.PULL_REQUEST_SCAN_SCHEMA]
        )
    },
)
PULL_REQUEST_SCAN_FINDINGS = dg.AssetSpec(
    ["pull_requests", "pull_request_scan_findings"],
    group_name="pull_requests",
    kinds={"parquet"},
    owners=["team:appsec"],
    description="lake/findings/pull_requests: the findings each pull-request scan found introduced.",
    metadata={"dagster/column_schema": column_schema([(f.name, str(f.type), "") for f in FINDING_SCHEMA])},
)


class PullRequestScanConfig(dg.Config):
    connection: str
    workspace: str
    repository: str
    pull_request_id: int
    dry_run: bool = False


@dg.op(pool="scanners", description="Scan one open pull request and write its report and comment to Bitbucket.")
def scan_pull_request(
    context: dg.OpExecutionContext,
    config: PullRequestScanConfig,
    bitbucket: BitbucketResource,
    storage: StorageResource,
):
    client = bitbucket.client(config.connection)
    scan = pull_requests.scan_by_id(
        client.connection,
        client,
        bitbucket.git(client),
        config.workspace,
        config.repository,
        config.pull_request_id,
        home=storage.home_path(),
        tools=storage.tools_path(),
        dry_run=config.dry_run,
        progress=context.log.info,
    )
    context.log.info(scan.summary())
    if not scan.skipped:
        for spec in (PULL_REQUEST_SCANS, PULL_REQUEST_SCAN_FINDINGS):
            context.log_event(
                dg.AssetMaterialization(
                    spec.key, metadata={"pull_request": f"{config.connection}:{scan.pull_request.key}"}
                )
            )
    context.add_output_metadata(
        {
            "result": scan.result if not scan.skipped else "skipped",
            "introduced": len(scan.introduced),
            "resolved": scan.resolved,
            "scanner_errors": len(scan.errors),
            "written": "\n".join(scan.written) or "nothing",
            "dry_run": scan.dry_run,
        }
    )


@dg.job(tags={"ox_bb/stage": "pull-request scan"}, description="Scan one pull request (run config names it).")
def pull_request_scan():
    scan_pull_request()


def run_request(connection: str, row: dict) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=f"pull-request:{connection}:{row['key']}@{row['source_commit']}",
        run_config={
            "ops": {
                "scan_pull_request": {
                    "config": {
                        "connection": connection,
                        "workspace": row["workspace"],
                        "repository": row["repository"],
                        "pull_request_id": int(row["pr_id"]),
                    }
                }
            }
        },
        tags={"ox_bb/pull_request": f"{connection}:{row['key']}"},
    )


def pending(connection, cursor: dict[str, str], home) -> list[dict]:
    """Open pull requests of a connection to scan: source commit unlike both the last scan and the cursor
    (a run launched but not finished yet is not launched again)."""
    rows = lake.read_partition("raw", "pull_requests", connection.name, home)
    scanned = pull_requests.last_scanned(connection.name, home)
    scanned.update(
        {k.removeprefix(f"{connection.name}:"): v for k, v in cursor.items() if k.startswith(f"{connection.name}:")}
    )
    return pull_requests.pull_requests_to_scan(connection.name, rows, connection.pull_request_scans, scanned)


@dg.sensor(
    job=pull_request_scan,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Scans open pull requests whose source commit moved since their last scan (from the extract's "
    "pull_requests rows: no API request per tick) and writes a Code Insights report and one comment back. "
    "Per connection: pull_request_scans.enabled, severity_threshold, exclude (opt-out), dry_run.",
)
def pull_request_scan_sensor(
    context: dg.SensorEvaluationContext, bitbucket: BitbucketResource, storage: StorageResource
):
    cursor = json.loads(context.cursor) if context.cursor else {}
    try:
        connections = bitbucket.connections().connections
    except ConfigError as exc:
        return dg.SensorResult(skip_reason=str(exc))
    requests = []
    for connection in connections:
        if not connection.pull_request_scans.enabled:
            continue
        for row in pending(connection, cursor, storage.home_path())[:PULL_REQUESTS_PER_TICK]:
            requests.append(run_request(connection.name, row))
            cursor[f"{connection.name}:{row['key']}"] = row["source_commit"]
    if not requests:
        return dg.SensorResult(skip_reason="no open pull request moved since its last scan", cursor=json.dumps(cursor))
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True))
