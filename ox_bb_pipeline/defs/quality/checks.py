"""Blocking asset checks that run the expectation suites of `ox_bb_pipeline.quality` (Great
Expectations 1.x; dagster-ge only supports 0.x). One check step per stage validates every table of
that stage, so a failing table stops that run's downstream assets: scanning after a bad raw
partition, the warehouse after bad findings, exports and reports after a bad mart.

The row-count baseline is the `dagster/row_count` of the table's latest materialization (of the same
partition) by an *earlier, successful* run: the current run's own materialization is what is being
checked, and a run whose blocking check failed is not a good baseline, or a collapse would be
accepted silently by the next run.
"""

import warnings

import dagster as dg

from ...quality.expectations import (
    DEFAULT_MAX_ROW_COUNT_DROP,
    FINDING_SUITES,
    RAW_SUITES,
    WAREHOUSE_SUITES,
    Suite,
    ValidationResult,
    finding_suites,
    validate,
)
from ...quality.frames import MissingTableError, lake_frame, open_warehouse, warehouse_frame
from ..bitbucket.partitions import connections_partitions
from ..storage.resources import StorageResource

CHECK_NAME = "expectations"
BASELINE_LOOKBACK = 20  # materializations searched for the latest one from a successful run


class QualityConfig(dg.Config):
    max_row_count_drop: float = DEFAULT_MAX_ROW_COUNT_DROP
    """Largest share of rows a guarded table may lose since the last good run (1.0: never empty)."""
    compare_row_counts: bool = True
    """Set false for one run to accept a legitimate collapse; the run becomes the next baseline."""


def asset_key(spec: Suite) -> dg.AssetKey:
    """The asset a suite guards: bitbucket/<table>, scanning/<scanner>_findings or
    warehouse/<model>."""
    if spec.zone == "raw":
        return dg.AssetKey(["bitbucket", spec.table])
    if spec.zone == "findings":
        return dg.AssetKey(["scanning", f"{spec.table}_findings"])
    return dg.AssetKey(["warehouse", spec.table])


def _specs(suites: list[Suite], partitions_def: dg.PartitionsDefinition | None = None) -> list[dg.AssetCheckSpec]:
    # Built in a function (module-level specs would be collected on their own). Partitioned checks
    # are Preview in Dagster 1.13; they record each evaluation against its connection partition.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(
                CHECK_NAME,
                asset=asset_key(s),
                blocking=True,
                partitions_def=partitions_def,
                description=f"Great Expectations suite {s.name} (ox_bb_pipeline/quality)",
            )
            for s in suites
        ]


@dg.multi_asset_check(specs=_specs(RAW_SUITES, connections_partitions), name="bitbucket_raw_expectations")
def bitbucket_raw_expectations(context: dg.AssetCheckExecutionContext, config: QualityConfig, storage: StorageResource):
    """Keys present and unique, enumerations valid, row counts within bounds: one connection's
    raw tables."""
    for spec in RAW_SUITES:
        yield _check(context, config, spec, lake_frame(spec, context.partition_key, storage.home_path()))


def scanning_findings_expectations_check(suites: list[Suite] | None = None) -> dg.AssetChecksDefinition:
    """The findings check for the scanners registered now (one suite each, scanners/registry.py)."""
    suites = finding_suites() if suites is None else suites

    @dg.multi_asset_check(specs=_specs(suites, connections_partitions), name="scanning_findings_expectations")
    def scanning_findings_expectations(
        context: dg.AssetCheckExecutionContext, config: QualityConfig, storage: StorageResource
    ):
        """finding_id present and unique, severity and category allowed: one connection's findings,
        per scanner."""
        for spec in suites:
            yield _check(context, config, spec, lake_frame(spec, context.partition_key, storage.home_path()))

    return scanning_findings_expectations


scanning_findings_expectations = scanning_findings_expectations_check(FINDING_SUITES)


@dg.multi_asset_check(specs=_specs(WAREHOUSE_SUITES), name="warehouse_expectations")
def warehouse_expectations(context: dg.AssetCheckExecutionContext, config: QualityConfig, storage: StorageResource):
    """Mart keys unique, severities and statuses allowed, every finding mapped to an application,
    open queue rows with an SLA due date."""
    try:
        con = open_warehouse(storage.home_path())
    except MissingTableError as exc:
        for spec in WAREHOUSE_SUITES:
            yield _unavailable(spec, str(exc))
        return
    with con:
        for spec in WAREHOUSE_SUITES:
            try:
                frame = warehouse_frame(con, spec)
            except MissingTableError as exc:
                yield _unavailable(spec, str(exc))
                continue
            yield _check(context, config, spec, frame)


def _check(context: dg.AssetCheckExecutionContext, config: QualityConfig, spec: Suite, frame) -> dg.AssetCheckResult:
    key = asset_key(spec)
    previous = previous_row_count(context, key) if config.compare_row_counts and spec.guard_row_count else None
    result = validate(spec.name, frame, previous, config.max_row_count_drop)
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=CHECK_NAME,
        passed=result.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=result.summary(),
        metadata=result_metadata(result),
    )


def _unavailable(spec: Suite, reason: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset_key(spec),
        check_name=CHECK_NAME,
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=reason,
    )


def previous_row_count(context: dg.AssetCheckExecutionContext, key: dg.AssetKey) -> int | None:
    """Row count of the latest materialization (this partition) by an earlier run that succeeded."""
    partitions = [context.partition_key] if context.has_partition_key else None
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=partitions), limit=BASELINE_LOOKBACK
    ).records
    earlier = [r for r in records if r.run_id != context.run.run_id]
    if not earlier:
        return None
    succeeded = {
        run.run_id
        for run in context.instance.get_runs(
            filters=dg.RunsFilter(run_ids=list({r.run_id for r in earlier}), statuses=[dg.DagsterRunStatus.SUCCESS])
        )
    }
    for record in earlier:
        if record.run_id in succeeded:
            count = record.asset_materialization.metadata.get("dagster/row_count")
            return int(count.value) if count is not None else None
    return None


def result_metadata(result: ValidationResult) -> dict:
    metadata = {
        "success_percent": dg.MetadataValue.float(result.success_percent),
        "row_count": dg.MetadataValue.int(result.row_count),
        "failed_expectations": dg.MetadataValue.json([f.as_dict() for f in result.failed]),
    }
    if result.previous_row_count is not None:
        metadata["previous_row_count"] = dg.MetadataValue.int(result.previous_row_count)
    if result.failed:
        metadata["failures"] = dg.MetadataValue.md(_markdown(result))
    return metadata


def _markdown(result: ValidationResult) -> str:
    lines = ["| expectation | column | unexpected | examples |", "|---|---|---|---|"]
    for f in result.failed:
        examples = "<br>".join(f.examples) or f.detail
        cells = [
            f.expectation,
            f.column or "",
            "" if f.unexpected_count is None else str(f.unexpected_count),
            examples,
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)
