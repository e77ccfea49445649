"""What leaves the warehouse: Parquet exports of every model, the offline HTML and CSV compliance
report with the expected numbers, the data dictionary, and `ox-bb query` / `ox-bb report`."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import ox_bb_pipeline
from ox_bb_pipeline.app.warehouse_cli import query, query_command, report_command
from ox_bb_pipeline.scanners.posture import load_catalog
from ox_bb_pipeline.warehouse.control_titles import (
    CONTROL_ID,
    ControlTitleError,
    control_label,
    control_title,
    load_control_titles,
)
from ox_bb_pipeline.warehouse.exports import DATA_DICTIONARY_PATH, export_tables
from ox_bb_pipeline.warehouse.models import data_dictionary, discover
from ox_bb_pipeline.warehouse.report import write_reports
from ox_bb_pipeline.warehouse.settings import load_scanner_controls

from .conftest import NOW

PACKAGE = Path(ox_bb_pipeline.__file__).resolve().parent


def emitted_control_ids() -> set[str]:
    """The posture catalog's, scanner_controls.yaml's, and every id written in the scanners' code and rule files."""
    ids = {c for check in load_catalog() for c in check.control_ids}
    ids |= {c for controls in load_scanner_controls().values() for c in controls}
    for path in PACKAGE.rglob("*"):
        if path.suffix in (".py", ".yaml", ".yml") and path.name != "control_titles.yaml":
            ids |= {m.group(0) for m in re.finditer(CONTROL_ID.pattern, path.read_text(errors="replace"))}
    return ids


def test_every_control_id_the_project_can_emit_has_a_title():
    ids = emitted_control_ids()
    assert {"CIS-SSC-1.1.16", "SSDF-PS.1.1", "CICD-SEC-1", "CIS-SSC-1.5.4"} <= ids
    assert sorted(ids - set(load_control_titles())) == []
    assert control_label("CICD-SEC-1") == "CICD-SEC-1 — Insufficient Flow Control"
    assert control_label("CIS-SSC-1.1.16") == "CIS-SSC-1.1.16 — no force push"
    assert control_title("SSDF-PS.1.1") == "least-privilege storage of all code incl. config-as-code"
    assert control_title("SSDF-PW.5.1") == "NIST SSDF SP 800-218 v1.1"


def test_an_unknown_id_or_a_missing_title_is_a_clear_error(tmp_path):
    with pytest.raises(ControlTitleError, match=r"control 'CICD-SEC-99' has no title: add it to control_titles.yaml"):
        control_title("CICD-SEC-99")
    assert control_label("CICD-SEC-99") == "CICD-SEC-99"  # a report shows the id alone, never fails over a title
    bad = tmp_path / "titles.yaml"
    bad.write_text("CICD-SEC-1: ''\nSSDF-XX: x\n")
    with pytest.raises(ControlTitleError, match=r"'SSDF-XX': not a flattened control id.*; CICD-SEC-1: missing title"):
        load_control_titles(bad)


@pytest.fixture
def built(lake, small_catalog):
    """Two applications, four open findings (one breaching its SLA), one suppressed, one resolved."""
    api, web = lake.repository("api"), lake.repository("web")
    lake.scan(api, "bandit", "secrets")
    lake.scan(web, "bandit")
    lake.posture(api, "BB-003", "pass", "force pushes prevented")
    lake.finding(api, "secrets", "aws-key", severity="critical", file_path="deploy.sh")
    lake.finding(api, "bandit", "B105", severity="high", file_path="app/settings.py", controls=["CIS-SSC-1.5.4"])
    lake.finding(web, "bandit", "B602", severity="medium", file_path="run.py")
    lake.finding(web, "bandit", "B101", severity="low", file_path="lib/check.py")
    gone = lake.finding(web, "bandit", "B110", severity="low", file_path="lib/old.py")
    accepted = lake.finding(api, "bandit", "B311", severity="low", file_path="app/rand.py")
    lake.config(
        "suppressions.yaml",
        f"""
        suppressions:
          - {{fingerprint: {accepted}, reason: not crypto, owner: alice, expires: 2027-01-01}}
    """,
    )
    lake.build(NOW - timedelta(days=9), settings=lake.small_settings())
    lake.tables[("findings", "bandit", "main")] = [
        r for r in lake.tables[("findings", "bandit", "main")] if r["finding_id"] != gone
    ]
    lake.build(NOW, settings=lake.small_settings())
    return lake


def test_every_model_is_exported_to_parquet(built):
    written = export_tables(built.home)
    assert set(written) == {m.name for m in discover()}
    for name, path in written.items():
        assert path == built.home / "exports" / f"{name}.parquet"
        assert pq.read_table(path).num_rows == built.value(f'SELECT count(*) FROM "{name}"')
    assert [p.name for p in (built.home / "exports").iterdir() if p.name.startswith(".")] == []


def test_the_html_report_shows_the_numbers_and_needs_no_network(built):
    paths = write_reports(built.home)
    html = paths["html"].read_text()
    tiles = {label: value for value, label in re.findall(r'<div class="tile"><b>([^<]+)</b>([^<]+)<br>', html)}
    assert tiles == {
        "applications": "2",
        "open findings": "4",
        "SLA breached": "1",
        "suppressed": "1",
        "resolved": "1",
        "CIS Software Supply Chain Security Guide v1.0": "75.0%",
        "NIST SSDF SP 800-218": "100.0%",
        "OWASP Top 10 CI/CD Security Risks": "100.0%",
    }
    severity_chart = html.split("Open findings by severity")[1].split("</section>")[0]
    assert re.findall(r"<title>(\w+): (\d+)</title>", severity_chart) == [
        ("critical", "1"),
        ("high", "1"),
        ("medium", "1"),
        ("low", "1"),
    ]
    assert "<script" not in html and not re.search(r'(src|href)="https?:', html) and "@import" not in html
    assert "acme/api" in html and "acme/web" in html
    failing = html.split("<h2>Most failed controls</h2>")[1].split("</section>")[0]
    assert "<tr><td>CIS-SSC-1.5.4 — SAST scanning</td><td>CIS Software Supply Chain Security Guide v1.0</td>" in failing


def test_the_csv_report_has_one_row_per_application_and_control(built):
    rows = list(csv.DictReader(io.StringIO(write_reports(built.home)["csv"].read_text())))
    assert len(rows) == built.value("SELECT count(*) FROM compliance_report")
    fail = next(r for r in rows if r["application"] == "acme/api" and r["control_id"] == "CIS-SSC-1.5.4")
    assert (fail["status"], fail["application_is_relevant"]) == ("fail", "true")
    assert fail["failing_finding_ids"] == built.value("SELECT finding_id FROM findings_queue WHERE rule_id = 'B105'")
    assert fail["control_title"] == "SAST scanning"
    assert list(rows[0])[:4] == ["application", "framework", "control_id", "control_title"]


def test_the_data_dictionary_documents_every_column_and_is_up_to_date(built):
    con = duckdb.connect(str(built.home / "warehouse.duckdb"), read_only=True)
    try:
        for model in discover():
            columns = [r[0] for r in con.execute(f'DESCRIBE "{model.name}"').fetchall()]
            assert columns == list(model.columns), f"{model.name}: header columns differ from the table's"
            assert all(model.columns.values()), f"{model.name}: a column has no description"
            assert model.description, f"{model.name}: no description"
    finally:
        con.close()
    committed = DATA_DICTIONARY_PATH.read_text()
    for model in discover():
        assert f"## {model.name}\n" in committed
        for column in model.columns:
            assert f"| `{column}` |" in committed.split(f"## {model.name}\n")[1].split("\n## ")[0]
    assert data_dictionary(discover()).count("| `") == committed.count("| `")


def test_query_prints_a_table_csv_or_json(built):
    sql = "SELECT status, count(*) AS n FROM findings_queue GROUP BY ALL ORDER BY status"
    expected = [{"status": "open", "n": 4}, {"status": "resolved", "n": 1}, {"status": "suppressed", "n": 1}]
    assert json.loads(query(sql, "json", home=built.home)) == expected
    assert query(sql, "csv", home=built.home) == "status,n\nopen,4\nresolved,1\nsuppressed,1\n"
    table = query(sql, home=built.home)
    assert "open" in table and "resolved" in table and table.endswith("3 rows")
    assert query("SELECT * FROM range(5)", home=built.home, max_rows=2).endswith(
        "5 rows, 3 not shown (use --format csv or --max-rows)"
    )


def test_query_and_report_commands(built):
    runner = CliRunner()
    result = runner.invoke(query_command, ["SELECT count(*) AS n FROM findings", "--format", "csv"])
    assert (result.exit_code, result.output) == (0, "n\n5\n")
    result = runner.invoke(query_command, ["SELECT nope FROM findings"])
    assert result.exit_code == 1 and "query failed" in result.output
    result = runner.invoke(query_command, ["CREATE TABLE x (a INT)"])
    assert result.exit_code == 1 and "read-only" in result.output
    result = runner.invoke(report_command, [])
    assert result.exit_code == 0, result.output
    assert (built.home / "reports" / "compliance.html").exists()
    assert (built.home / "exports" / "findings_queue.parquet").exists()


def test_commands_explain_a_missing_warehouse(lake):
    result = CliRunner().invoke(query_command, ["SELECT 1"])
    assert result.exit_code == 1 and "no warehouse at" in result.output and "--stage warehouse" in result.output


def test_a_grey_application_row_says_why_it_is_not_relevant(lake):
    stale = lake.repository("stale", changed_days_ago=400)
    lake.repository("live")
    lake.finding(stale, "secrets", "aws-key", file_path="app.py", severity="critical")
    lake.build(NOW, settings=lake.small_settings())
    html = write_reports(lake.home)["html"].read_text()
    scores = html.split("<h2>Scores per application</h2>")[1].split("</section>")[0]
    assert (
        '<tr class=irrelevant title="not relevant: no code change in 400 days"><td>acme/stale'
        "<br><small>not relevant: no code change in 400 days</small></td>"
    ) in scores
    assert "<tr><td>acme/live</td>" in scores
    assert "Grey rows: applications that are not relevant" in scores


def test_no_bar_label_is_cut_off():
    from ox_bb_pipeline.warehouse.report import LABEL_CHAR_WIDTH, _bars

    longest = "CIS Software Supply Chain Security Guide v1.0"
    svg = _bars([(longest, [("pass", 3), ("fail", 1)]), ("SSDF", [("pass", 1)])])
    label_x = int(re.search(r'<text x="(\d+)" y="14" text-anchor="end">([^<]+)</text>', svg)[1])
    assert re.search(r'text-anchor="end">([^<]+)</text>', svg)[1] == longest
    assert label_x >= len(longest) * LABEL_CHAR_WIDTH
    assert f'<rect x="{label_x + 6}.0"' in svg
    assert int(re.search(r'<svg [^>]*width="(\d+)"', svg)[1]) == label_x + 6 + 420
