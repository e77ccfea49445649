"""Bitbucket posture (SCM and CI/CD): checks BB-001…BB-033 over the extract stage's raw tables.

The catalog (catalog.yaml) is data; each check's logic is one SQL file in sql/ or one function in
checks.py. A check whose input could not be read (403, missing scope, premium feature) reports
`not_evaluable`, never pass or fail. `evaluate` never reads the clock: `now` is injected.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import duckdb
import pyarrow as pa

from ...bitbucket.tables import TABLES, schema
from ...files import load_yaml
from ...findings import FINDING_SCHEMA, SEVERITIES, Finding
from ..base import rules_digest
from . import checks
from .checks import query

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
CATALOG_PATH = HERE / "catalog.yaml"
SQL_DIR = HERE / "sql"
SCANNER = "posture"
STATUSES = ("pass", "fail", "not_evaluable")
CATEGORIES = ("scm_posture", "cicd_posture")
SCOPES = ("repository", "workspace")
# Tables read once per workspace for all its repositories: a refusal there covers each repository.
WORKSPACE_LISTED = frozenset({"workspaces", "projects", "repositories", "repository_permissions"})
# Inputs that do not come from the extract stage. repository_files: paths at the main head, from the
# scan stage's snapshots (BB-019); absent, public repositories get not_evaluable for that check.
EXTRA_INPUTS = {
    "repository_files": pa.schema(
        [
            ("connection", pa.string()),
            ("workspace", pa.string()),
            ("repository_uuid", pa.string()),
            ("repository", pa.string()),
            ("path", pa.string()),
        ]
    )
}
CONTROL_PREFIX = {"cis_ssc": "CIS-SSC-", "ssdf": "SSDF-", "owasp_cicd": ""}

RESULT_SCHEMA = pa.schema(
    [
        ("connection", pa.string()),
        ("workspace", pa.string()),
        ("repository_uuid", pa.string()),
        ("repository", pa.string()),  # null for workspace-level results
        ("check_id", pa.string()),
        ("status", pa.string()),
        ("evidence", pa.string()),
        ("checked_at", pa.timestamp("us", tz="UTC")),
        ("finding_id", pa.string()),  # the finding a `fail` became; null otherwise
    ]
)


TOPICS = (
    "branch_protection",
    "merged_changes",
    "repository_settings",
    "access",
    "webhooks",
    "pipelines",
    "workspace_access",
)


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    category: str
    severity: str
    scope: tuple[str, ...]
    inputs: tuple[str, ...]
    requires: tuple[str, ...]
    logic: str
    controls: dict[str, list[str]]
    rationale: str = ""
    remediation: str = ""
    params: dict = field(default_factory=dict)
    topic: str = ""  # branch_protection, pipelines, access, … (TOPICS): what an analyst asks about

    @property
    def control_ids(self) -> list[str]:
        """Flattened framework ids: CIS-SSC-1.1.16, SSDF-PS.1.1, CICD-SEC-1."""
        return [
            CONTROL_PREFIX[framework] + str(cid)
            for framework in CONTROL_PREFIX
            for cid in self.controls.get(framework) or []
        ]


def _validate(check: Check) -> list[str]:
    problems = []
    if check.category not in CATEGORIES:
        problems.append(f"category {check.category!r}")
    if check.severity not in SEVERITIES:
        problems.append(f"severity {check.severity!r}")
    if check.topic not in TOPICS:
        problems.append(f"topic {check.topic!r} (one of {', '.join(TOPICS)})")
    if not check.scope or set(check.scope) - set(SCOPES):
        problems.append(f"scope {check.scope!r}")
    if not check.control_ids or set(check.controls) - set(CONTROL_PREFIX):
        problems.append("controls must name at least one cis_ssc, ssdf or owasp_cicd id")
    if set(check.requires) - set(check.inputs):
        problems.append("requires lists tables that are not inputs")
    if set(check.inputs) - set(TABLES) - set(EXTRA_INPUTS):
        problems.append(f"unknown input table(s) {sorted(set(check.inputs) - set(TABLES) - set(EXTRA_INPUTS))}")
    if check.logic.endswith(".sql"):
        if not (SQL_DIR / check.logic).is_file():
            problems.append(f"missing sql/{check.logic}")
    elif check.logic != "manual" and getattr(checks.CHECKS.get(check.id), "__name__", None) != check.logic:
        problems.append(f"no function {check.logic!r} registered for {check.id} in checks.py")
    return [f"{check.id}: {p}" for p in problems]


@lru_cache(maxsize=1)
def load_catalog() -> tuple[Check, ...]:
    """The checks of catalog.yaml, validated (ids, severities, controls, logic that exists)."""
    entries = load_yaml(CATALOG_PATH.read_text())["checks"]
    catalog = tuple(
        Check(
            id=e["id"],
            title=e["title"],
            category=e["category"],
            severity=e["severity"],
            scope=tuple(e["scope"]),
            inputs=tuple(e.get("inputs") or ()),
            requires=tuple(e["requires"] if "requires" in e else e.get("inputs") or ()),
            logic=e["logic"],
            controls=e.get("controls") or {},
            rationale=e.get("rationale", ""),
            remediation=e.get("remediation", ""),
            params=e.get("params") or {},
            topic=e.get("topic", ""),
        )
        for e in entries
    )
    problems = [p for check in catalog for p in _validate(check)]
    ids = [c.id for c in catalog]
    problems += [f"{i}: duplicate id" for i in sorted({i for i in ids if ids.count(i) > 1})]
    if problems:
        raise ValueError(f"{CATALOG_PATH.name} is invalid: " + "; ".join(problems))
    return catalog


@lru_cache(maxsize=1)
def scanner_version() -> str:
    """Changes whenever the catalog, a SQL file or the check code changes."""
    return rules_digest(CATALOG_PATH, SQL_DIR, HERE / "checks.py", HERE / "pipelines_yml.py", Path(__file__))


def catalog_table() -> pa.Table:
    """The catalog as a table, for reports that join results to titles, severities and controls."""
    return pa.Table.from_pylist(
        [
            {
                "check_id": c.id,
                "title": c.title,
                "category": c.category,
                "topic": c.topic,
                "severity": c.severity,
                "controls": c.control_ids,
                "rationale": c.rationale,
                "remediation": c.remediation,
            }
            for c in load_catalog()
        ]
    )


@dataclass
class PostureResult:
    results: list[dict]  # RESULT_SCHEMA rows: one per check and repository (or workspace)
    findings: list[Finding]  # one per fail

    def results_table(self) -> pa.Table:
        return pa.Table.from_pylist(self.results, schema=RESULT_SCHEMA)

    def findings_table(self) -> pa.Table:
        return pa.Table.from_pylist([f.row() for f in self.findings], schema=FINDING_SCHEMA)


# -- evaluation ------------------------------------------------------------------------------------
def _register(con: duckdb.DuckDBPyConnection, tables: dict) -> None:
    """Every raw table as a DuckDB view (empty when not given), plus the shared views and macros."""
    for name in [*TABLES, *EXTRA_INPUTS]:
        data = tables.get(name)
        table_schema = EXTRA_INPUTS.get(name) or schema(name)
        if data is None:
            data = table_schema.empty_table()
        elif not isinstance(data, pa.Table):
            data = pa.Table.from_pylist(list(data), schema=table_schema)
        con.register(name, data)
    con.execute("""
        CREATE VIEW selected_repositories AS
            SELECT * REPLACE (coalesce(mainbranch, 'main') AS mainbranch) FROM repositories WHERE selected IS TRUE;
        CREATE VIEW evaluated_workspaces AS
            SELECT workspace FROM workspaces UNION SELECT workspace FROM selected_repositories;
    """)
    con.execute((SQL_DIR / "macros.sql").read_text())
    con.register("main_branch_restrictions", checks.main_branch_restrictions(con))


def _unreadable_index(con: duckdb.DuckDBPyConnection):
    """(row with workspace and repository_uuid, table) -> why that table was not read for it, or None."""
    index: dict[tuple, str] = {}
    for s in query(con, "SELECT * FROM extraction_status ORDER BY checked_at"):
        index.setdefault(
            (s["workspace"], s["repository_uuid"], s["table_name"]),
            f"{s['table_name']} could not be read ({s['status']}: {s['endpoint']})",
        )

    def why(row: dict, table: str) -> str | None:
        ws, uuid = row["workspace"], row.get("repository_uuid")
        if uuid is None:
            return index.get((ws, None, table))
        return index.get((ws, uuid, table)) or (index.get((ws, None, table)) if table in WORKSPACE_LISTED else None)

    return why


def _targets(check: Check, repositories: list[dict], workspaces: list[str]) -> list[dict]:
    """One key per result the check owes: each selected repository and/or each workspace."""
    rows = []
    if "repository" in check.scope:
        rows += [{k: r[k] for k in ("workspace", "repository_uuid", "repository")} for r in repositories]
    if "workspace" in check.scope:
        rows += [{"workspace": w, "repository_uuid": None, "repository": None} for w in workspaces]
    return rows


def _run(check: Check, con, ctx: checks.Context, workspaces: list[str]) -> list[dict]:
    if check.logic == "manual":
        return [
            {
                **t,
                "status": "not_evaluable",
                "evidence": "requires admin attestation: Bitbucket's REST API does not expose this setting",
            }
            for t in _targets(check, ctx.repositories, workspaces)
        ]
    try:
        if check.logic.endswith(".sql"):
            con.register("params", pa.Table.from_pylist([{"now": ctx.now, **check.params}]))
            return query(con, (SQL_DIR / check.logic).read_text())
        return checks.CHECKS[check.id](ctx, check.params)
    except Exception as exc:  # one broken check must not take the other checks' results with it
        log.exception("posture check %s failed", check.id)
        return [
            {**t, "status": "not_evaluable", "evidence": f"check failed: {type(exc).__name__}: {exc}"}
            for t in _targets(check, ctx.repositories, workspaces)
        ]


def evaluate(
    tables: dict[str, list[dict] | pa.Table], *, connection: str, now: datetime, scanned_at: datetime | None = None
) -> PostureResult:
    """Run every catalog check over one connection's raw tables (selected repositories only)."""
    checked_at = scanned_at or now
    version = scanner_version()
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")  # evidence dates in UTC whatever the machine's zone
        _register(con, tables)
        repositories = query(con, "SELECT * FROM selected_repositories ORDER BY workspace, repository")
        heads = {r["repository_uuid"]: r["main_head"] for r in repositories}
        workspaces = [r["workspace"] for r in query(con, "SELECT workspace FROM evaluated_workspaces ORDER BY 1")]
        why = _unreadable_index(con)
        ctx = checks.Context(con, now, repositories, why)
        results, findings = [], []
        for check in load_catalog():
            for row in _run(check, con, ctx, workspaces):
                if reason := next((r for table in check.requires if (r := why(row, table))), None):
                    row = {**row, "status": "not_evaluable", "evidence": reason}
                if row["status"] not in STATUSES:
                    raise ValueError(f"{check.id} returned status {row['status']!r}")
                finding = None
                if row["status"] == "fail":
                    finding = Finding(
                        scanner=SCANNER,
                        scanner_version=version,
                        rule_id=check.id,
                        title=check.title,
                        category=check.category,
                        base_severity=check.severity,
                        connection=connection,
                        workspace=row["workspace"],
                        repository_uuid=row["repository_uuid"] or "",
                        repository=row["repository"] or "",
                        anchor=row["anchor"],
                        commit=heads.get(row["repository_uuid"]),
                        file_path=row.get("file_path"),
                        evidence=row["evidence"],
                        remediation=check.remediation,
                        controls=check.control_ids,
                        scanned_at=checked_at,
                    )
                    findings.append(finding)
                results.append(
                    {
                        "connection": connection,
                        "workspace": row["workspace"],
                        "repository_uuid": row["repository_uuid"],
                        "repository": row["repository"],
                        "check_id": check.id,
                        "status": row["status"],
                        "evidence": row["evidence"],
                        "checked_at": checked_at,
                        "finding_id": finding and finding.finding_id,
                    }
                )
    finally:
        con.close()
    results.sort(key=lambda r: (r["check_id"], r["workspace"], r["repository"] or ""))
    return PostureResult(results=results, findings=findings)
