"""SARIF 2.1.0 import: results of other tools (containers, cloud, runtime…) dropped into
`OX_BB_HOME/imports/<connection>/<workspace>/<repo_slug>/*.sarif` become findings in the same queue.

The tool's own fingerprints are the identity when it gives them; a bad file is reported by name and
never stops the import of the others.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..findings import Finding, RepoRef, normalise_snippet
from ..redaction import redact_snippet, redact_url, salted_hash
from .secrets import redact_text

SARIF_VERSION = "2.1.0"
SARIF_SUFFIXES = (".sarif", ".sarif.json")
LEVEL_SEVERITY = {"error": "high", "warning": "medium", "note": "low", "none": "info"}
SKIPPED_KINDS = frozenset({"pass", "notApplicable"})
MAX_TEXT = 2000  # evidence and remediation: help texts can run to pages

_CWE_TAG = re.compile(r"(?:^|/)cwe[-/:]?0*(\d+)$", re.IGNORECASE)


class SarifError(ValueError):
    """A file that is not usable SARIF 2.1.0; the message names the file."""


@dataclass
class SarifImport:
    findings: list[Finding] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # imported without error
    errors: dict[str, str] = field(default_factory=dict)  # file -> why it was not imported


def import_directory(imports_root: Path, repo_lookup: Mapping[tuple[str, str, str], RepoRef]) -> SarifImport:
    """Every `<connection>/<workspace>/<repo_slug>/*.sarif` under imports_root. Files in the wrong
    place, for a repository `repo_lookup` does not know, or malformed, are listed in `errors`."""
    result = SarifImport()
    root = Path(imports_root)
    if not root.is_dir():
        return result
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(SARIF_SUFFIXES)):
        where = path.relative_to(root).parts
        if len(where) != 4:
            result.errors[str(path)] = "not under <connection>/<workspace>/<repo_slug>/"
            continue
        repo = repo_lookup.get(where[:3])
        if repo is None:
            result.errors[str(path)] = f"unknown repository {'/'.join(where[:3])}"
            continue
        try:
            result.findings += import_sarif(path, repo)
        except SarifError as exc:
            result.errors[str(path)] = str(exc)
            continue
        result.files.append(str(path))
    return result


def import_sarif(path: Path, repo: RepoRef) -> list[Finding]:
    """The findings of one SARIF 2.1.0 log, for `repo`. Raises SarifError naming the file."""
    path = Path(path)
    try:
        log = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SarifError(f"{path}: not readable as JSON ({type(exc).__name__}: {exc})") from exc
    if not isinstance(log, dict) or not isinstance(log.get("runs"), list):
        raise SarifError(f"{path}: not a SARIF log (no `runs` list)")
    if log.get("version") != SARIF_VERSION:
        raise SarifError(f"{path}: SARIF version {log.get('version')!r}, expected {SARIF_VERSION!r}")
    scanned_at = datetime.now(UTC)
    findings: list[Finding] = []
    try:
        for run in log["runs"]:
            findings += _run_findings(run, repo, scanned_at)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        raise SarifError(f"{path}: malformed SARIF run or result ({type(exc).__name__}: {exc})") from exc
    return findings


def _run_findings(run: dict, repo: RepoRef, scanned_at: datetime) -> list[Finding]:
    tool = run["tool"]
    driver = tool["driver"]
    scanner = driver["name"]
    version = driver.get("semanticVersion") or driver.get("version") or ""
    extensions = tool.get("extensions") or []
    by_id = {rule["id"]: rule for component in [driver, *extensions] for rule in component.get("rules") or []}
    base_uris = {
        name: _uri_path((value or {}).get("uri", "")) for name, value in (run.get("originalUriBaseIds") or {}).items()
    }
    artifacts = run.get("artifacts") or []
    commit = (
        next((p.get("revisionId") for p in run.get("versionControlProvenance") or [] if p.get("revisionId")), None)
        or repo.commit
    )
    findings = []
    occurrences: Counter = Counter()
    for result in run.get("results") or []:
        if (
            result.get("kind", "fail") in SKIPPED_KINDS
            or _suppressed(result)
            or result.get("baselineState") == "absent"
        ):  # absent: gone since the tool's baseline
            continue
        rule = _rule_of(result, driver, extensions, by_id)
        rule_id = result.get("ruleId") or (result.get("rule") or {}).get("id") or rule.get("id")
        if not rule_id:
            raise ValueError("a result has no ruleId, rule.id or ruleIndex")
        message = _text(result.get("message")) or _text(rule.get("shortDescription")) or rule_id
        location = _location(result, base_uris, artifacts)
        help_uri = rule.get("helpUri") and f"See {redact_url(rule['helpUri'])}"
        remediation = " ".join(filter(None, [_safe(_text(rule.get("help"))), help_uri]))
        # Other tools' texts may quote a secret (a secrets scanner's, say): every one is masked.
        evidence, anchor = _redact_with_anchor(message)
        if location["snippet"]:
            snippet, anchor = _redact_with_anchor(location["snippet"])
            evidence += f"\n{snippet}"
        anchor = f"{scanner}\x1f{_tool_anchor(result) or anchor}"  # two tools' rule ids never share identity
        occurrence = (rule_id, location["path"], anchor)
        occurrences[occurrence] += 1
        if occurrences[occurrence] > 1:  # the same rule, file and anchor again: number it
            anchor = f"{anchor}#{occurrences[occurrence]}"
        findings.append(
            Finding.at(
                repo,
                commit=commit,
                scanner=scanner,
                scanner_version=version,
                rule_id=rule_id,
                title=_safe(_text(rule.get("shortDescription")) or str(rule.get("name") or ""))
                or evidence.splitlines()[0][:200],
                category="external",
                base_severity=_severity(result, rule),
                anchor=anchor,
                file_path=location["path"],
                start_line=location["start_line"],
                end_line=location["end_line"],
                evidence=evidence[:MAX_TEXT],
                remediation=remediation[:MAX_TEXT],
                cwe=_cwe(rule, result),
                scanned_at=scanned_at,
            )
        )
    return findings


@lru_cache(maxsize=4096)  # rule texts repeat for every result of the rule
def _safe(text: str) -> str:
    """Another tool's text, fit to store: quoted literals and random-looking tokens are masked, then what
    detect-secrets still recognises (an unquoted keyword assignment, say)."""
    return redact_text(redact_snippet(text))[0] if text else text


def _redact_with_anchor(text: str) -> tuple[str, str]:
    """`redact_with_anchor` with detect-secrets too: the anchor is salted-hashed whenever anything was masked."""
    safe = _safe(text)
    anchor = normalise_snippet(text)
    return safe, anchor if safe == text else salted_hash(anchor)


def _rule_of(result: dict, driver: dict, extensions: list[dict], by_id: dict[str, dict]) -> dict:
    """The reporting descriptor, by index (into the driver or the extension named by toolComponent)
    or by id; `{}` when the tool ships no rule metadata."""
    reference = result.get("rule") or {}
    index = reference.get("index", result.get("ruleIndex"))
    component = driver
    if "toolComponent" in reference and "index" in reference["toolComponent"]:
        component = extensions[reference["toolComponent"]["index"]]
    if isinstance(index, int) and index >= 0:
        return component["rules"][index]
    rule_id = result.get("ruleId") or reference.get("id") or ""
    # A hierarchical id ("CA2000/1") names a sub-rule of the descriptor "CA2000".
    return by_id.get(rule_id) or by_id.get(rule_id.split("/")[0]) or {}


def _suppressed(result: dict) -> bool:
    """Suppressed in source or externally; a suppression under review or rejected does not count."""
    return any(s.get("status", "accepted") == "accepted" for s in result.get("suppressions") or [])


def _severity(result: dict, rule: dict) -> str:
    """`security-severity` first (GitHub's bands), else the level (result, then rule default, else warning)."""
    for properties in (result.get("properties") or {}, rule.get("properties") or {}):
        if "security-severity" in properties:
            try:
                score = float(properties["security-severity"])
            except (TypeError, ValueError):
                continue
            return (
                "critical"
                if score >= 9
                else "high"
                if score >= 7
                else "medium"
                if score >= 4
                else "low"
                if score > 0
                else "info"
            )
    level = result.get("level") or (rule.get("defaultConfiguration") or {}).get("level")
    if level is None and result.get("kind", "fail") != "fail":
        level = "none"  # review / open / informational results default to level none
    return LEVEL_SEVERITY.get(level or "warning", "medium")


def _cwe(rule: dict, result: dict) -> str | None:
    for properties in (rule.get("properties") or {}, result.get("properties") or {}):
        for tag in properties.get("tags") or []:
            match = _CWE_TAG.search(str(tag))
            if match:
                return f"CWE-{int(match.group(1))}"
    return None


def _location(result: dict, base_uris: dict[str, str], artifacts: list[dict]) -> dict:
    physical = ((result.get("locations") or [{}])[0] or {}).get("physicalLocation") or {}
    artifact = physical.get("artifactLocation") or {}
    uri = artifact.get("uri")
    if uri is None and isinstance(artifact.get("index"), int):
        uri = artifacts[artifact["index"]]["location"]["uri"]
    path = _uri_path(uri) if uri else None
    base = base_uris.get(artifact.get("uriBaseId", ""), "")
    if path and base and path.startswith(base.rstrip("/") + "/"):
        path = path[len(base.rstrip("/")) + 1 :]
    region = physical.get("region") or {}
    start = region.get("startLine")
    return {
        "path": path or None,
        "start_line": start,
        "end_line": region.get("endLine", start),
        "snippet": _text(region.get("snippet")),
    }


def _uri_path(uri: str) -> str:
    """A repository path from an artifact URI: `file://` scheme dropped, percent-escapes decoded."""
    parsed = urlparse(uri)
    return unquote(parsed.path if parsed.scheme == "file" else uri)


def _tool_anchor(result: dict) -> str | None:
    """The tool's own fingerprints, stable across its runs by design; preferred over the snippet
    (then the message) whenever present."""
    for key in ("fingerprints", "partialFingerprints"):
        if result.get(key):
            return f"{key}:" + ";".join(f"{k}={v}" for k, v in sorted(result[key].items()))
    return None


def _text(message: dict | None) -> str:
    return ((message or {}).get("text") or "").strip()
