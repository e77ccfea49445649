"""One problem, one queue item (finding_correlations) and vendored / generated / test code
(scanners/code_context.yaml): exact rows of findings and findings_queue, and the drift figure."""

from __future__ import annotations

import shutil
from datetime import timedelta

import duckdb
import pytest

from ox_bb_pipeline.config import ConfigError
from ox_bb_pipeline.warehouse.runner import build
from ox_bb_pipeline.warehouse.settings import load_cwe_families, load_settings
from ox_bb_pipeline.warehouse.summary import severity_drift

from .conftest import NOW, Lake


def queue_rows(lake) -> list[dict]:
    return lake.rows(
        "SELECT rule_id, status, detected_by, correlated_into, excluded_by, code_context, final_severity "
        "FROM findings_queue ORDER BY rule_id"
    )


def test_sql_injection_seen_by_bandit_and_semgrep_is_one_queue_item(lake):
    repo = lake.repository("api")
    lake.scan(repo, "bandit", "semgrep")
    bandit = lake.finding(
        repo, "bandit", "B608", severity="medium", file_path="app/db.py", cwe="CWE-89", start_line=42, end_line=42
    )
    semgrep = lake.finding(
        repo,
        "semgrep",
        "ox.python.sql-string",
        severity="high",
        file_path="app/db.py",
        cwe="CWE-564",
        start_line=45,
        end_line=46,
    )
    far = lake.finding(
        repo,
        "semgrep",
        "ox.python.sql-format",
        severity="high",
        file_path="app/db.py",
        cwe="CWE-89",
        start_line=60,
        end_line=60,
    )
    other_file = lake.finding(
        repo,
        "bandit",
        "B608",
        severity="medium",
        file_path="app/report.py",
        cwe="CWE-89",
        start_line=45,
        end_line=45,
        anchor="report",
    )
    lake.build()
    assert lake.rows(
        "SELECT finding_id, problem_id, is_primary, cwe_family, detected_by FROM finding_correlations "
        "ORDER BY is_primary DESC"
    ) == [
        {
            "finding_id": semgrep,
            "problem_id": semgrep,
            "is_primary": True,
            "cwe_family": "sql_injection",
            "detected_by": ["bandit:B608", "semgrep:ox.python.sql-string"],
        },
        {
            "finding_id": bandit,
            "problem_id": semgrep,
            "is_primary": False,
            "cwe_family": "sql_injection",
            "detected_by": ["bandit:B608", "semgrep:ox.python.sql-string"],
        },
    ]
    rows = {
        r["finding_id"]: r
        for r in lake.rows("SELECT finding_id, status, detected_by, correlated_into, sla_status FROM findings_queue")
    }
    assert rows[semgrep] == {
        "finding_id": semgrep,
        "status": "new",
        "sla_status": "on_track",
        "detected_by": ["bandit:B608", "semgrep:ox.python.sql-string"],
        "correlated_into": None,
    }
    assert rows[bandit] == {
        "finding_id": bandit,
        "status": "correlated",
        "sla_status": "exempt",
        "detected_by": ["bandit:B608", "semgrep:ox.python.sql-string"],
        "correlated_into": semgrep,
    }
    assert rows[far]["status"] == rows[other_file]["status"] == "new"
    assert rows[far]["detected_by"] == ["semgrep:ox.python.sql-format"]
    assert lake.value("SELECT count(*) FROM findings") == 4  # every scanner's own finding stays


def test_one_scanner_twice_or_different_families_are_not_correlated(lake):
    repo = lake.repository("api")
    lake.finding(repo, "semgrep", "a", file_path="app.py", cwe="CWE-89", start_line=10)
    lake.finding(repo, "semgrep", "b", file_path="app.py", cwe="CWE-89", start_line=11)
    lake.finding(repo, "bandit", "B324", file_path="app.py", cwe="CWE-327", start_line=10)
    lake.finding(repo, "bandit", "B307", file_path="views.py", cwe="CWE-78", start_line=32)  # eval: by rule
    lake.finding(repo, "semgrep", "ox.python.eval", file_path="views.py", cwe="CWE-95", start_line=32)
    lake.build()
    assert lake.rows("SELECT detected_by FROM finding_correlations GROUP BY ALL") == [
        {"detected_by": ["bandit:B307", "semgrep:ox.python.eval"]}
    ]


def test_vendored_and_minified_code_is_excluded_test_code_lowered_secrets_kept(lake):
    repo = lake.repository("web")
    lake.scan(repo, "semgrep", "secrets", "checkov")
    lake.finding(
        repo, "semgrep", "ox.js.eval", severity="critical", file_path="static/js/materialize.min.js", cwe="CWE-95"
    )
    lake.finding(
        repo, "semgrep", "ox.js.os-command", severity="critical", file_path="node_modules/x/run.js", cwe="CWE-78"
    )
    lake.finding(
        repo,
        "semgrep",
        "ox.js.sql",
        severity="high",
        file_path="src/gen/api.js",
        cwe="CWE-89",
        file_markers=["generated-marker"],
    )
    lake.finding(repo, "checkov", "CKV_K8S_1", severity="medium", file_path="vendor/chart/pod.yaml")
    lake.finding(repo, "secrets", "slack-token", severity="high", file_path="node_modules/x/config.js")
    lake.build()
    assert queue_rows(lake) == [
        {
            "rule_id": "CKV_K8S_1",
            "status": "excluded",
            "detected_by": ["checkov:CKV_K8S_1"],
            "correlated_into": None,
            "excluded_by": "vendor-directory",
            "code_context": "vendored",
            "final_severity": "medium",
        },
        {
            "rule_id": "ox.js.eval",
            "status": "excluded",
            "detected_by": ["semgrep:ox.js.eval"],
            "correlated_into": None,
            "excluded_by": "minified-file",
            "code_context": "minified",
            "final_severity": "critical",
        },
        {
            "rule_id": "ox.js.os-command",
            "status": "excluded",
            "detected_by": ["semgrep:ox.js.os-command"],
            "correlated_into": None,
            "excluded_by": "node-modules",
            "code_context": "vendored",
            "final_severity": "critical",
        },
        {
            "rule_id": "ox.js.sql",
            "status": "new",
            "detected_by": ["semgrep:ox.js.sql"],
            "correlated_into": None,
            "excluded_by": None,
            "code_context": "generated",
            "final_severity": "medium",
        },
        {
            "rule_id": "slack-token",
            "status": "new",
            "detected_by": ["secrets:slack-token"],
            "correlated_into": None,
            "excluded_by": None,
            "code_context": "vendored",
            "final_severity": "high",
        },
    ]
    assert (
        lake.value("SELECT severity_explanation FROM enriched_findings WHERE rule_id = 'ox.js.sql'")
        == "High → Medium: only in generated code src/gen/api.js (generated-marker)"
    )
    assert lake.rows(
        "SELECT rule_id, code_context_rule, code_context_effect FROM findings "
        "WHERE code_context IS NOT NULL ORDER BY rule_id"
    ) == [
        {"rule_id": "CKV_K8S_1", "code_context_rule": "vendor-directory", "code_context_effect": "exclude"},
        {"rule_id": "ox.js.eval", "code_context_rule": "minified-file", "code_context_effect": "exclude"},
        {"rule_id": "ox.js.os-command", "code_context_rule": "node-modules", "code_context_effect": "exclude"},
        {"rule_id": "ox.js.sql", "code_context_rule": "generated-marker", "code_context_effect": "lower"},
        {"rule_id": "slack-token", "code_context_rule": "node-modules", "code_context_effect": "none"},
    ]


def test_severity_drift_counts_the_open_queue(lake):
    public = lake.repository("site", private=False)
    lake.finding(public, "semgrep", "sqli", severity="medium", file_path="q.py", cwe="CWE-89")
    lake.finding(public, "semgrep", "eval", severity="high", file_path="tests/t.py", cwe="CWE-95")
    lake.finding(public, "checkov", "CKV_1", severity="low", file_path="main.tf")
    lake.build(NOW)
    con = duckdb.connect(str(lake.home / "warehouse.duckdb"), read_only=True)
    try:
        drift = severity_drift(con)
    finally:
        con.close()
    assert (
        drift.open_findings,
        drift.changed,
        drift.raised,
        drift.lowered,
        drift.beyond_one_step,
        drift.within_one_step_percent,
    ) == (3, 2, 1, 1, 0, 100.0)
    assert drift.factors == [{"factor": "code_context", "findings": 1}, {"factor": "public_repository", "findings": 1}]
    assert drift.line() == (
        "100.0% of 3 open findings within one step of the scanner's severity; "
        "2 changed (1 up, 1 down), 0 by more than one step"
    )


def test_a_bad_cwe_family_catalog_names_the_problem(tmp_path):
    path = tmp_path / "families.yaml"
    path.write_text("""
line_window: 3
families:
  sql_injection: {title: SQL injection, exploitable: true, cwes: [CWE-89]}
  orm_injection: {title: ORM injection, exploitable: true, cwes: [CWE-89, cwe564]}
""")
    with pytest.raises(ConfigError) as caught:
        load_cwe_families(path)
    assert caught.value.problems == ["families.orm_injection.cwes: CWE ids look like CWE-89, not 'cwe564'"]
    path.write_text("""
line_window: 3
families:
  sql_injection: {title: SQL injection, exploitable: true, cwes: [CWE-89]}
  orm_injection: {title: ORM injection, exploitable: true, cwes: [CWE-89]}
rules: {B608: sql_injection}
""")
    with pytest.raises(ConfigError) as caught:
        load_cwe_families(path)
    assert caught.value.problems == [
        "file: CWE-89 is in both sql_injection and orm_injection; a CWE belongs to one family"
    ]


def test_a_night_recomputes_the_correlations_of_changed_repositories_and_all_of_them_when_the_window_changes(
    lake, tmp_path
):
    """finding_correlations is incremental by repository: after a night where one repository's findings changed, and
    after one where only the line window changed, its rows equal those of a build that computes them all."""
    api, web = lake.repository("api"), lake.repository("web")
    for repo, semgrep_line in ((api, 44), (web, 50)):  # 2 and 8 lines after bandit's: within the window of 3, beyond
        lake.scan(repo, "bandit", "semgrep")
        lake.finding(repo, "bandit", "B608", file_path="app/db.py", cwe="CWE-89", start_line=42, end_line=42)
        lake.finding(
            repo, "semgrep", "sql-string", file_path="app/db.py", cwe="CWE-89", start_line=semgrep_line, end_line=None
        )
    lake.build()

    def problems() -> dict[str, int]:
        return {
            r["repository"]: r["findings"]
            for r in lake.rows(
                "SELECT repository, count(*) AS findings FROM finding_correlations JOIN findings USING (finding_id) "
                "GROUP BY ALL"
            )
        }

    def night(day: int, settings) -> None:
        lake.write()
        twin = Lake(tmp_path / f"full-{day}")
        shutil.copytree(lake.home, twin.home)
        lake.build(NOW + timedelta(days=day), settings=settings)
        build(twin.home, now=NOW + timedelta(days=day), settings=settings, full_refresh=True)
        rows = "SELECT * FROM finding_correlations ORDER BY finding_id"
        assert lake.rows(rows) == twin.rows(rows), day

    assert problems() == {"api": 2}
    lake.finding(web, "semgrep", "sql-format", file_path="app/db.py", cwe="CWE-89", start_line=44, end_line=None)
    settings = load_settings(lake.home)
    night(1, settings)  # web changed: its bandit and new semgrep finding are one problem, api's is kept
    assert problems() == {"api": 2, "web": 2}
    night(2, settings.model_copy(update={"cwe_families": settings.cwe_families.model_copy(update={"line_window": 8})}))
    assert problems() == {"api": 2, "web": 3}  # only the window changed: web's line 50 joins


def test_a_warehouse_from_before_incremental_correlations_computes_them_all_once(lake, tmp_path):
    """A warehouse whose finding_correlations table has no repository_uuid (it was computed whole every build) and
    whose incremental_digests has no row for it: the next build computes every repository's correlations."""
    repo = lake.repository("api")
    lake.scan(repo, "bandit", "semgrep")
    lake.finding(repo, "bandit", "B608", file_path="app/db.py", cwe="CWE-89", start_line=42, end_line=42)
    lake.finding(repo, "semgrep", "sql-string", file_path="app/db.py", cwe="CWE-89", start_line=44, end_line=None)
    lake.build()
    kept = lake.rows("SELECT * FROM finding_correlations ORDER BY finding_id")
    with duckdb.connect(str(lake.home / "warehouse.duckdb")) as con:
        con.execute("ALTER TABLE finding_correlations DROP COLUMN repository_uuid")
        con.execute("DELETE FROM finding_correlations WHERE NOT is_primary")  # a row the next build must give back
        con.execute("DELETE FROM incremental_digests WHERE model = 'finding_correlations'")
    lake.build(NOW + timedelta(days=1))
    assert lake.rows("SELECT * FROM finding_correlations ORDER BY finding_id") == kept
