"""Hand-built lakes: a few repositories, findings, scan runs and posture results written as the real
Parquet partitions (lake.write_partition) into a temporary OX_BB_HOME, then a real warehouse build."""

from __future__ import annotations

import json
import textwrap
import threading
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import duckdb
import pytest
import yaml

from ox_bb_pipeline.findings import Finding
from ox_bb_pipeline.lake import write_partition
from ox_bb_pipeline.warehouse import runner
from ox_bb_pipeline.warehouse.runner import BuildResult, build, lake_inputs
from ox_bb_pipeline.warehouse.settings import WarehouseSettings, load_settings
from ox_bb_pipeline.warehouse.workflows import WorkflowsFile

NOW = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
CATEGORY = {
    "secrets": "secrets",
    "bandit": "sast",
    "semgrep": "sast",
    "checkov": "iac",
    "sca": "sca",
    "posture": "scm_posture",
    "sarif": "external",
}


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def where(repo: dict) -> dict:
    """The columns that place a row in a repository."""
    return {k: repo[k] for k in ("workspace", "repository_uuid", "repository")}


class Lake:
    """Rows per (zone, table, connection); `write()` replaces those partitions, `build()` runs the warehouse."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.tables: dict[tuple[str, str, str], list[dict]] = {}
        self.schemas = {(zone, table): schema for zone, table, schema in lake_inputs().values()}

    # -- rows -------------------------------------------------------------------------------------
    def add(self, zone: str, table: str, *rows: dict, connection: str = "main") -> None:
        self.tables.setdefault((zone, table, connection), []).extend({"connection": connection, **row} for row in rows)

    def clear(self, zone: str, table: str, connection: str = "main") -> None:
        self.tables[(zone, table, connection)] = []

    def repository(
        self,
        slug: str,
        workspace: str = "acme",
        project: str = "CORE",
        *,
        private: bool = True,
        changed_days_ago: float = 3,
        connection: str = "main",
        **extra,
    ) -> dict:
        repository_uuid = "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"{workspace}/{slug}")) + "}"
        row = {
            "workspace": workspace,
            "repository_uuid": repository_uuid,
            "repository": slug,
            "full_name": f"{workspace}/{slug}",
            "name": slug,
            "project_key": project,
            "project_name": project.title(),
            "mainbranch": "main",
            "main_head": f"head-{slug}",
            "is_private": private,
            "fork_policy": "no_public_forks",
            "created_on": days_ago(900),
            "updated_on": days_ago(changed_days_ago),
            "selected": True,
            "extracted_at": NOW,
            **extra,
        }
        self.add("raw", "repositories", row, connection=connection)
        if row["main_head"]:
            self.add(
                "raw",
                "branches",
                {
                    "workspace": workspace,
                    "repository_uuid": row["repository_uuid"],
                    "repository": slug,
                    "branch": "main",
                    "commit": row["main_head"],
                    "commit_date": days_ago(changed_days_ago),
                    "is_main": True,
                },
                connection=connection,
            )
        return row

    def finding(
        self,
        repo: dict,
        scanner: str,
        rule_id: str,
        *,
        severity: str = "high",
        file_path: str | None = None,
        anchor: str | None = None,
        connection: str = "main",
        **extra,
    ) -> str:
        finding = Finding(
            scanner=scanner,
            scanner_version="1",
            rule_id=rule_id,
            title=extra.pop("title", f"{rule_id} title"),
            category=extra.pop("category", CATEGORY[scanner]),
            base_severity=severity,
            connection=connection,
            workspace=repo["workspace"],
            repository_uuid=repo["repository_uuid"],
            repository=repo["repository"],
            anchor=anchor or f"{rule_id}:{file_path}",
            commit=repo["main_head"],
            file_path=file_path,
            scanned_at=NOW,
            **extra,
        )
        self.add("findings", scanner, finding.row(), connection=connection)
        return finding.finding_id

    def scan(
        self,
        repo: dict,
        *scanners: str,
        status: str = "ok",
        files: int = 12,
        error: str | None = None,
        connection: str = "main",
    ) -> None:
        for scanner in scanners:
            self.add(
                "scans",
                "scan_runs",
                {
                    **where(repo),
                    "commit": repo["main_head"],
                    "scanner": scanner,
                    "scanner_version": "1",
                    "status": status,
                    "cached": False,
                    "duration_seconds": 0.1,
                    "files_scanned": files if status == "ok" else 0,
                    "bytes_scanned": 1000,
                    "findings": 0,
                    "error": error if status != "ok" else None,
                    "scanned_at": NOW,
                },
                connection=connection,
            )

    def posture(
        self,
        repo: dict | None,
        check_id: str,
        status: str,
        evidence: str = "",
        workspace: str = "acme",
        connection: str = "main",
        finding_id: str | None = None,
    ) -> None:
        self.add(
            "scans",
            "posture_results",
            {
                "workspace": repo["workspace"] if repo else workspace,
                "repository_uuid": repo["repository_uuid"] if repo else None,
                "repository": repo["repository"] if repo else None,
                "check_id": check_id,
                "status": status,
                "evidence": evidence,
                "checked_at": NOW,
                "finding_id": finding_id,
            },
            connection=connection,
        )

    def pipelines(self, repo: dict, yml: str, connection: str = "main") -> None:
        self.add(
            "raw",
            "pipeline_configs",
            {
                **where(repo),
                "enabled": True,
                "main_commit": repo["main_head"],
                "yml_present": True,
                "yml": textwrap.dedent(yml),
            },
            connection=connection,
        )

    def environment(self, repo: dict, name: str, environment_type: str) -> None:
        self.add(
            "raw",
            "environments",
            {
                **where(repo),
                "environment_uuid": "{" + str(uuid.uuid4()) + "}",
                "name": name,
                "environment_type": environment_type,
                "rank": 0,
                "admin_only": False,
                "deployment_gate_enabled": False,
            },
        )

    # -- files and builds -------------------------------------------------------------------------
    def write(self) -> None:
        for (zone, table, connection), rows in self.tables.items():
            write_partition(zone, table, connection, rows, self.schemas[(zone, table)], home=self.home)

    def config(self, name: str, text: str) -> Path:
        path = self.home / name
        path.write_text(textwrap.dedent(text))
        return path

    def small_settings(self) -> WarehouseSettings:
        """The settings files, with two scanners covering one control each (see `small_catalog`)."""
        return load_settings(self.home).model_copy(
            update={"scanner_controls": {"secrets": ["CIS-SSC-1.5.1"], "bandit": ["CIS-SSC-1.5.4"]}}
        )

    def build(self, now: datetime = NOW, **kwargs) -> BuildResult:
        self.write()
        return build(self.home, now=now, **kwargs)

    def rows(self, sql: str, *params) -> list[dict]:
        con = duckdb.connect(str(self.home / "warehouse.duckdb"), read_only=True)
        try:
            result = con.execute(sql, list(params))
            names = [d[0] for d in result.description]
            return [dict(zip(names, row)) for row in result.fetchall()]
        finally:
            con.close()

    def value(self, sql: str, *params):
        rows = self.rows(sql, *params)
        return next(iter(rows[0].values())) if rows else None

    def severity(self, finding_id: str) -> dict:
        """A finding's final severity and how the factors got there (enriched_findings)."""
        return self.rows(
            "SELECT final_severity, severity_steps, severity_explanation, severity_factors "
            "FROM enriched_findings WHERE finding_id = ?",
            finding_id,
        )[0]


@pytest.fixture
def lake(isolated_home) -> Lake:
    return Lake(isolated_home)


SMALL_CATALOG = [
    ("BB-003", ["CIS-SSC-1.1.16", "SSDF-PS.1.1", "CICD-SEC-1"]),
    ("BB-004", ["CIS-SSC-1.1.17", "SSDF-PS.1.1", "CICD-SEC-1"]),
    ("BB-M01", ["CIS-SSC-1.3.5", "SSDF-PS.1.1"]),
    ("BB-033", ["CIS-SSC-2.4.5"]),
]


@pytest.fixture
def small_catalog(monkeypatch):
    """A four-check posture catalog, so expected compliance rows stay readable whatever the real one grows to."""
    rows = [
        {
            "check_id": c,
            "title": f"{c} title",
            "category": "scm_posture",
            "topic": "access",
            "severity": "high",
            "controls": controls,
            "rationale": "",
            "remediation": "",
        }
        for c, controls in SMALL_CATALOG
    ]
    monkeypatch.setattr(runner, "posture_check_rows", lambda: rows)


# -- workflows --------------------------------------------------------------------------------------
LATER = NOW + timedelta(days=10)  # past the 7-day SLA of critical findings, within high's 30


def workflows(text: str) -> WorkflowsFile:
    return WorkflowsFile.model_validate(yaml.safe_load(textwrap.dedent(text)))


def writable(lake: Lake) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(lake.home / "warehouse.duckdb"))


@pytest.fixture
def warehouse(lake) -> dict[str, str]:
    """payments (api: a critical secret, a high and a medium bandit finding) and web (one low semgrep
    finding, then one new high one in a second build ten days later)."""
    lake.config(
        "applications.yaml",
        """
        applications:
          - {name: payments, repositories: [{repository: api}], business_priority: high}
          - {name: web, repositories: [{repository: web}], business_priority: medium}
    """,
    )
    api, web = lake.repository("api"), lake.repository("web")
    lake.scan(api, "secrets", "bandit")
    lake.scan(web, "semgrep")
    ids = {
        "secret": lake.finding(api, "secrets", "aws-key", severity="critical", file_path="deploy.sh"),
        "b105": lake.finding(api, "bandit", "B105", severity="high", file_path="app/config.py"),
        "b311": lake.finding(api, "bandit", "B311", severity="medium", file_path="app/random.py"),
        "xss": lake.finding(web, "semgrep", "js.xss", severity="low", file_path="web/index.js"),
    }
    lake.build(NOW)
    ids["sqli"] = lake.finding(web, "semgrep", "js.sqli", severity="high", file_path="web/db.js")
    lake.build(LATER)
    return ids


class Hook:
    """A local Slack-style webhook: records every JSON body posted to it."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    server = Hook()
    yield server
    server.close()
