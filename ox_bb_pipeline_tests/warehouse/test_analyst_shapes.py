"""Shapes analysts query without traps: repository_full_name wherever a repository is named (a slug is
ambiguous across workspaces), and posture results once per repository and check with a topic."""

from __future__ import annotations

import shutil
from datetime import timedelta

from ox_bb_pipeline.warehouse.models import discover
from ox_bb_pipeline.warehouse.runner import build

from .conftest import NOW, Lake


def test_repository_full_name_tells_two_infra_repositories_apart(lake):
    a, b = lake.repository("infra", workspace="acme"), lake.repository("infra", workspace="ops")
    lake.scan(a, "bandit")
    lake.scan(b, "bandit")
    lake.finding(a, "bandit", "B105", file_path="x.py")
    lake.finding(b, "bandit", "B105", file_path="x.py")
    lake.build()
    for table in ("findings", "enriched_findings", "findings_queue", "findings_history"):
        assert lake.rows(f"SELECT repository, repository_full_name FROM {table} ORDER BY 2") == [
            {"repository": "infra", "repository_full_name": "acme/infra"},
            {"repository": "infra", "repository_full_name": "ops/infra"},
        ], table
    for table in ("repositories", "application_mapping"):
        assert [
            r["repository_full_name"] for r in lake.rows(f"SELECT repository_full_name FROM {table} ORDER BY 1")
        ] == ["acme/infra", "ops/infra"], table
    columns: dict[str, set[str]] = {}
    for r in lake.rows("SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = 'main'"):
        columns.setdefault(r["table_name"], set()).add(r["column_name"])
    naming = {m.name for m in discover() if "repository" in columns[m.name]}
    assert {"findings_queue", "cicd_pipelines", "posture_checks"} <= naming
    assert {name for name in naming if "repository_full_name" not in columns[name]} == set()


def test_posture_checks_count_a_repository_once_with_its_topic(lake):
    lake.config("applications.yaml", "applications:\n  - {name: core, repositories: [{repository: api}]}\n")
    api, web = lake.repository("api"), lake.repository("web")
    lake.repository("api", connection="second")
    for connection in ("main", "second"):  # two connections see acme/api
        lake.posture(api, "BB-003", "fail", evidence="force push allowed", connection=connection)
        lake.posture(api, "BB-027", "pass", connection=connection)
    lake.posture(web, "BB-003", "not_evaluable", evidence="403 on branch restrictions")
    lake.posture(web, "BB-003", "pass", connection="second")  # the evaluated result wins
    lake.posture(None, "BB-M01", "fail", evidence="no IP allowlist")
    lake.build()
    assert lake.value("SELECT count(*) FROM posture_results WHERE check_id = 'BB-003'") == 4
    assert lake.rows("""
        SELECT repository_full_name, application, check_id, topic, status, evidence, connections
        FROM posture_checks ORDER BY workspace, repository_full_name NULLS LAST, check_id""") == [
        {
            "repository_full_name": "acme/api",
            "application": "core",
            "check_id": "BB-003",
            "topic": "branch_protection",
            "status": "fail",
            "evidence": "force push allowed",
            "connections": ["main", "second"],
        },
        {
            "repository_full_name": "acme/api",
            "application": "core",
            "check_id": "BB-027",
            "topic": "pipelines",
            "status": "pass",
            "evidence": "",
            "connections": ["main", "second"],
        },
        {
            "repository_full_name": "acme/web",
            "application": "acme/web",
            "check_id": "BB-003",
            "topic": "branch_protection",
            "status": "pass",
            "evidence": "",
            "connections": ["main", "second"],
        },
        {
            "repository_full_name": None,
            "application": None,
            "check_id": "BB-M01",
            "topic": "workspace_access",
            "status": "fail",
            "evidence": "no IP allowlist",
            "connections": ["main"],
        },
    ]
    assert lake.rows(
        "SELECT count(DISTINCT repository_full_name) AS n FROM posture_checks "
        "WHERE topic = 'branch_protection' AND status = 'fail'"
    ) == [{"n": 1}]


def test_posture_checks_rebuilt_by_repository_give_the_rows_of_a_full_refresh(lake, tmp_path):
    """posture_checks computes again only the workspaces and repositories whose posture results (or application)
    changed, drops those that are gone, and keeps the others: after each build its rows are those of a
    --full-refresh build from the same warehouse and lake."""
    api, web, ops = lake.repository("api"), lake.repository("web"), lake.repository("ops")
    lake.posture(api, "BB-003", "fail", evidence="force push allowed")
    lake.posture(api, "BB-003", "pass", connection="second")
    lake.posture(web, "BB-027", "pass")
    lake.posture(ops, "BB-003", "fail", evidence="no review")
    lake.posture(None, "BB-M01", "fail", evidence="no IP allowlist")
    lake.posture(None, "BB-M01", "pass", workspace="other")
    lake.build()

    def night(day, name):
        lake.write()
        twin = Lake(tmp_path / name)
        shutil.copytree(lake.home, twin.home)
        lake.build(NOW + timedelta(days=day))
        build(twin.home, now=NOW + timedelta(days=day), full_refresh=True)
        rows = lake.rows("SELECT * FROM posture_checks ORDER BY ALL")
        assert rows == twin.rows("SELECT * FROM posture_checks ORDER BY ALL"), name
        return rows

    lake.clear("scans", "posture_results", "second")  # api's second connection gone: its fail wins again
    lake.tables[("scans", "posture_results", "main")] = [
        r
        for r in lake.tables[("scans", "posture_results", "main")]
        if r["repository"] != "ops"  # ops gone
    ]
    lake.posture(web, "BB-027", "fail", evidence="pipeline without approval", connection="second")
    lake.posture(None, "BB-M01", "pass", workspace="acme", connection="second")
    rows = night(1, "changed")
    assert {(r["workspace"], r["repository"], r["check_id"]) for r in rows} == {
        ("acme", "api", "BB-003"),
        ("acme", "web", "BB-027"),
        ("acme", None, "BB-M01"),
        ("other", None, "BB-M01"),
    }
    assert [(r["status"], r["connections"]) for r in rows if r["repository"] == "api"] == [("fail", ["main"])]
    lake.config("applications.yaml", "applications:\n  - {name: core, repositories: [{repository: web}]}\n")
    rows = night(2, "application")
    assert {r["application"] for r in rows if r["repository"] == "web"} == {"core"}
    night(3, "unchanged")
