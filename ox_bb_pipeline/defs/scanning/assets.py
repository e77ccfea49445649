"""Findings per scanner, scan runs, the component inventory and posture results, one Parquet
partition per connection, from one scan pass (snapshots are shared by every scanner)."""

import contextlib
import inspect
import pickle
import shutil
import time
from collections import Counter
from pathlib import Path

import dagster as dg
from pydantic import Field

from ... import lake
from ...bitbucket import tables as raw_tables
from ...bitbucket.extract import RepositoryFilter
from ...bitbucket.live import LiveChecker
from ...clock import SystemClock
from ...files import atomic_write_bytes
from ...findings import FINDING_SCHEMA, RepoRef
from ...redaction import redact_snippet
from ...scanners import history, posture, registry, sarif
from ...scanners.sca import COMPONENT_SCHEMA, ecosystems_not_evaluated, not_evaluated_line
from ...scanners.secrets import VARIABLE_RULE, filtered_summary, variable_findings
from ...scanners.shards import ShardFailure, merge, run_shards, shard_count, split
from ...scanners.stage import (
    REPOSITORY_FILES_SCHEMA,
    SCAN_RUN_SCHEMA,
    ScanStageReport,
    default_scanners,
)
from ..bitbucket.partitions import connections_partitions
from ..bitbucket.resources import BitbucketResource
from ..metadata import FIRST_ERRORS, STATUS_TAG, column_schema, table_metadata
from ..retries import STEP_RETRY_POLICY, no_retry_for_permanent_errors
from ..storage.resources import StorageResource, step_io_path

# The finding tables when the definitions were loaded (scanners/registry.py decides; the asset reads it then).
FINDING_TABLES = registry.finding_tables()
SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")
RAW = [["bitbucket", t] for t in raw_tables.TABLES]
ADVISORIES = [["advisories", "osv"]]  # SCA reads the index; its digest is part of the sca scanner_version


def _columns(schema) -> list[tuple[str, str, str]]:
    return [(f.name, str(f.type), "") for f in schema]


def _spec(name: str, schema, description: str, kinds: set[str]) -> dg.AssetSpec:
    return dg.AssetSpec(
        ["scanning", name],
        group_name="scanning",
        deps=RAW + ADVISORIES,
        owners=["team:appsec"],
        kinds=kinds,
        description=description,
        metadata={"dagster/column_schema": column_schema(_columns(schema))},
    )


def _specs(scanners: list[registry.Scanner]) -> list[dg.AssetSpec]:
    # Built in a function: module-level AssetSpecs would be collected as definitions of their own.
    return [
        *[
            _spec(
                s.asset_name,
                FINDING_SCHEMA,
                f"Findings of the {s.name} scanner in the one finding schema (stable finding_id "
                f"fingerprints; evidence redacted, never a raw secret). {s.description}".strip(),
                kinds=s.asset_kinds,
            )
            for s in scanners
        ],
        _spec(
            "scan_runs",
            SCAN_RUN_SCHEMA,
            "Per repository and scanner: status (ok | error | not_evaluable), "
            "cached or not, duration, files and bytes scanned, findings, error.",
            kinds={"parquet"},
        ),
        _spec(
            "components",
            COMPONENT_SCHEMA,
            "Component inventory (SBOM) parsed from manifests and lock files.",
            kinds={"parquet", "git"},
        ),
        _spec(
            "repository_files",
            REPOSITORY_FILES_SCHEMA,
            "Top-level file listing at each main head (posture check BB-019).",
            kinds={"parquet", "git"},
        ),
        _spec(
            "posture_results",
            posture.RESULT_SCHEMA,
            "Bitbucket posture checks BB-001…BB-033 per repository: pass, fail or not_evaluable, with evidence.",
            kinds={"parquet", "duckdb"},
        ),
    ]


class ScanConfig(dg.Config):
    repositories: list[str] = Field(default_factory=list)
    """Scan only repositories matching these `workspace/repo_slug` globs (on-demand scans); the others
    keep their rows from the last scan. Empty: every selected repository."""
    local_pool: bool = False
    """Scan every shard in one step with a process pool sized to the cores (`ox-bb run`), instead of
    one step per shard (Celery workers, the multiprocess executor)."""


def _previous(name: str, kept: set[str], scanners: list[str], home: Path) -> ScanStageReport:
    """The last partition's code-scanner rows of the `kept` repositories. Variable findings, posture and
    SARIF are recomputed every run, so they are not carried."""

    def previous(zone: str, table: str) -> list[dict]:
        return [r for r in lake.read_partition(zone, table, name, home) if r.get("repository_uuid") in kept]

    return ScanStageReport(
        findings={s: [r for r in previous("findings", s) if r["rule_id"] != VARIABLE_RULE] for s in scanners},
        scan_runs=previous(lake.SCANS_ZONE, "scan_runs"),
        extra={"components": previous("inventory", "components")},
        repository_files=previous("inventory", "repository_files"),
    )


def _keep_previous(report, name: str, kept: set[str], home: Path) -> None:
    """Carry forward the rows of the repositories this run did not scan: the partition holds the whole
    connection."""
    last = _previous(name, kept, list(report.findings), home)
    for scanner in report.findings:
        report.findings[scanner] += last.findings[scanner]
    report.scan_runs += last.scan_runs
    report.extra.setdefault("components", []).extend(last.extra["components"])
    report.repository_files += last.repository_files


# -- steps: plan the shards, scan each shard (its own step: Celery workers share one connection), merge --
STALE_STAGING_SECONDS = 2 * 24 * 3600  # far longer than any scan: a run this old was killed


def _staging(home: Path, name: str, run_id: str) -> Path:
    """Where a run's shard plan and shard results wait for the merge: under the data home, which every
    worker mounts (like the lake), never one worker's own disk."""
    return home / "staging" / "scan" / name / run_id


def _shard_file(staging: Path, index: int) -> Path:
    return staging / f"shard-{index}.pickle"


def _load(path: Path):
    with open(path, "rb") as handle:
        return pickle.load(handle)  # our own staging files, written by this run's steps


def _in_name(key: list[str]) -> str:
    return "_".join(key)


@dg.op(
    ins={_in_name(k): dg.In(dg.Nothing) for k in RAW + ADVISORIES},
    out=dg.DynamicOut(list),
    retry_policy=STEP_RETRY_POLICY,
)
def plan_scan_shards(
    context: dg.OpExecutionContext, config: ScanConfig, bitbucket: BitbucketResource, storage: StorageResource
):
    """Split the connection's chosen repositories into shards (stable: a hash of the repository UUID) and
    hand out one step per shard, or every shard to one step with a local process pool (`local_pool`)."""
    name, home = context.partition_key, storage.home_path()
    lake.migrate_layout(home)  # before the merge reads scan_runs where they now live
    with no_retry_for_permanent_errors(context):
        configured = bitbucket.client(name).connection.scan_shards
    wanted = RepositoryFilter(config.repositories)
    repositories = lake.read_partition("raw", "repositories", name, home)
    chosen = [r for r in repositories if wanted.matches(r["workspace"], r["repository"])]
    shards = split(chosen, shard_count(len(chosen), configured))
    kept = (
        sorted({r["repository_uuid"] for r in repositories} - {r["repository_uuid"] for r in chosen}) if wanted else []
    )
    staging = _staging(home, name, context.run_id)
    shutil.rmtree(staging, ignore_errors=True)  # a retried plan starts clean
    for stale in staging.parent.glob("*") if staging.parent.is_dir() else ():  # runs killed before their merge
        with contextlib.suppress(OSError):  # another run may be removing it right now
            if time.time() - stale.stat().st_mtime > STALE_STAGING_SECONDS:
                shutil.rmtree(stale, ignore_errors=True)
    atomic_write_bytes(staging / "plan.pickle", pickle.dumps({"shards": shards, "kept": kept}))
    context.log.info(
        f"{len(chosen)} repositories in {len(shards)} shards"
        + (" (one step, a local process pool)" if config.local_pool else " (one step each)")
    )
    groups = [list(range(len(shards)))] if config.local_pool else [[i] for i in range(len(shards))]
    for group in groups:
        yield dg.DynamicOutput(group, mapping_key=f"shard_{group[0]}" if len(group) == 1 else "all_shards")


@dg.op(pool="scanners", retry_policy=STEP_RETRY_POLICY)
def scan_shard(
    context: dg.OpExecutionContext, indices: list, bitbucket: BitbucketResource, storage: StorageResource
) -> list:
    """Scan one shard's repositories with every scanner (several shards: a process pool sized to the
    cores). A shard that fails is recorded as failed, never fails the step: the merge marks its
    repositories. The `scanners` pool bounds these steps across runs."""
    name, home = context.partition_key, storage.home_path()
    staging = _staging(home, name, context.run_id)
    shards = _load(staging / "plan.pickle")["shards"]
    with no_retry_for_permanent_errors(context):
        client = bitbucket.client(name)
    results = run_shards(
        [shards[i] for i in indices],
        bitbucket.git(client),
        scanners=default_scanners(storage.tools_path()),
        home=home,
        clock=SystemClock(),
        previous_files=lake.read_partition("inventory", "repository_files", name, home),
        progress=context.log.info if len(indices) == 1 else None,
    )
    for index, result in zip(indices, results):
        if isinstance(result, ShardFailure):
            result = ShardFailure(index, result.error)
            context.log.warning(
                redact_snippet(
                    f"scan shard {index + 1} of {len(shards)} failed ({result.error}); "
                    f"its {len(shards[index])} repositories are marked as errors"
                )
            )
        atomic_write_bytes(_shard_file(staging, index), pickle.dumps(result))
    return indices


def _severity_counts(rows: list[dict]) -> dict:
    return {s: sum(1 for r in rows if r.get("base_severity") == s) for s in SEVERITY_ORDER}


def _merge_scan_shards(
    context: dg.OpExecutionContext,
    done: list,
    storage: StorageResource,
    tables: tuple[str, ...],
    bitbucket: BitbucketResource | None = None,
):
    """Merge every shard's rows into the connection's partitions (each table replaced at once); add
    the rows computed per connection (pipeline variables, history when enabled, posture, imported SARIF)."""
    name, home = context.partition_key, storage.home_path()
    staging = _staging(home, name, context.run_id)
    plan = _load(staging / "plan.pickle")
    shards = plan["shards"]
    names = [s.name for s in default_scanners()]
    results = [
        _load(_shard_file(staging, i)) if _shard_file(staging, i).exists() else ShardFailure(i, "no result was written")
        for i in range(len(shards))
    ]
    clock = SystemClock()
    report = merge(results, shards, names, previous=lambda uuids: _previous(name, uuids, names, home), now=clock.now())
    if plan["kept"]:
        _keep_previous(report, name, set(plan["kept"]), home)
    failed_shards = sum(isinstance(r, ShardFailure) for r in results)
    raw = {t: lake.read_partition("raw", t, name, home) for t in raw_tables.TABLES}
    lookup = {
        (name, r["workspace"], r["repository"]): RepoRef(
            name, r["workspace"], r["repository_uuid"], r["repository"], r["main_head"]
        )
        for r in raw["repositories"]
        if r.get("selected")
    }
    report.findings["secrets"] += [
        f.row() for f in variable_findings(raw["pipeline_variables"], lookup, scanned_at=clock.now())
    ]
    history_metadata = _history(context, bitbucket, report, [r for shard in shards for r in shard], home)
    result = posture.evaluate({**raw, "repository_files": report.repository_files}, connection=name, now=clock.now())
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
    lake.write_partition("inventory", "components", name, report.extra.get("components", []), COMPONENT_SCHEMA, home)
    lake.write_partition("inventory", "repository_files", name, report.repository_files, REPOSITORY_FILES_SCHEMA, home)
    errors = [r for r in report.scan_runs if r["status"] == "error"]
    described = [
        redact_snippet(f"{run['scanner']} on {run['workspace']}/{run['repository']}: {run['error']}") for run in errors
    ]
    for line in described[:20]:
        context.log.warning(line)
    not_evaluated = not_evaluated_line(report.scan_runs)
    if not_evaluated:
        context.log.warning(not_evaluated)
    if errors:  # some repositories or scanners have no fresh result: the connection is degraded
        context.instance.add_run_tags(context.run_id, {STATUS_TAG: "degraded"})
    for scanner in tables:
        rows = report.findings.get(scanner, [])
        yield dg.Output(
            None,
            f"{scanner}_findings",
            metadata={
                **table_metadata(rows, _columns(FINDING_SCHEMA), preview_columns=8),
                "severity": dg.MetadataValue.json(_severity_counts(rows)),
                # candidates each precision filter removed (issue 11): what the secrets scanner chose not to report
                **(
                    {"filtered": dg.MetadataValue.json(filtered_summary(report.extra.get("secrets_filtered", [])))}
                    if scanner == "secrets"
                    else {}
                ),
                **(history_metadata if scanner == history.SCANNER else {}),
            },
        )
    yield dg.Output(
        None,
        "scan_runs",
        metadata={
            **table_metadata(report.scan_runs, _columns(SCAN_RUN_SCHEMA)),
            "repositories_cloned": report.cloned,
            "repositories_from_cache": report.cached_repositories,
            "errors": len(errors),
            "seconds": round(report.seconds, 2),
            "shards": len(shards),
            "failed_shards": failed_shards,
            "not_evaluable": sum(1 for r in report.scan_runs if r["status"] == "not_evaluable"),
            "not_evaluated": dg.MetadataValue.json(ecosystems_not_evaluated(report.scan_runs)),
            "errors_by_scanner": dg.MetadataValue.json(dict(Counter(r["scanner"] for r in errors))),
            "first_errors": dg.MetadataValue.json(described[:FIRST_ERRORS]),
        },
    )
    yield dg.Output(
        None, "components", metadata=table_metadata(report.extra.get("components", []), _columns(COMPONENT_SCHEMA))
    )
    yield dg.Output(
        None, "repository_files", metadata=table_metadata(report.repository_files, _columns(REPOSITORY_FILES_SCHEMA))
    )
    statuses = {s: sum(1 for r in result.results if r["status"] == s) for s in posture.STATUSES}
    yield dg.Output(
        None,
        "posture_results",
        metadata={
            **table_metadata(result.results, _columns(posture.RESULT_SCHEMA)),
            "status": dg.MetadataValue.json(statuses),
        },
    )
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(step_io_path(home) / context.run_id, ignore_errors=True)  # the shard numbers' step outputs
    with contextlib.suppress(OSError):  # the connection's staging directory, when no other run uses it
        staging.parent.rmdir()


def _history(context, bitbucket: BitbucketResource | None, report, chosen: list[dict], home: Path) -> dict:
    """Secrets only in git history, when the connection enables it (history_scan.enabled): its findings, a
    scan_runs row per repository, live checks when opted in, and the Dagster metadata of the history asset."""
    name = context.partition_key
    if bitbucket is None or history.SCANNER not in registry.names():
        return {}
    with no_retry_for_permanent_errors(context):
        client = bitbucket.client(name)
    settings = client.connection.history_scan
    if not settings.enabled:
        return {"history_scan": "off (history_scan.enabled in the connection)"}
    checker = LiveChecker.for_connection(client.connection) if client.connection.live_checks else None
    clock = SystemClock()
    results = history.scan_connection(
        chosen,
        bitbucket.git(client),
        report.findings.get("secrets", []),
        home,
        limits=history.HistoryLimits(settings.max_commits, settings.max_bytes, tuple(settings.branches)),
        checker=checker,
        clock=clock,
        progress=context.log.info,
    )
    report.findings[history.SCANNER] = [f.row() for r in results for f in r.findings]
    version = history.scanner_version()
    for r in results:
        report.scan_runs.append(
            {
                "connection": name,
                "workspace": r.repo.workspace,
                "repository_uuid": r.repo.repository_uuid,
                "repository": r.repo.repository,
                "commit": r.repo.commit,
                "scanner": history.SCANNER,
                "scanner_version": version,
                "status": "error" if r.error else "ok",
                "cached": False,
                "duration_seconds": None,
                "files_scanned": r.commits_scanned,  # commits read, for the history scanner
                "bytes_scanned": r.bytes_read,
                "findings": len(r.findings),
                "error": r.error,
                "scanned_at": clock.now(),
            }
        )
    return {
        "commits_scanned": sum(r.commits_scanned for r in results),
        "commits_pending": sum(r.commits_pending for r in results),
        "commits_total": sum(r.commits_total for r in results),
        "megabytes_read": round(sum(r.bytes_read for r in results) / 1e6, 2),
        "live_checks": sum(r.live_checks for r in results) if checker is not None else "off (live_checks)",
        "repositories_failed": sum(1 for r in results if r.error),
    }


def _asset_outs(specs: list[dg.AssetSpec]) -> dict[str, dg.AssetOut]:
    return {
        spec.key.path[-1]: dg.AssetOut(
            key=spec.key,
            dagster_type=dg.Nothing,
            description=spec.description,
            owners=list(spec.owners),
            kinds=set(spec.kinds),
            metadata=dict(spec.metadata),
        )
        for spec in specs
    }


def _scan_config(config: dict) -> dict:
    """The asset's config (ScanConfig, as before the scan had steps) goes to the op that plans the shards."""
    return {"plan_scan_shards": {"config": config}}


def scan_findings_asset() -> dg.AssetsDefinition:
    """The scan asset for the scanners registered now (one finding table and asset each): plan the shards,
    one `scan_shard` step per shard, merge into the partition."""
    specs = _specs(registry.scanners())
    tables = tuple(s.lake_table for s in registry.scanners())

    @dg.op(name="merge_scan_shards", out={spec.key.path[-1]: dg.Out(dg.Nothing) for spec in specs})
    def merge_scan_shards(
        context: dg.OpExecutionContext, done: list, storage: StorageResource, bitbucket: BitbucketResource
    ):
        """Merge every shard's rows into the connection's partitions (each table replaced at once); add
        the rows computed per connection (pipeline variables, history when enabled, posture, imported SARIF)."""
        yield from _merge_scan_shards(context, done, storage, tables, bitbucket)

    def compose(**raw):
        plan = plan_scan_shards(**raw)
        return merge_scan_shards(plan.map(scan_shard).collect())._asdict()

    compose.__signature__ = inspect.Signature(  # one input per upstream asset (raw tables, advisories)
        [inspect.Parameter(_in_name(k), inspect.Parameter.KEYWORD_ONLY) for k in RAW + ADVISORIES]
    )
    compose.__name__ = "scan_findings"
    asset = dg.graph_multi_asset(
        name="scan_findings",
        outs=_asset_outs(specs),
        partitions_def=connections_partitions,
        can_subset=False,
        group_name="scanning",
        ins={_in_name(k): dg.AssetIn(key=k, dagster_type=dg.Nothing) for k in RAW + ADVISORIES},
        config=dg.ConfigMapping(config_fn=_scan_config, config_schema=ScanConfig.to_config_schema()),
    )(compose)
    return asset


scan_findings = scan_findings_asset()
