"""Warehouse stage: the dbt project in sql/ built into warehouse.duckdb, then exports and reports.

Every dbt model is its own asset `warehouse/<model>` (dagster-dbt, from the manifest `dbt parse` writes at
definitions load into MANIFEST_DIR below), with edges to the models it refs and, through the sources'
`meta.dagster.asset_key`, to the bitbucket and scanning assets it reads; its dbt tests' outcome is metadata.
Not partitioned: it reads every connection's lake partitions. DuckDB has one writer, so the build runs in
the `duckdb_writer` pool (limit it to 1) and writes a copy that replaces the file.
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, dbt_assets

from ...warehouse.exports import export_tables, open_warehouse
from ...warehouse.models import discover
from ...warehouse.project import dbt_home, manifest_path
from ...warehouse.report import write_reports
from ...warehouse.runner import SCANNERS, build
from ...warehouse.summary import TableSummary, summarize
from ..metadata import table_metadata
from ..storage.resources import StorageResource


class WarehouseTranslator(DagsterDbtTranslator):
    """dbt models as `warehouse/<model>` in the warehouse group (the keys the rest of the pipeline uses)."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "model":
            return dg.AssetKey(["warehouse", dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)  # sources: meta.dagster.asset_key

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "warehouse"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str]:
        return ["team:appsec"]

    def get_asset_spec(self, manifest, unique_id, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        return spec.replace_attributes(kinds={"duckdb"})


# dbt tests run inside the build (`dbt build` on the copy: a failing test keeps the old warehouse) and their
# outcome is each model's "dbt tests" metadata; they are not separate asset checks, so each mart keeps one
# check, the Great Expectations suite (defs/quality), which a run of checks alone can evaluate.
TRANSLATOR = WarehouseTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=False))


# Where definitions load parses the dbt project: the dbt folder of the storage resource's default home,
# <OX_BB_HOME, else ./data>/dbt (manifests/<digest>/manifest.json, one per project version and scanner list).
# No run config exists at load; the manifest depends only on the project and the registry, never on the data, so
# a run configured with another home uses it as it is.
MANIFEST_DIR = dbt_home(StorageResource().home_path())


@dbt_assets(
    manifest=manifest_path(MANIFEST_DIR, scanners=SCANNERS),
    dagster_dbt_translator=TRANSLATOR,
    name="warehouse_models",
    pool="duckdb_writer",
)
def warehouse_models(context: dg.AssetExecutionContext, storage: StorageResource):
    """Build every dbt model and its tests into a copy of warehouse.duckdb, then swap it in (the whole project
    is built whatever the selection: the copy must be complete to replace the file)."""
    result = build(home=storage.home_path(), progress=context.log.info)
    con = open_warehouse(result.path.parent)
    try:
        summaries = summarize(con, result.models)
    finally:
        con.close()
    selected = context.selected_asset_keys
    for model in result.models:
        key = dg.AssetKey(["warehouse", model.name])
        if key not in selected:
            continue
        seconds = round(result.model_seconds.get(model.name, 0.0), 2)
        tests = [
            {"dbt test": name, "status": status}
            for name, status in sorted(result.tests.items())
            if result.test_models.get(name) == model.name
        ]
        metadata = {**_table_metadata(summaries[model.name]), "seconds": seconds}
        if tests:
            metadata["dbt tests"] = dg.MetadataValue.md(_markdown(tests))
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)


# Written by the run_failures sensor, never by a run: declared (module level, so it is collected) so that
# warehouse/pipeline_failures has a real upstream.
RUN_FAILURES = dg.AssetSpec(
    ["ops", "run_failures"],
    group_name="ops",
    kinds={"parquet"},
    owners=["team:appsec"],
    description="lake/ops/run_failures: failed Dagster runs, written by the run_failures "
    "sensor (read by warehouse/pipeline_failures).",
)


def _table_metadata(summary: TableSummary) -> dict:
    """Row count, typed and described columns, a preview of the top rows, and the table's counts."""
    shown = summary.preview_columns
    metadata = {
        "dagster/row_count": dg.MetadataValue.int(summary.rows),
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name, dtype, description=desc or None) for name, dtype, desc in summary.columns]
        ),
        "preview": table_metadata(summary.preview, shown, preview_columns=len(shown))["preview"],
    }
    for title, rows in summary.counts.items():
        metadata[title] = dg.MetadataValue.md(_markdown(rows))
    return metadata


def _markdown(rows: list[dict]) -> str:
    head = list(rows[0]) if rows else ["(none)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(row[c]) for c in head) + " |" for row in rows]
    return "\n".join(lines)


@dg.asset(
    key=["reports", "exports"],
    group_name="reports",
    kinds={"parquet"},
    owners=["team:appsec"],
    deps=[["warehouse", m.name] for m in discover()],
    description="Parquet export of every mart table under OX_BB_HOME/exports/ (written atomically).",
)
def exports(context: dg.AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
    written = export_tables(storage.home_path())
    return dg.MaterializeResult(metadata={"tables": dg.MetadataValue.json({k: str(v) for k, v in written.items()})})


@dg.asset(
    key=["reports", "compliance_report"],
    group_name="reports",
    kinds={"html", "csv"},
    owners=["team:appsec"],
    deps=[["warehouse", "compliance_report"], ["warehouse", "findings_queue"]],
    description="reports/compliance.html (opens offline) and reports/compliance.csv.",
)
def compliance_report(context: dg.AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
    written = write_reports(storage.home_path())
    return dg.MaterializeResult(metadata={name: dg.MetadataValue.path(str(path)) for name, path in written.items()})
