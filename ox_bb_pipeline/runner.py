"""Run the pipeline's Dagster assets in-process from a terminal (cron, CI, the demo): the same
assets as the UI, one connection partition at a time, so one failing account spoils nothing else."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from .config import load_connections
from .production import check_instance

STAGES = ("extract", "scan", "warehouse")
CONNECTION_STAGES = ("extract", "scan")  # one run per connection partition; the warehouse runs once


@dataclass
class StageResult:
    stage: str
    connection: str
    success: bool
    metadata: dict = field(default_factory=dict)
    error: str = ""


def instance() -> dg.DagsterInstance:
    """The DAGSTER_HOME instance when one is configured (runs show up in the UI), else ephemeral."""
    if os.environ.get("DAGSTER_HOME"):
        check_instance()  # a PostgreSQL that is down or refuses us says so before anything writes
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


def _stage_assets() -> dict[str, tuple]:
    """stage -> (multi-asset and its blocking checks, progress line built from its metadata)."""
    from .defs.bitbucket.assets import bitbucket_raw_tables
    from .defs.quality.checks import bitbucket_raw_expectations, scanning_findings_expectations
    from .defs.scanning.assets import scan_findings

    def extract_line(meta: dict) -> str:
        repos = meta.get("repositories", {})
        return (f"{repos.get('dagster/row_count', 0)} repositories, {repos.get('rest_requests', 0)} REST requests, "
                f"{repos.get('git_operations', 0)} git operations")

    def scan_line(meta: dict) -> str:
        runs = meta.get("scan_runs", {})
        findings = sum(v.get("dagster/row_count", 0) for k, v in meta.items() if k.endswith("_findings"))
        line = (f"{findings} findings, {runs.get('repositories_cloned', 0)} repositories cloned, "
                f"{runs.get('repositories_from_cache', 0)} from cache, {runs.get('errors', 0)} scanner errors")
        missing = runs.get("not_evaluated") or {}
        if missing:  # never a silent zero: say which ecosystems SCA could not judge, and the fix
            line += (f"; SCA not evaluated for {', '.join(missing)} (no advisory data: "
                     "run `ox-bb advisories sync`)")
        return line

    return {"extract": ([bitbucket_raw_tables, bitbucket_raw_expectations], extract_line),
            "scan": ([scan_findings, scanning_findings_expectations], scan_line)}


KEPT_METADATA = ("dagster/row_count", "rest_requests", "git_operations", "repositories_changed", "severity",
                 "repositories_cloned", "repositories_from_cache", "errors", "status", "not_evaluated")


def run_stages(stage: str, connections_file: Path, only: str | list[str] | None = None, *, full_refresh: bool = False,
               progress: Callable[[str], None] = print, dagster_instance: dg.DagsterInstance | None = None,
               log_level: str = "WARNING") -> list[StageResult]:
    """Run every stage up to and including `stage` for each connection (or only one). A failing
    stage stops the later stages of that connection only."""
    from .defs.bitbucket.partitions import connections_partitions
    from .defs.bitbucket.resources import BitbucketResource

    if stage not in (*STAGES, "all"):
        raise ValueError(f"unknown stage {stage!r}; use one of {', '.join(STAGES)} or all")
    config = load_connections(connections_file)
    names = config.names if only is None else [only] if isinstance(only, str) else list(only)
    unknown = [n for n in names if n not in config.names]
    if unknown:
        raise ValueError(f"no connection named {unknown[0]!r} in {connections_file}; it has: {', '.join(config.names)}")
    wanted = STAGES if stage == "all" else STAGES[: STAGES.index(stage) + 1]
    stages = [s for s in wanted if s in CONNECTION_STAGES]
    inst = dagster_instance or instance()
    existing = set(inst.get_dynamic_partitions(connections_partitions.name))
    missing = [n for n in names if n not in existing]
    if missing:
        inst.add_dynamic_partitions(connections_partitions.name, missing)
    resources = {"bitbucket": BitbucketResource(connections_file=str(connections_file))}
    assets = _stage_assets()
    results = []
    for name in names:
        for current in stages:
            definitions, describe = assets[current]
            progress(f"{current:<8} {name} …")
            ops = {"bitbucket_raw_tables": {"config": {"full_refresh": full_refresh}}} if current == "extract" else {}
            outcome = dg.materialize(
                definitions, partition_key=name, instance=inst, resources=resources, raise_on_error=False,
                run_config=dg.RunConfig(ops=ops, loggers={"console": {"config": {"log_level": log_level}}}),
                tags={"ox_bb/connection": name, "ox_bb/stage": current})
            result = _stage_result(current, name, outcome)
            if result.success:
                progress(f"{current:<8} {name} ok: {describe(result.metadata)}")
            else:
                progress(f"{current:<8} {name} FAILED: {result.error.splitlines()[0]}")
            results.append(result)
            if not result.success:
                break
    if "warehouse" in wanted:
        results.append(run_warehouse(inst, progress, log_level, connections_file=connections_file))
    return results


def run_warehouse(inst: dg.DagsterInstance, progress: Callable[[str], None] = print, log_level: str = "WARNING",
                  connections_file: Path | None = None) -> StageResult:
    """Build the warehouse over every connection's partitions, check the marts, then exports,
    reports and workflows (a failing mart check blocks them) — what the `build_warehouse` job runs."""
    from .defs.bitbucket.resources import BitbucketResource
    from .defs.quality.checks import warehouse_expectations
    from .defs.warehouse.assets import compliance_report, exports, warehouse_models
    from .defs.warehouse.workflows import workflows

    progress("warehouse …")
    bitbucket = BitbucketResource(connections_file=str(connections_file) if connections_file else "")
    outcome = dg.materialize([warehouse_models, warehouse_expectations, exports, compliance_report, workflows],
                             instance=inst, resources={"bitbucket": bitbucket}, raise_on_error=False,
                             run_config=dg.RunConfig(loggers={"console": {"config": {"log_level": log_level}}}),
                             tags={"ox_bb/stage": "warehouse"})
    result = _stage_result("warehouse", "*", outcome)
    if result.success:
        rows = {k: v.get("dagster/row_count", 0) for k, v in result.metadata.items()}
        progress(f"warehouse ok: {rows.get('findings', 0)} findings, {rows.get('findings_queue', 0)} in the queue, "
                 f"{rows.get('applications', 0)} applications")
    else:
        progress(f"warehouse FAILED: {result.error.splitlines()[0]}")
    return result


def _stage_result(stage: str, connection: str, outcome) -> StageResult:
    """What a stage's run did: the kept metadata per asset when it and its checks passed, else the
    failed checks or the root cause of the failed step."""
    failed_checks = _failed_checks(outcome)
    result = StageResult(stage, connection, outcome.success and not failed_checks)
    if not result.success:
        result.error = failed_checks or _failure_message(outcome)
        return result
    for event in outcome.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        result.metadata[mat.asset_key.path[-1]] = {k: v.value for k, v in mat.metadata.items() if k in KEPT_METADATA}
    return result


def root_cause_message(error) -> str:
    """The innermost message of a Dagster error chain: the step wrapper says nothing, its cause
    says what to fix."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def _failure_message(outcome) -> str:
    failure = next((e for e in outcome.all_events if e.is_step_failure), None)
    return root_cause_message(failure.step_failure_data.error) if failure else "run failed"


def _failed_checks(outcome) -> str:
    """One line per failed data-quality check: the table and what it expected (the Dagster UI and
    the check's metadata hold the examples)."""
    lines = []
    for evaluation in outcome.get_asset_check_evaluations():
        if evaluation.passed:
            continue
        failed = evaluation.metadata.get("failed_expectations")
        names = sorted({f"{f['expectation']}({f['column']})" if f.get("column") else f["expectation"]
                        for f in failed.value}) if failed else []
        lines.append(f"data-quality check failed on {evaluation.asset_key.to_user_string()}: "
                     f"{', '.join(names) or 'see the check in the Dagster UI'}")
    return "\n".join(lines)
