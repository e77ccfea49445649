"""Findings per scanner, scan runs, the component inventory and posture results, one Parquet
partition per connection, from one scan pass (snapshots are shared by every scanner)."""

from collections import Counter

import dagster as dg
from pydantic import Field

from ... import lake
from ...bitbucket import tables as raw_tables
from ...bitbucket.extract import RepositoryFilter
from ...clock import SystemClock
from ...config import data_home
from ...redaction import redact_snippet
from ...scanners import posture, sarif
from ...scanners.finding import FINDING_SCHEMA, RepoRef
from ...scanners.sca import COMPONENT_SCHEMA, ecosystems_not_evaluated, not_evaluated_line
from ...scanners.secrets import VARIABLE_RULE, variable_findings
from ...scanners.shards import ShardFailure, merge, run_shards, shard_count, split
from ...scanners.stage import (
    REPOSITORY_FILES_SCHEMA,
    SCAN_RUN_SCHEMA,
    ScanStageReport,
    default_scanners,
)
from ..automation.retries import STEP_RETRY_POLICY, no_retry_for_permanent_errors
from ..bitbucket.partitions import connections_partitions
from ..bitbucket.resources import BitbucketResource
from ..metadata import FIRST_ERRORS, STATUS_TAG, column_schema, table_metadata

FINDING_TABLES = ("secrets", "bandit", "semgrep", "checkov", "sca", "posture", "sarif")
SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")
RAW = [["bitbucket", t] for t in raw_tables.TABLES]
ADVISORIES = [["advisories", "osv"]]  # SCA reads the index; its digest is part of the sca scanner_version


def _columns(schema) -> list[tuple[str, str, str]]:
    return [(f.name, str(f.type), "") for f in schema]


def _spec(name: str, schema, description: str, kinds: set[str]) -> dg.AssetSpec:
    return dg.AssetSpec(["scanning", name], group_name="scanning", deps=RAW + ADVISORIES, owners=["team:appsec"],
                        kinds=kinds, description=description,
                        metadata={"dagster/column_schema": column_schema(_columns(schema))})


def _specs() -> list[dg.AssetSpec]:
    # Built in a function: module-level AssetSpecs would be collected as definitions of their own.
    return [
        *[_spec(f"{name}_findings", FINDING_SCHEMA,
                f"Findings of the {name} scanner in the one finding schema (stable finding_id "
                "fingerprints; evidence redacted, never a raw secret).",
                kinds={"parquet", "git"} if name not in ("posture", "sarif") else {"parquet"})
          for name in FINDING_TABLES],
        _spec("scan_runs", SCAN_RUN_SCHEMA, "Per repository and scanner: status (ok | error | not_evaluable), "
              "cached or not, duration, files and bytes scanned, findings, error.",
              kinds={"parquet"}),
        _spec("components", COMPONENT_SCHEMA,
              "Component inventory (SBOM) parsed from manifests and lock files.",
              kinds={"parquet", "git"}),
        _spec("repository_files", REPOSITORY_FILES_SCHEMA,
              "Top-level file listing at each main head (posture check BB-019).",
              kinds={"parquet", "git"}),
        _spec("posture_results", posture.RESULT_SCHEMA,
              "Bitbucket posture checks BB-001…BB-033 per repository: pass, fail or "
              "not_evaluable, with evidence.", kinds={"parquet", "duckdb"}),
    ]


class ScanConfig(dg.Config):
    repositories: list[str] = Field(default_factory=list)
    """Scan only repositories matching these `workspace/repo_slug` globs (on-demand scans); the others
    keep their rows from the last scan. Empty: every selected repository."""


def _previous(name: str, kept: set[str], scanners: list[str]) -> ScanStageReport:
    """The last partition's code-scanner rows of the `kept` repositories. Variable findings, posture and
    SARIF are recomputed every run, so they are not carried."""
    def previous(zone: str, table: str) -> list[dict]:
        return [r for r in lake.read_partition(zone, table, name) if r.get("repository_uuid") in kept]

    return ScanStageReport(
        findings={s: [r for r in previous("findings", s) if r["rule_id"] != VARIABLE_RULE] for s in scanners},
        scan_runs=previous("findings", "scan_runs"), extra={"components": previous("inventory", "components")},
        repository_files=previous("inventory", "repository_files"))


def _keep_previous(report, name: str, kept: set[str]) -> None:
    """Carry forward the rows of the repositories this run did not scan: the partition holds the whole
    connection."""
    last = _previous(name, kept, list(report.findings))
    for scanner in report.findings:
        report.findings[scanner] += last.findings[scanner]
    report.scan_runs += last.scan_runs
    report.extra.setdefault("components", []).extend(last.extra["components"])
    report.repository_files += last.repository_files


def _scan_in_shards(name: str, chosen: list[dict], git, clock, configured: int | None, log):
    """Split the connection's repositories into shards, scan them side by side (a process pool sized to
    the cores), and merge; a failed shard marks its repositories and keeps their last findings."""
    scanners = default_scanners()
    shards = split(chosen, shard_count(len(chosen), configured))
    previous_files = lake.read_partition("inventory", "repository_files", name)
    results = run_shards(shards, git, scanners=scanners, clock=clock, previous_files=previous_files,
                         progress=log.info if len(shards) == 1 else None)
    for failure in (r for r in results if isinstance(r, ShardFailure)):
        log.warning(redact_snippet(f"scan shard {failure.shard + 1} of {len(shards)} failed ({failure.error}); "
                                   f"its {len(shards[failure.shard])} repositories are marked as errors"))
    report = merge(results, shards, [s.name for s in scanners],
                   previous=lambda uuids: _previous(name, uuids, [s.name for s in scanners]), now=clock.now())
    return report, len(shards), sum(isinstance(r, ShardFailure) for r in results)


def _severity_counts(rows: list[dict]) -> dict:
    return {s: sum(1 for r in rows if r.get("base_severity") == s) for s in SEVERITY_ORDER}


@dg.multi_asset(specs=_specs(), partitions_def=connections_partitions, pool="scanners", can_subset=False,
                retry_policy=STEP_RETRY_POLICY)
def scan_findings(context: dg.AssetExecutionContext, config: ScanConfig, bitbucket: BitbucketResource):
    """Scan one connection's selected repositories with every scanner; evaluate posture checks.
    The `scanners` pool bounds scan steps across runs (each clones and runs tools in processes)."""
    name = context.partition_key
    with no_retry_for_permanent_errors(context):
        client = bitbucket.client(name)
        wanted = RepositoryFilter(config.repositories)
    raw = {t: lake.read_partition("raw", t, name) for t in raw_tables.TABLES}
    clock = SystemClock()
    chosen = [r for r in raw["repositories"] if wanted.matches(r["workspace"], r["repository"])]
    report, shards, failed_shards = _scan_in_shards(name, chosen, bitbucket.git(client), clock,
                                                    client.connection.scan_shards, context.log)
    if wanted:
        _keep_previous(report, name, {r["repository_uuid"] for r in raw["repositories"]}
                       - {r["repository_uuid"] for r in chosen})
    lookup = {(name, r["workspace"], r["repository"]): RepoRef(name, r["workspace"], r["repository_uuid"],
                                                              r["repository"], r["main_head"])
              for r in raw["repositories"] if r.get("selected")}
    report.findings["secrets"] += [f.row() for f in variable_findings(raw["pipeline_variables"], lookup,
                                                                      scanned_at=clock.now())]
    result = posture.evaluate({**raw, "repository_files": report.repository_files}, connection=name,
                              now=clock.now())
    report.findings["posture"] = [f.row() for f in result.findings]
    imported = sarif.import_directory(data_home() / "imports", lookup)
    report.findings["sarif"] = [f.row() for f in imported.findings]
    for path, error in imported.errors.items():
        if f"/{name}/" in f"/{path}":
            context.log.warning(f"SARIF import {path}: {error}")
    for scanner in FINDING_TABLES:
        lake.write_partition("findings", scanner, name, report.findings.get(scanner, []), FINDING_SCHEMA)
    lake.write_partition("findings", "scan_runs", name, report.scan_runs, SCAN_RUN_SCHEMA)
    lake.write_partition("findings", "posture_results", name, result.results, posture.RESULT_SCHEMA)
    lake.write_partition("inventory", "components", name, report.extra.get("components", []), COMPONENT_SCHEMA)
    lake.write_partition("inventory", "repository_files", name, report.repository_files, REPOSITORY_FILES_SCHEMA)
    errors = [r for r in report.scan_runs if r["status"] == "error"]
    described = [redact_snippet(f"{run['scanner']} on {run['workspace']}/{run['repository']}: {run['error']}")
                 for run in errors]
    for line in described[:20]:
        context.log.warning(line)
    not_evaluated = not_evaluated_line(report.scan_runs)
    if not_evaluated:
        context.log.warning(not_evaluated)
    if errors:  # some repositories or scanners have no fresh result: the connection is degraded
        context.instance.add_run_tags(context.run_id, {STATUS_TAG: "degraded"})
    for scanner in FINDING_TABLES:
        rows = report.findings.get(scanner, [])
        yield dg.MaterializeResult(asset_key=["scanning", f"{scanner}_findings"], metadata={
            **table_metadata(rows, _columns(FINDING_SCHEMA), preview_columns=8),
            "severity": dg.MetadataValue.json(_severity_counts(rows))})
    yield dg.MaterializeResult(asset_key=["scanning", "scan_runs"], metadata={
        **table_metadata(report.scan_runs, _columns(SCAN_RUN_SCHEMA)),
        "repositories_cloned": report.cloned, "repositories_from_cache": report.cached_repositories,
        "errors": len(errors), "seconds": round(report.seconds, 2), "shards": shards,
        "failed_shards": failed_shards,
        "not_evaluable": sum(1 for r in report.scan_runs if r["status"] == "not_evaluable"),
        "not_evaluated": dg.MetadataValue.json(ecosystems_not_evaluated(report.scan_runs)),
        "errors_by_scanner": dg.MetadataValue.json(dict(Counter(r["scanner"] for r in errors))),
        "first_errors": dg.MetadataValue.json(described[:FIRST_ERRORS])})
    yield dg.MaterializeResult(asset_key=["scanning", "components"], metadata=table_metadata(
        report.extra.get("components", []), _columns(COMPONENT_SCHEMA)))
    yield dg.MaterializeResult(asset_key=["scanning", "repository_files"], metadata=table_metadata(
        report.repository_files, _columns(REPOSITORY_FILES_SCHEMA)))
    statuses = {s: sum(1 for r in result.results if r["status"] == s) for s in posture.STATUSES}
    yield dg.MaterializeResult(asset_key=["scanning", "posture_results"], metadata={
        **table_metadata(result.results, _columns(posture.RESULT_SCHEMA)),
        "status": dg.MetadataValue.json(statuses)})
