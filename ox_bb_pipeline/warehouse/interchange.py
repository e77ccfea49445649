"""The interchange formats security tools import, written from the built warehouse: SARIF 2.1.0 (GitHub code
scanning, DefectDojo) per repository or application, and CycloneDX 1.6 SBOMs with their vulnerabilities per
repository. Each file is written atomically under `OX_BB_HOME/exports/sarif|cyclonedx/`.

Only what identifies and explains a finding is exported: its rule, title, location, severity and remediation.
Never its evidence: even redacted, it is the one column derived from what was found (a secret's masked
preview), and a tool that imports findings needs none of it.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import duckdb
from cyclonedx.model import Property
from cyclonedx.model.impact_analysis import ImpactAnalysisResponse, ImpactAnalysisState
from cyclonedx.model.vulnerability import (
    BomTarget,
    Vulnerability,
    VulnerabilityAnalysis,
    VulnerabilityRating,
    VulnerabilityScoreSource,
    VulnerabilitySeverity,
)

from ..files import atomic_write_text
from ..scanners.sca import cyclonedx_bom, cyclonedx_output
from .exports import open_warehouse

FORMATS = ("sarif", "cyclonedx")
SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
# What is still to act on, and what a person decided not to (exported as suppressed, so an importing tool
# shows it dismissed instead of raising it again).
EXPORTED_STATUSES = ("new", "open", "reopened", "suppressed")
# GitHub code scanning reads `security-severity` (0-10) and bands it: >= 9 critical, >= 7 high, >= 4 medium.
SECURITY_SEVERITY = {"critical": 9.5, "high": 8.0, "medium": 5.5, "low": 2.0, "info": 0.0}
LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
FINGERPRINT_KEY = "oxBbFindingId/v1"


class ExportError(ValueError):
    """Nothing to export for what was asked (e.g. an unknown application)."""


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    result = con.execute(sql, params or [])
    names = [d[0] for d in result.description]
    return [dict(zip(names, row)) for row in result.fetchall()]


def exported_findings(con: duckdb.DuckDBPyConnection, application: str | None = None) -> list[dict]:
    """The queue's findings to export (open or suppressed), with their location and remediation; no evidence."""
    statuses = ", ".join(f"'{s}'" for s in EXPORTED_STATUSES)
    where = f"q.status IN ({statuses})" + (" AND q.application = ?" if application else "")
    return _rows(
        con,
        f"""
        SELECT q.finding_id, q.status, q.application, q.workspace, q.repository, q.repository_uuid,
               q.repository_full_name,
               q.scanner, q.rule_id, q.title, q.category, q.file_path, q.final_severity, q.severity_explanation,
               q.suppression_id, q.suppression_reason, q.suppression_owner, q.suppression_expires,
               q.triage_status, q.triage_reason,
               f.scanner_version, f.commit, f.start_line, f.end_line, f.remediation, f.cwe, f.package, f.version,
               f.fixed_version, f.vulnerability_ids, f.cvss_score, f.cvss_vector
        FROM findings_queue AS q
        LEFT JOIN findings AS f USING (finding_id)
        WHERE {where}
        ORDER BY q.workspace, q.repository, q.scanner, q.rule_id, q.file_path, f.start_line, q.finding_id
    """,
        [application] if application else [],
    )


def _known_application(con: duckdb.DuckDBPyConnection, application: str) -> None:
    names = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT application FROM findings_queue WHERE application IS NOT NULL ORDER BY 1"
        ).fetchall()
    ]
    if application not in names:
        shown = ", ".join(names[:20]) + (", …" if len(names) > 20 else "")
        raise ExportError(
            f"no application {application!r} in the warehouse's findings_queue; "
            f"known: {shown or '(none)'} (see applications.yaml)"
        )


# -- SARIF ------------------------------------------------------------------------------------------------
def sarif_log(findings: list[dict]) -> dict:
    """A SARIF 2.1.0 log: one run per repository and scanner (GitHub keeps one analysis per
    automationDetails.id, so each repository and scanner replaces only its own earlier upload)."""
    runs: dict[tuple[str, str], list[dict]] = {}
    for row in findings:
        runs.setdefault((row["repository_full_name"], row["scanner"]), []).append(row)
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [_sarif_run(repository, scanner, rows) for (repository, scanner), rows in runs.items()],
    }


def _sarif_run(repository: str, scanner: str, rows: list[dict]) -> dict:
    rules: dict[str, dict] = {}
    for row in rows:
        rule = rules.setdefault(row["rule_id"], {"row": row, "severity": row["final_severity"]})
        if SECURITY_SEVERITY[row["final_severity"]] > SECURITY_SEVERITY[rule["severity"]]:
            rule["severity"] = row["final_severity"]
    index = {rule_id: i for i, rule_id in enumerate(rules)}
    versions = sorted({r["scanner_version"] for r in rows if r["scanner_version"]})
    driver = {
        "name": f"ox-bb {scanner}",
        "rules": [_sarif_rule(rule_id, r["row"], r["severity"]) for rule_id, r in rules.items()],
    }
    if versions:
        driver["version"] = versions[-1]
    run = {
        "tool": {"driver": driver},
        "automationDetails": {"id": f"ox-bb/{scanner}/{repository}/"},
        "originalUriBaseIds": {"SRCROOT": {"description": {"text": f"the root of repository {repository}"}}},
        "results": [_sarif_result(row, index[row["rule_id"]]) for row in rows],
    }
    commits = sorted({r["commit"] for r in rows if r["commit"]})
    if commits:
        run["properties"] = {"repository": repository, "commits": commits}
    return run


def _sarif_rule(rule_id: str, row: dict, severity: str) -> dict:
    tags = ["security", row["category"]]
    if row["cwe"]:
        number = re.sub(r"\D", "", row["cwe"])
        if number:
            tags.append(f"external/cwe/cwe-{number}")
    rule = {
        "id": rule_id,
        "name": rule_id,
        "shortDescription": {"text": row["title"] or rule_id},
        "defaultConfiguration": {"level": LEVEL[severity]},
        "properties": {
            "tags": tags,
            "security-severity": f"{SECURITY_SEVERITY[severity]:.1f}",
            "precision": "high" if row["scanner"] in ("secrets", "sca", "posture") else "medium",
        },
    }
    if row["remediation"]:
        rule["help"] = {"text": row["remediation"]}
    return rule


def _sarif_result(row: dict, rule_index: int) -> dict:
    result = {
        "ruleId": row["rule_id"],
        "ruleIndex": rule_index,
        "level": LEVEL[row["final_severity"]],
        "message": {"text": row["title"] or row["rule_id"]},
        "locations": [_sarif_location(row)],
        "partialFingerprints": {FINGERPRINT_KEY: row["finding_id"]},
        "properties": {
            "security-severity": f"{SECURITY_SEVERITY[row['final_severity']]:.1f}",
            "severity": row["final_severity"],
            "status": row["status"],
            "application": row["application"],
            "repository": row["repository_full_name"],
            "severityExplanation": row["severity_explanation"] or "",
        },
    }
    if row["status"] == "suppressed":
        result["suppressions"] = [{"kind": "external", "status": "accepted", "justification": _justification(row)}]
    return result


def _justification(row: dict) -> str:
    """Why a suppressed finding is: its triage decision when it has an active one, else suppressions.yaml's."""
    if row["triage_status"] in ("false_positive", "accepted_risk") and not row["suppression_reason"]:
        return f"{row['triage_status'].replace('_', ' ')}: {row['triage_reason']}"
    return row["suppression_reason"] or "suppressed"


def _sarif_location(row: dict) -> dict:
    """A file and line; a setting (posture) has no file, so it is placed at the repository as a logical location."""
    if not row["file_path"]:
        return {"logicalLocations": [{"fullyQualifiedName": row["repository_full_name"], "kind": "module"}]}
    physical = {"artifactLocation": {"uri": row["file_path"], "uriBaseId": "SRCROOT"}}
    if row["start_line"] and row["start_line"] > 0:
        region = {"startLine": int(row["start_line"])}
        if row["end_line"] and row["end_line"] >= row["start_line"]:
            region["endLine"] = int(row["end_line"])
        physical["region"] = region
    return {"physicalLocation": physical}


# -- CycloneDX --------------------------------------------------------------------------------------------
def cyclonedx_documents(con: duckdb.DuckDBPyConnection, application: str | None = None) -> dict[str, str]:
    """repository full name -> a CycloneDX 1.6 JSON SBOM of its components with its SCA vulnerabilities
    (suppressed ones carry their analysis). Repositories of `application` only, when given."""
    vulnerabilities: dict[str, list[dict]] = {}
    for row in exported_findings(con, application):
        if row["scanner"] == "sca":
            vulnerabilities.setdefault(row["repository_uuid"], []).append(row)
    repositories = _rows(
        con,
        """
        SELECT DISTINCT c.repository_uuid FROM components AS c
        WHERE ? IS NULL OR c.repository_uuid IN (SELECT repository_uuid FROM findings_queue WHERE application = ?)
           OR c.repository_uuid IN (SELECT repository_uuid FROM application_mapping WHERE application = ?)
        ORDER BY 1""",
        [application] * 3,
    )
    documents = {}
    for repo in repositories:
        components = _rows(
            con,
            """
            SELECT * FROM components WHERE repository_uuid = ?
            -- one commit per repository (two connections may have scanned different heads): the greatest
            QUALIFY commit = max(commit) OVER () ORDER BY purl, manifest""",
            [repo["repository_uuid"]],
        )
        bom = cyclonedx_bom(components)
        refs = {(c["name"], c["version"]): c["purl"] for c in components}
        for row in vulnerabilities.get(repo["repository_uuid"], []):
            bom.vulnerabilities.add(_cdx_vulnerability(row, refs))
        first = components[0]
        documents[f"{first['workspace']}/{first['repository']}"] = cyclonedx_output(bom)
    return documents


def _cdx_vulnerability(row: dict, refs: dict[tuple[str, str], str]) -> Vulnerability:
    ids = row["vulnerability_ids"] or [row["rule_id"]]
    rating = VulnerabilityRating(
        severity=VulnerabilitySeverity(row["final_severity"]),
        method=VulnerabilityScoreSource.OTHER,
        justification=row["severity_explanation"],
    )
    ratings = [rating]
    if row["cvss_score"] is not None:
        method = (
            VulnerabilityScoreSource.CVSS_V4
            if (row["cvss_vector"] or "").startswith("CVSS:4")
            else VulnerabilityScoreSource.CVSS_V3_1
            if (row["cvss_vector"] or "").startswith("CVSS:3.1")
            else VulnerabilityScoreSource.CVSS_V3
            if (row["cvss_vector"] or "").startswith("CVSS:3")
            else VulnerabilityScoreSource.CVSS_V2
            if row["cvss_vector"]
            else VulnerabilityScoreSource.OTHER
        )
        ratings.append(
            VulnerabilityRating(score=Decimal(str(row["cvss_score"])), method=method, vector=row["cvss_vector"])
        )
    cwes = [int(n) for n in re.findall(r"\d+", row["cwe"] or "")][:1]
    ref = refs.get((row["package"], row["version"]))
    analysis = None
    if row["status"] == "suppressed" and row["triage_status"] == "false_positive":
        analysis = VulnerabilityAnalysis(state=ImpactAnalysisState.FALSE_POSITIVE, detail=_justification(row))
    elif row["status"] == "suppressed":
        analysis = VulnerabilityAnalysis(
            state=ImpactAnalysisState.EXPLOITABLE,
            responses=[ImpactAnalysisResponse.WILL_NOT_FIX],
            detail=_justification(row),
        )
    return Vulnerability(
        bom_ref=row["finding_id"],
        id=ids[0],
        description=row["title"],
        recommendation=row["remediation"],
        ratings=ratings,
        cwes=cwes,
        analysis=analysis,
        affects=[BomTarget(ref=ref)] if ref else None,
        properties=[
            Property(name="ox-bb:finding_id", value=row["finding_id"]),
            Property(name="ox-bb:status", value=row["status"]),
            *(Property(name="ox-bb:alias", value=alias) for alias in ids[1:]),
        ],
    )


# -- files ------------------------------------------------------------------------------------------------
def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name.replace("/", "+")).strip("_") or "unnamed"


def export(fmt: str, *, home: Path, application: str | None = None, out: Path | None = None) -> list[Path]:
    """Write `fmt` files from the warehouse into `out` (default <home>/exports/<fmt>/).

    sarif: one log per repository (`<workspace>+<slug>.sarif`), or with `application` one log for it
    (`<application>.sarif`, a run per repository and scanner). cyclonedx: one SBOM per repository
    (`<workspace>+<slug>.cdx.json`), of the application's repositories when `application` is given."""
    if fmt not in FORMATS:
        raise ExportError(f"export format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    out = out or home / "exports" / fmt
    con = open_warehouse(home)
    try:
        if application:
            _known_application(con, application)
        if fmt == "sarif":
            findings = exported_findings(con, application)
            if application:
                documents = {f"{_safe(application)}.sarif": json.dumps(sarif_log(findings), indent=2)}
            else:
                by_repository: dict[str, list[dict]] = {}
                for row in findings:
                    by_repository.setdefault(row["repository_full_name"], []).append(row)
                documents = {
                    f"{_safe(name)}.sarif": json.dumps(sarif_log(rows), indent=2)
                    for name, rows in by_repository.items()
                }
        else:
            documents = {
                f"{_safe(name)}.cdx.json": text for name, text in cyclonedx_documents(con, application).items()
            }
    finally:
        con.close()
    return [atomic_write_text(out / name, text) for name, text in sorted(documents.items())]
