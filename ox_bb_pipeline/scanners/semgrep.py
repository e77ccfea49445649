"""SAST with semgrep and our own rules (`rules/<language>/<family>.yaml`): one offline semgrep process per batch of
snapshots (the batch's folder as one target), its results attributed back to each snapshot by path and mapped to
findings. A batch the tool fails on is split until the repository that makes it fail fails alone.
"""

from __future__ import annotations

import json
import tempfile
import textwrap
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from ..findings import SEVERITIES, Finding
from ..redaction import redact_with_anchor
from .base import (
    PACKAGE_DIR,
    BatchRoots,
    ScanOutput,
    batch_targets,
    installed_version,
    isolating_failures,
    last_line,
    rules_digest,
    run_tool,
    skipped_file,
    tool_executable,
)
from .snapshot import Snapshot

RULES_DIR = PACKAGE_DIR / "rules"
# Offline for good: without these semgrep asks semgrep.dev for a newer version and stalls ~100 s
# on a machine without network; with no --config at all it would even fetch registry rules.
OFFLINE_FLAGS = ("--metrics=off", "--disable-version-check")
OFFLINE_ENV = {"SEMGREP_ENABLE_VERSION_CHECK": "0", "SEMGREP_SEND_METRICS": "off"}
MAX_SNIPPET_LINES = 10


class SemgrepScanner:
    """Our rules over every snapshot of a batch in one semgrep run (start-up costs 10-30 s a process)."""

    name = "semgrep"
    category = "sast"

    def __init__(
        self,
        rules_dir: Path = RULES_DIR,
        *,
        timeout: float = 1800.0,
        jobs: int = 2,
        rule_timeout: float = 10.0,
        max_target_bytes: int = 1_000_000,
        tools: Path | None = None,
    ) -> None:
        self.rules_dir = Path(rules_dir)
        self.tools = tools  # the tool environments' folder (the `storage` resource's); None: tools_dir()
        self.timeout = timeout  # the whole batch
        self.jobs = jobs
        self.rule_timeout = rule_timeout  # one rule on one file
        self.max_target_bytes = max_target_bytes
        self.runs: list[list[Path]] = []  # the targets of each semgrep process this scanner started

    def rule_files(self) -> list[Path]:
        # rules/<language>/<family>.yaml; the semgrep test targets beside them are code, or *.test.yaml
        return sorted(p for p in self.rules_dir.rglob("*.yaml") if not p.name.endswith(".test.yaml"))

    def version(self) -> str:
        tool = installed_version("semgrep", ("--version", *OFFLINE_FLAGS), OFFLINE_ENV, self.tools)
        return f"semgrep {tool}+{rules_digest(*self.rule_files(), Path(__file__))}"

    def scan(self, snapshots: list[Snapshot]) -> list[ScanOutput]:
        return isolating_failures(snapshots, self._scan, self.name, self.version)

    def _scan(self, snapshots: list[Snapshot], version: str) -> list[ScanOutput]:
        """One semgrep process over `snapshots`; raises when it fails."""
        outputs = [ScanOutput(s.repo.repository_uuid) for s in snapshots]
        report = self._run([s.root for s in snapshots])
        roots = BatchRoots(snapshots)
        for path in report.get("paths", {}).get("scanned", []):
            if (owner := roots.owner(path)) is not None:
                outputs[owner[0]].files_scanned += 1
                outputs[owner[0]].bytes_scanned += Path(path).stat().st_size
        for error in report.get("errors", []):
            if (owner := roots.owner(error.get("path") or "")) is not None:
                index, rel = owner
                kind = error.get("type") or "error"  # a name, or [name, details]
                kind = kind[0] if isinstance(kind, list) else kind
                reason = f"semgrep {kind}: {error.get('message', '')}".strip()[:300]
                outputs[index].extra.setdefault("skipped_files", []).append(
                    skipped_file(snapshots[index].repo, "semgrep", rel, reason)
                )
        results: dict[int, list[tuple[str, dict]]] = {}
        for result in report.get("results", []):
            if (owner := roots.owner(result["path"])) is not None:
                results.setdefault(owner[0], []).append((owner[1], result))
        scanned_at = datetime.now(UTC)
        for index, items in results.items():
            outputs[index].findings = _findings(snapshots[index], items, version, scanned_at)
        return outputs

    def _run(self, roots: list[Path]) -> dict:
        argv = [
            str(tool_executable("semgrep", root=self.tools)),
            "scan",
            "--json",
            *OFFLINE_FLAGS,
            "--no-rewrite-rule-ids",
            # a repository must not hide code from us: its .gitignore/.semgrepignore are not honoured,
            # nor semgrep's default ignore list (which skips tests/, where secrets and bugs live too)
            "--no-git-ignore",
            "--x-ignore-semgrepignore-files",
            # installed dependencies are third-party code (the SCA scanner's subject) and slow
            "--exclude=node_modules",
            f"--jobs={self.jobs}",
            f"--timeout={self.rule_timeout:g}",
            f"--max-target-bytes={self.max_target_bytes}",
            *(f"--config={path}" for path in self.rule_files()),
        ]
        targets = batch_targets(roots)  # the batch's own folder: one target, not one per repository
        self.runs.append(targets)
        argv += [str(target) for target in targets]
        with tempfile.TemporaryDirectory(prefix="ox-semgrep-") as cwd:  # no stray config from the cwd
            proc = run_tool(argv, timeout=self.timeout, env=OFFLINE_ENV, cwd=Path(cwd))
        if proc.returncode not in (0, 1):  # 1: findings with --error; anything else is a failed run
            raise RuntimeError(f"exit code {proc.returncode}: {last_line(proc.stderr)}")
        return json.loads(proc.stdout)


def _findings(snapshot: Snapshot, items: list[tuple[str, dict]], version: str, scanned_at: datetime) -> list[Finding]:
    # the same evidence masking as bandit's findings; imported here because importing bandit loads
    # all its plugins (~3 s), which checkov.py (a user of this module's tool helpers) never needs

    findings: list[tuple[Finding, set[str]]] = []
    texts: dict[str, list[str]] = {}
    occurrences: Counter = Counter()
    for path, result in sorted(items, key=lambda i: (i[0], i[1]["start"]["line"], i[1]["check_id"])):
        meta = result["extra"].get("metadata") or {}
        start, end = result["start"]["line"], result["end"]["line"]
        # semgrep's own `extra.lines` says "requires login" since 1.100: read the lines ourselves
        lines = texts.setdefault(path, snapshot.read_text(path).splitlines())
        snippet = textwrap.dedent("\n".join(lines[start - 1 : min(end, start + MAX_SNIPPET_LINES - 1)]))
        redacted, anchor = redact_with_anchor(snippet, min_literal=1 if meta.get("mask_literals") == "all" else 9)
        occurrence = (result["check_id"], path, anchor)
        occurrences[occurrence] += 1
        if occurrences[occurrence] > 1:  # the same snippet again in the file
            anchor = f"{anchor}#{occurrences[occurrence]}"
        severity = meta.get("ox_severity")
        findings.append(
            (
                Finding.at(
                    snapshot.repo,
                    scanner="semgrep",
                    scanner_version=version,
                    rule_id=result["check_id"],
                    title=meta.get("title") or result["extra"].get("message", result["check_id"]),
                    category="sast",
                    base_severity=severity if severity in SEVERITIES else "medium",
                    anchor=anchor,
                    file_path=path,
                    start_line=start,
                    end_line=end,
                    evidence=redacted,
                    remediation=meta.get("remediation", ""),
                    cwe=meta.get("cwe"),
                    controls=list(meta.get("controls") or []),
                    scanned_at=scanned_at,
                ),
                set(meta.get("supersedes") or []),
            )
        )
    return _without_superseded(findings)


def _without_superseded(findings: list[tuple[Finding, set[str]]]) -> list[Finding]:
    """Drop a general finding where a more specific rule that `supersedes` it matched the same lines
    (MD5 over a password is one finding, the password one, not also "MD5 used")."""
    specific = [(f, replaced) for f, replaced in findings if replaced]

    def superseded(f: Finding) -> bool:
        return any(
            f.rule_id in replaced
            and g.file_path == f.file_path
            and g.start_line <= f.end_line
            and f.start_line <= g.end_line
            for g, replaced in specific
        )

    return [f for f, _ in findings if not superseded(f)]
