"""IaC misconfigurations with checkov: one offline checkov process per batch of snapshots (one `-d`: the batch's
folder; checkov sets up per `-d`), failed checks mapped to findings with our own severity per check id
(severity/checkov.yaml). A batch the tool fails on is split until the repository that makes it fail fails alone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from ..findings import Finding
from .base import (
    SEVERITY_DIR,
    YAML_ALIAS_LIMIT,
    BatchRoots,
    ScanOutput,
    batch_targets,
    installed_version,
    isolating_failures,
    last_line,
    rules_digest,
    run_tool,
    severity_table,
    skipped_file,
    tool_executable,
    yaml_alias_expansion,
)
from .snapshot import Snapshot

# bitbucket_pipelines is left out on purpose: its only check (a ":latest" image) is a weaker copy of
# posture check BB-027, which also flags untagged and undigested images.
FRAMEWORKS = ("terraform", "cloudformation", "kubernetes", "dockerfile")
TOOL_ENV = {
    "BC_SKIP_MAPPING": "TRUE",  # no id mapping download from the Prisma platform
    "LOG_LEVEL": "ERROR",
    # checkov drops every directory whose name starts with "." by default; repositories keep
    # manifests in .deploy/ or .devcontainer/ too. Only .git (and tool caches) stay out.
    "CKV_IGNORE_HIDDEN_DIRECTORIES": "False",
    "CKV_IGNORED_DIRECTORIES": ".git,node_modules,.terraform,.serverless",
}
RESULT_KINDS = ("failed_checks", "passed_checks", "skipped_checks")
YAML_SUFFIXES = (".yml", ".yaml", ".template")  # what checkov's Kubernetes and CloudFormation runners load
_LINE_SPAN = re.compile(r"\[\d+:\d+\]$")


class CheckovScanner:
    """checkov over every snapshot of a batch in one run (start-up alone costs 15-25 s a process)."""

    name = "checkov"
    category = "iac"

    def __init__(
        self, *, timeout: float = 1800.0, workers: int = 2, helm: str | None = None, tools: Path | None = None
    ) -> None:
        self.tools = tools  # the tool environments' folder (the `storage` resource's); None: tools_dir()
        self.timeout = timeout
        self.workers = workers
        # Helm charts are rendered with the helm binary; without it checkov skips them silently.
        self.helm = helm or shutil.which("helm")
        self.runs: list[list[Path]] = []  # the `-d` folders of each checkov process this scanner started

    def version(self) -> str:
        tool = installed_version("checkov", root=self.tools)
        return f"checkov {tool}+{rules_digest(SEVERITY_DIR / 'checkov.yaml', Path(__file__))}"

    def frameworks(self) -> tuple[str, ...]:
        return (*FRAMEWORKS, "helm") if self.helm else FRAMEWORKS

    def scan(self, snapshots: list[Snapshot]) -> list[ScanOutput]:
        return isolating_failures(snapshots, self._scan, self.name, self.version)

    def _scan(self, snapshots: list[Snapshot], version: str) -> list[ScanOutput]:
        """One checkov process over `snapshots`; raises when it fails."""
        outputs = [ScanOutput(s.repo.repository_uuid) for s in snapshots]
        bombs = [yaml_bombs(s) for s in snapshots]
        targets = batch_targets([s.root for s in snapshots])
        reports = self._run(targets, [s.root.resolve() / path for s, paths in zip(snapshots, bombs) for path in paths])
        roots = BatchRoots(snapshots)
        checks: dict[int, list[dict]] = {}
        files: dict[int, set[str]] = {}
        parse_errors: dict[int, set[str]] = {}
        for report in reports:
            results = report.get("results") or {}
            for kind in RESULT_KINDS:
                for check in results.get(kind) or []:
                    if (owner := roots.owner(check.get("file_abs_path") or "")) is None:
                        continue
                    index, rel = owner
                    files.setdefault(index, set()).add(rel)
                    if kind == "failed_checks":
                        checks.setdefault(index, []).append(check | {"_path": rel})
            for path in results.get("parsing_errors") or []:
                if (owner := roots.owner(path)) is not None:
                    parse_errors.setdefault(owner[0], set()).add(owner[1])
        scanned_at = datetime.now(UTC)
        for index, (snapshot, output) in enumerate(zip(snapshots, outputs)):
            evaluated = files.get(index, set())
            output.files_scanned = len(evaluated)
            output.bytes_scanned = sum(
                (snapshot.root / rel).stat().st_size for rel in evaluated if (snapshot.root / rel).is_file()
            )
            output.findings = _findings(snapshot, checks.get(index, []), version, scanned_at, targets)
            skipped = [
                skipped_file(snapshot.repo, self.name, rel, "checkov could not parse the file")
                for rel in sorted(parse_errors.get(index, ()))
            ]
            skipped += [
                skipped_file(
                    snapshot.repo,
                    self.name,
                    rel,
                    f"YAML whose aliases expand past {YAML_ALIAS_LIMIT:,} nodes (a YAML bomb?): not given to checkov",
                )
                for rel in bombs[index]
            ]
            if not self.helm:
                skipped += [
                    skipped_file(
                        snapshot.repo,
                        self.name,
                        rel,
                        "Helm chart template not rendered: no helm binary (semgrep's ox.helm.* rules read it as text)",
                    )
                    for rel in helm_templates(snapshot)
                ]
            if skipped:
                output.extra["skipped_files"] = skipped
        return outputs

    def _run(self, targets: list[Path], skip: list[Path] = ()) -> list[dict]:
        argv = [str(tool_executable("checkov", root=self.tools))]
        self.runs.append(targets)
        for target in targets:  # the batch's own folder: one `-d`, not one per repository (batch_targets)
            argv += ["-d", str(target)]
        for path in skip:  # a regular expression searched in each absolute path checkov walks
            argv += ["--skip-path", re.escape(str(path)) + "$"]
        argv += ["--framework", *self.frameworks(), "--skip-download", "--soft-fail"]
        env = {**TOOL_ENV, "CHECKOV_WORKERS_NUMBER": str(self.workers)}
        if self.helm:
            env["PATH"] = f"{Path(self.helm).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        # Run outside the repositories: checkov reads a .checkov.yaml from its working directory.
        # With several -d, checkov prints a report per directory on stdout, each repeating all the
        # earlier ones (output grows with the square of the batch); the file holds the final one.
        with tempfile.TemporaryDirectory(prefix="ox-checkov-") as work:
            proc = run_tool(
                [*argv, "--output", "json", "--output-file-path", work],
                timeout=self.timeout,
                env=env,
                cwd=Path(work),
                keep_stdout=False,
            )
            if proc.returncode != 0:  # --soft-fail: failed checks exit 0, anything else is a crash
                raise RuntimeError(f"exit code {proc.returncode}: {last_line(proc.stderr)}")
            report = json.loads((Path(work) / "results_json.json").read_text())
        return report if isinstance(report, list) else [report]  # a list holds one report per framework


def _findings(
    snapshot: Snapshot, checks: list[dict], version: str, scanned_at: datetime, targets: list[Path] = ()
) -> list[Finding]:
    table = severity_table("checkov")
    default = table["default"]
    root = str(snapshot.root.resolve())
    # some frameworks name a resource by its path from the `-d` folder: from the batch's folder, that path
    # starts with the checkout's place in it (`/<workspace>/<slug>/<commit>/Dockerfile.FROM`)
    within = next(
        (snapshot.root.resolve().relative_to(t) for t in targets if snapshot.root.resolve().is_relative_to(t)), None
    )
    prefix = within.as_posix() if within is not None and within.parts else ""
    findings: list[Finding] = []
    occurrences: Counter = Counter()
    for check in sorted(checks, key=lambda c: (c["_path"], (c.get("file_line_range") or [0])[0], c["check_id"])):
        check_id, path = check["check_id"], check["_path"]
        entry = table.get(check_id) or {}
        title = (check.get("check_name") or check_id).rstrip(".")
        resource = resource_address(check.get("resource") or "", root, prefix)
        # the resource, not the line, is the identity: a check on aws_s3_bucket.logs stays the same
        # finding when the block moves down the file
        anchor = f"{check_id}:{resource}"
        occurrences[(path, anchor)] += 1
        if occurrences[(path, anchor)] > 1:  # e.g. two FROM lines of a multi-stage build
            anchor = f"{anchor}#{occurrences[(path, anchor)]}"
        start, end = (check.get("file_line_range") or [None, None])[:2]
        keys = sorted(map(str, (check.get("check_result") or {}).get("evaluated_keys") or []))  # a set: no order
        evidence = f"{resource}: {title}" + (f" (evaluated: {', '.join(map(str, keys))})" if keys else "")
        findings.append(
            Finding.at(
                snapshot.repo,
                scanner="checkov",
                scanner_version=version,
                rule_id=check_id,
                title=title,
                category="iac",
                base_severity=entry.get("severity") or default["severity"],
                anchor=anchor,
                file_path=path,
                start_line=start or None,
                end_line=end or None,
                evidence=evidence,
                remediation=_remediation(entry, check.get("guideline"), title),
                cwe=entry.get("cwe"),
                controls=[*default.get("controls", []), *entry.get("controls", [])],
                scanned_at=scanned_at,
            )
        )
    return findings


def resource_address(resource: str, root: str, prefix: str = "") -> str:
    """checkov's resource id without what changes when nothing about the resource did: the absolute
    checkout path some frameworks put in it, or its path `prefix` from the scanned folder, and a trailing
    [start:end] line span."""
    resource = resource.replace(root, "")
    if prefix:
        resource = resource.replace(f"/{prefix}/", "/")
    return _LINE_SPAN.sub("", resource).strip()


def _remediation(entry: dict, guideline: str | None, title: str) -> str:
    parts = [entry.get("remediation") or "", f"See {guideline}" if guideline else ""]
    return " ".join(p for p in parts if p) or title


def yaml_bombs(snapshot: Snapshot) -> list[str]:
    """The snapshot's YAML files that checkov must not load: it expands aliases while walking a
    document, and a "billion laughs" file held it at 12 GB of memory and growing."""
    return [
        f.path
        for f in snapshot.files
        if f.path.endswith(YAML_SUFFIXES) and yaml_alias_expansion(snapshot.root / f.path) > YAML_ALIAS_LIMIT
    ]


def helm_templates(snapshot: Snapshot) -> list[str]:
    """Template files of every Helm chart (a folder with Chart.yaml) in the snapshot."""
    charts = [PurePosixPath(p).parent for p in snapshot.paths() if PurePosixPath(p).name == "Chart.yaml"]
    return [
        p for p in snapshot.paths() if any(PurePosixPath(p).is_relative_to(chart / "templates") for chart in charts)
    ]
