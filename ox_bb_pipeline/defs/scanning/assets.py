"""Findings per scanner, scan runs, the component inventory and posture results, one Parquet
partition per connection, from one scan pass (snapshots are shared by every scanner)."""

from collections import Counter

import dagster as dg
from pydantic import Field

from ... import lake
from ...bitbucket import tables as raw_tables
from ...bitbucket.extract import RepositoryFilter
from ...clock import SystemClock
from ...redaction import redact_snippet
from ...findings import FINDING_SCHEMA, RepoRef
from ...scanners import posture, registry, sarif
from ...scanners.sca import COMPONENT_SCHEMA, ecosystems_not_evaluated, not_evaluated_line
from ...scanners.secrets import VARIABLE_RULE, variable_findings
from ...scanners.stage import (
    REPOSITORY_FILES_SCHEMA,
    SCAN_RUN_SCHEMA,
    default_scanners,
    scan_repositories,
)
from ..retries import STEP_RETRY_POLICY, no_retry_for_permanent_errors
from ..bitbucket.partitions import connections_partitions
from ..bitbucket.resources import BitbucketResource
from ..metadata import FIRST_ERRORS, STATUS_TAG, column_schema, table_metadata
from ..storage.resources import StorageResource

# The finding tables when the definitions were loaded (scanners/registry.py decides; the asset reads it then).
FINDING_TABLES = registry.finding_tables()
SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")
RAW = [["bitbucket", t] for t in raw_tables.TABLES]
ADVISORIES = [["advisories", "osv"]]  # SCA reads the index; its digest is part of the sca scanner_version


def _columns(schema) -> list[tuple[str, str, str]]:
    return [(f.name, str(f.type), "") for f in schema]


def _spec(name: str, schema, description: str, kinds: set[str]) -> dg.AssetSpec:
    return dg.AssetSpec(["scanning", name], group_name="scanning", deps=RAW + ADVISORIES, owners=["team:appsec"],
                        kinds=kinds, description=description,
                        metadata={"dagster/column_schema": column_schema(_columns(schema))})


def _specs(scanners: list[registry.Scanner]) -> list[dg.AssetSpec]:
    # Built in a function: module-level AssetSpecs would be collected as definitions of their own.
    return [
        *[_spec(s.asset_name, FINDING_SCHEMA,
                f"Findings of the {s.name} scanner in the one finding schema (stable finding_id "
                f"fingerprints; evidence redacted, never a raw secret). {s.description}".strip(),
                kinds=s.asset_kinds)
          for s in scanners],
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


def _keep_previous(report, name: str, kept: set[str], home) -> None:
    """Carry forward the code-scanner rows of the repositories this run did not scan: the lake
    partition holds the whole connection. Variable findings, posture and SARIF are recomputed."""
    def previous(zone: str, table: str) -> list[dict]:
        return [r for r in lake.read_partition(zone, table, name, home) if r.get("repository_uuid") in kept]

    for scanner in report.findings:
        report.findings[scanner] += [r for r in previous("findings", scanner) if r["rule_id"] != VARIABLE_RULE]
    report.scan_runs += previous(lake.SCANS_ZONE, "scan_runs")
    report.extra.setdefault("components", []).extend(previous("inventory", "components"))
    report.repository_files += previous("inventory", "repository_files")


def _severity_counts(rows: list[dict]) -> dict:
    return {s: sum(1 for r in rows if r.get("base_severity") == s) for s in SEVERITY_ORDER}


def scan_findings_asset() -> dg.AssetsDefinition:
    """The scan asset for the scanners registered now (one finding table and asset each)."""
    scanners = registry.scanners()
    tables = tuple(s.lake_table for s in scanners)

    @dg.multi_asset(specs=_specs(scanners), name="scan_findings", partitions_def=connections_partitions,
                    pool="scanners", can_subset=False, retry_policy=STEP_RETRY_POLICY)
    def scan_findings(context: dg.AssetExecutionContext, config: ScanConfig, bitbucket: BitbucketResource,
                      storage: StorageResource):
        """Scan one connection's selected repositories with every scanner; evaluate posture checks.
        The `scanners` pool bounds scan steps across runs (each clones and runs tools in processes)."""
        yield from _scan_findings(context, config, bitbucket, storage, tables)

    return scan_findings


def _scan_findings(context: dg.AssetExecutionContext, config: ScanConfig, bitbucket: BitbucketResource,
                   storage: StorageResource, tables: tuple[str, ...]):
    name, home = context.partition_key, storage.home_path()
    lake.migrate_layout(home)  # before _keep_previous reads scan_runs where they now live
    with no_retry_for_permanent_errors(context):
        client = bitbucket.client(name)
        wanted = RepositoryFilter(config.repositories)
    raw = {t: lake.read_partition("raw", t, name, home) for t in raw_tables.TABLES}
    clock = SystemClock()
    chosen = [r for r in raw["repositories"] if wanted.matches(r["workspace"], r["repository"])]
    previous_files = lake.read_partition("inventory", "repository_files", name, home)
    report = scan_repositories(chosen, bitbucket.git(client), scanners=default_scanners(), home=home,
                               clock=clock, previous_files=previous_files, progress=context.log.info)
    if wanted:
        _keep_previous(report, name, {r["repository_uuid"] for r in raw["repositories"]}
                       - {r["repository_uuid"] for r in chosen}, home)
    lookup = {(name, r["workspace"], r["repository"]): RepoRef(name, r["workspace"], r["repository_uuid"],
                                                              r["repository"], r["main_head"])
              for r in raw["repositories"] if r.get("selected")}
    report.findings["secrets"] += [f.row() for f in variable_findings(raw["pipeline_variables"], lookup,
                                                                      scanned_at=clock.now())]
    result = posture.evaluate({**raw, "repository_files": report.repository_files}, connection=name,
                              now=clock.now())
    report.findings["posture"] = [f.row() for f in result.findings]
    imported = sarif.import_directory(home / "imports", lookup)
    report.findings["sarif"] = [f.row() for f in imported.findings]
    for path, error in imported.errors.items():
        if f"/{name}/" in f"/{path}":
            context.log.warning(f"SARIF import {path}: {error}")
    for scanner in tables:
        lake.write_partition("findings", scanner, name, report.findings.get(scanner, []), FINDING_SCHEMA, home)
    lake.write_partition(lake.SCANS_ZONE, "scan_runs", name, report.scan_runs, SCAN_RUN_SCHEMA, home)
    lake.write_partition(lake.SCANS_ZONE, "posture_results", name, result.results, posture.RESULT_SCHEMA, home)
    lake.write_partition("inventory", "components", name, report.extra.get("components", []), COMPONENT_SCHEMA,
                         home)
    lake.write_partition("inventory", "repository_files", name, report.repository_files, REPOSITORY_FILES_SCHEMA,
                         home)
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
    for scanner in tables:
        rows = report.findings.get(scanner, [])
        yield dg.MaterializeResult(asset_key=["scanning", f"{scanner}_findings"], metadata={
            **table_metadata(rows, _columns(FINDING_SCHEMA), preview_columns=8),
            "severity": dg.MetadataValue.json(_severity_counts(rows))})
    yield dg.MaterializeResult(asset_key=["scanning", "scan_runs"], metadata={
        **table_metadata(report.scan_runs, _columns(SCAN_RUN_SCHEMA)),
        "repositories_cloned": report.cloned, "repositories_from_cache": report.cached_repositories,
        "errors": len(errors), "seconds": round(report.seconds, 2),
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


scan_findings = scan_findings_asset()
