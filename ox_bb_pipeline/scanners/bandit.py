"""SAST for Python: bandit as a library over each snapshot's Python files, with our own severities
(severity/bandit.yaml) and snippet-anchored fingerprints. String literals long enough to be secrets
are masked in evidence and never enter a fingerprint unsalted.
"""

from __future__ import annotations

import logging
import textwrap
from collections import Counter
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path, PurePosixPath

import bandit
from bandit.core import config as bandit_config
from bandit.core import docs_utils
from bandit.core import manager as bandit_manager

from ..findings import Finding
from ..redaction import redact_snippet, redact_with_anchor
from .base import SEVERITY_DIR, ScanOutput, rules_digest, severity_table, skipped_file
from .snapshot import Snapshot

CONTROLS = ["CIS-SSC-1.5.4", "SSDF-PW.7.2"]
PYTHON_SUFFIXES = (".py", ".pyw")
MAX_SNIPPET_LINES = 10

# Checks that are noise in test code: tests assert on purpose, use throwaway passwords, temp paths
# and non-cryptographic randomness. Real secrets in tests are still reported by the secrets scanner
# (and lowered later by the test-path severity factor).
TEST_ONLY_NOISE = frozenset({"B101", "B105", "B106", "B107", "B108", "B311"})
TEST_DIRS = frozenset({"test", "tests", "testing", "fixtures", "examples"})

# bandit's hard-coded password checks point at lines holding the secret: mask every literal there.
PASSWORD_TESTS = frozenset({"B105", "B106", "B107"})

# bandit logs at INFO and draws a progress bar past 50 files when its logger allows INFO: console
# noise inside a pipeline run. Warnings (files it could not parse) still come through.
logging.getLogger("bandit").setLevel(logging.WARNING)


@lru_cache(maxsize=1)
def scanner_version() -> str:
    """bandit's version + a digest of this module and the severity table."""
    return f"bandit {bandit.__version__}+{rules_digest(Path(__file__), SEVERITY_DIR / 'bandit.yaml')}"


class BanditScanner:
    """bandit's default test set over `*.py` / `*.pyw`, in-process; `# nosec` comments are honoured."""

    name = "bandit"
    category = "sast"

    def version(self) -> str:
        return scanner_version()

    def scan(self, snapshots: list[Snapshot]) -> list[ScanOutput]:
        return [self._scan_snapshot(snapshot) for snapshot in snapshots]

    def _scan_snapshot(self, snapshot: Snapshot) -> ScanOutput:
        output = ScanOutput(snapshot.repo.repository_uuid)
        files = [f for f in snapshot.files if f.path.endswith(PYTHON_SUFFIXES)]
        if not files:
            return output
        root = snapshot.root.absolute()  # bandit reports the names it was given; make them easy to relativise
        try:
            manager = bandit_manager.BanditManager(bandit_config.BanditConfig(), "file", quiet=True)
            manager.discover_files([str(root / f.path) for f in files])
            manager.run_tests()
        except Exception as exc:  # noqa: BLE001 - a bandit failure is this snapshot's error, not the run's
            output.error = f"bandit failed: {type(exc).__name__}: {exc}"
            return output
        skipped = {Path(name).relative_to(root).as_posix(): reason for name, reason in manager.get_skipped()}
        output.files_scanned = len(files) - len(skipped)
        output.bytes_scanned = sum(f.size for f in files if f.path not in skipped)
        if skipped:
            output.extra["skipped_files"] = [
                skipped_file(snapshot.repo, "bandit", path, why) for path, why in sorted(skipped.items())
            ]
        output.findings = _findings(snapshot, root, manager.get_issue_list(), datetime.now(UTC))
        return output


def _findings(snapshot: Snapshot, root: Path, issues, scanned_at: datetime) -> list[Finding]:
    findings: list[Finding] = []
    texts: dict[str, list[str]] = {}
    occurrences: Counter = Counter()
    for issue in sorted(issues, key=lambda i: (i.fname, i.lineno, i.test_id)):
        path = Path(issue.fname).relative_to(root).as_posix()
        if issue.test_id in TEST_ONLY_NOISE and is_test_path(path):
            continue
        lines = texts.setdefault(path, snapshot.read_text(path).splitlines())
        start = min(issue.linerange or [issue.lineno])
        end = min(max(issue.linerange or [issue.lineno]), start + MAX_SNIPPET_LINES - 1)
        snippet = textwrap.dedent("\n".join(lines[start - 1 : end]))
        redacted, anchor = redact_with_anchor(snippet, min_literal=1 if issue.test_id in PASSWORD_TESTS else 9)
        occurrence = (issue.test_id, path, anchor)
        occurrences[occurrence] += 1
        if occurrences[occurrence] > 1:  # the same snippet again in the file
            anchor = f"{anchor}#{occurrences[occurrence]}"
        entry = severity_table("bandit").get(issue.test_id, {})
        # bandit's own message quotes the literal for the password tests; elsewhere it is fixed text.
        message = "" if issue.test_id in PASSWORD_TESTS else redact_snippet(issue.text) + "\n"
        findings.append(
            Finding.at(
                snapshot.repo,
                scanner="bandit",
                scanner_version=scanner_version(),
                rule_id=issue.test_id,
                title=entry.get("title") or f"{issue.test_id} {issue.test}".replace("_", " "),
                category="sast",
                base_severity=severity_for(issue.test_id, issue.severity, issue.confidence),
                anchor=anchor,
                file_path=path,
                start_line=start,
                end_line=end,
                evidence=message + redacted,
                remediation=_remediation(issue.test_id, entry),
                cwe=f"CWE-{issue.cwe.id}" if issue.cwe.id else None,
                controls=CONTROLS,
                scanned_at=scanned_at,
            )
        )
    return findings


def severity_for(test_id: str, severity: str, confidence: str) -> str:
    """Our severity for a bandit test: the table's entry, else bandit's severity x confidence."""
    table = severity_table("bandit")
    if test_id in table:
        return table[test_id]["severity"]
    return table["default"]["severity"][severity.upper()][confidence.upper()]


def _remediation(test_id: str, entry: dict) -> str:
    text = entry.get("remediation") or severity_table("bandit")["default"]["remediation"]
    return f"{text} See {docs_utils.get_url(test_id)}"


def is_test_path(path: str) -> bool:
    """Under a tests/, fixtures/ or examples/ folder, or a pytest-style test module."""
    parts = PurePosixPath(path).parts
    name = parts[-1]
    return (
        any(part in TEST_DIRS for part in parts[:-1])
        or name.startswith("test_")
        or name.endswith("_test.py")
        or name == "conftest.py"
    )
