"""Warehouse stage: the SQL models in sql/ built into warehouse.duckdb, then exports and reports.

Not partitioned: it reads every connection's lake partitions. DuckDB has one writer, so the
build runs in the `duckdb_writer` pool (limit it to 1) and writes a copy that replaces the file.
"""

import dagster as dg

from ...scanners import registry
from ...warehouse.exports import export_tables, open_warehouse
from ...warehouse.models import discover
from ...warehouse.report import write_reports
from ...warehouse.runner import build
from ...warehouse.summary import TableSummary, summarize
from ..metadata import table_metadata

# Every scanner's findings (scanners/registry.py), then the other tables of the scan asset.
SCANNING = [["scanning", s.asset_name] for s in registry.scanners()] + [["scanning", t] for t in (
    "scan_runs", "components", "posture_results", "repository_files")]


def _specs() -> list[dg.AssetSpec]:
    # Built in a function: module-level AssetSpecs would be collected as definitions of their own.
    return [dg.AssetSpec(["warehouse", m.name], group_name="warehouse", kinds={"duckdb"},
                         description=m.description or f"SQL model sql/{m.name}.sql", owners=["team:appsec"],
                         deps=SCANNING + [["bitbucket", "repositories"]])
            for m in discover()]


@dg.multi_asset(specs=_specs(), pool="duckdb_writer", can_subset=False)
def warehouse_models(context: dg.AssetExecutionContext):
    """Build every SQL model (in dependency order) into a copy of warehouse.duckdb, then swap it in."""
    result = build(progress=context.log.info)
    con = open_warehouse(result.path.parent)
    try:
        summaries = summarize(con, result.models)
    finally:
        con.close()
    for model in result.models:
        seconds = round(result.model_seconds.get(model.name, 0.0), 2)
        yield dg.MaterializeResult(asset_key=["warehouse", model.name],
                                   metadata={**_table_metadata(summaries[model.name]), "seconds": seconds})


def _table_metadata(summary: TableSummary) -> dict:
    """Row count, typed and described columns, a preview of the top rows, and the table's counts."""
    shown = summary.preview_columns
    metadata = {
        "dagster/row_count": dg.MetadataValue.int(summary.rows),
        "dagster/column_schema": dg.TableSchema(columns=[
            dg.TableColumn(name, dtype, description=desc or None)
            for name, dtype, desc in summary.columns]),
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


@dg.asset(key=["reports", "exports"], group_name="reports", kinds={"parquet"}, owners=["team:appsec"],
          deps=[["warehouse", m.name] for m in discover()],
          description="Parquet export of every mart table under OX_BB_HOME/exports/ (written atomically).")
def exports(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    written = export_tables()
    return dg.MaterializeResult(metadata={"tables": dg.MetadataValue.json({k: str(v) for k, v in written.items()})})


@dg.asset(key=["reports", "compliance_report"], group_name="reports", kinds={"html", "csv"},
          owners=["team:appsec"],
          deps=[["warehouse", "compliance_report"], ["warehouse", "findings_queue"]],
          description="reports/compliance.html (opens offline) and reports/compliance.csv.")
def compliance_report(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    written = write_reports()
    return dg.MaterializeResult(metadata={name: dg.MetadataValue.path(str(path)) for name, path in written.items()})
