"""Metadata every table asset reports: row count, column schema and a short markdown preview."""

from __future__ import annotations

import dagster as dg

PREVIEW_ROWS = 5
PREVIEW_WIDTH = 40
FIRST_ERRORS = 3  # errors quoted in metadata and run summaries; the step log has up to 20
STATUS_TAG = "ox_bb/status"  # ok | degraded | failed, on every run of a connection


def column_schema(columns: list[tuple[str, str, str]]) -> dg.TableSchema:
    """`columns` are (name, type, description); shown on the asset page before any run, too."""
    return dg.TableSchema(
        columns=[dg.TableColumn(name, type_, description=desc or None) for name, type_, desc in columns]
    )


def table_metadata(rows: list[dict], columns: list[tuple[str, str, str]], preview_columns: int = 6) -> dict:
    """`columns` are (name, type, description). Preview cells are cut short; secret columns never
    reach a table (the extract stage stores hashes and flags only)."""
    names = [c[0] for c in columns][:preview_columns]
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for row in rows[:PREVIEW_ROWS]:
        cells = [str(row.get(n, ""))[:PREVIEW_WIDTH].replace("|", "\\|").replace("\n", " ") for n in names]
        lines.append("| " + " | ".join(cells) + " |")
    return {
        "dagster/row_count": dg.MetadataValue.int(len(rows)),
        "dagster/column_schema": column_schema(columns),
        "preview": dg.MetadataValue.md("\n".join(lines)),
    }
