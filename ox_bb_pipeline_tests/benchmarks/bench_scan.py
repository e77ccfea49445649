"""Scan benchmark: files and bytes per second per scanner and for the whole scan stage, on the extract
benchmark's sandbox after one extract; the secrets scanner against the detect-secrets CLI on the same
files (time ratio, same (file, line) findings, differences explained); a second run with nothing changed
(no clone, no scanner started, a small fraction of the first run's time); peak memory.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from ox_bb_pipeline.bitbucket.client import BitbucketClient
from ox_bb_pipeline.bitbucket.extract import Extractor
from ox_bb_pipeline.bitbucket.git import GitAccess
from ox_bb_pipeline.config import load_connections
from ox_bb_pipeline.findings import RepoRef
from ox_bb_pipeline.scanners.base import ScanOutput
from ox_bb_pipeline.scanners.secrets import LOCK_FILES, PIPELINES_FILE, SecretsScanner, redact_text
from ox_bb_pipeline.scanners.snapshot import take_snapshot
from ox_bb_pipeline.scanners.stage import default_scanners, scan_repositories
from ox_bb_sandbox.generator import SandboxSpec
from ox_bb_sandbox.server import SandboxServer

UNLIMITED = 100_000  # requests an hour: the extract is a prerequisite here, not what is measured
COMPARED_REPOSITORIES = 8  # snapshots kept for the detect-secrets CLI comparison
DETECT_SECRETS = Path(sys.executable).with_name("detect-secrets")


class Counting:
    """A scanner that counts the batches it is asked to scan (each one a tool process for semgrep
    and checkov)."""

    def __init__(self, scanner) -> None:
        self.scanner, self.name, self.category = scanner, scanner.name, scanner.category
        self.batches = 0

    def version(self) -> str:
        return self.scanner.version()

    def scan(self, snapshots):
        self.batches += 1
        return self.scanner.scan(snapshots)


class Census:
    """Not a scanner: counts the files and bytes of every snapshot the stage takes."""

    name, category = "census", "external"

    def __init__(self) -> None:
        self.files = self.bytes = 0

    def version(self) -> str:
        return "census"

    def scan(self, snapshots):
        self.files += sum(len(s.files) for s in snapshots)
        self.bytes += sum(s.bytes_total for s in snapshots)
        return [ScanOutput(s.repo.repository_uuid) for s in snapshots]


def per_scanner(scan_runs: list[dict]) -> dict[str, dict]:
    """Files, bytes and seconds each scanner spent on the repositories it scanned (not from cache)."""
    stats: dict[str, dict] = {}
    for row in scan_runs:
        if row["cached"] or row["scanner"] == "census":
            continue
        entry = stats.setdefault(row["scanner"], {"files": 0, "bytes": 0, "seconds": 0.0, "errors": 0})
        entry["files"] += row["files_scanned"]
        entry["bytes"] += row["bytes_scanned"]
        entry["seconds"] += row["duration_seconds"]
        entry["errors"] += row["status"] == "error"
    for entry in stats.values():
        entry["files_per_second"] = entry["files"] / entry["seconds"] if entry["seconds"] else 0.0
        entry["kb_per_second"] = entry["bytes"] / 1e3 / entry["seconds"] if entry["seconds"] else 0.0
    return stats


def compare_with_cli(git: GitAccess, repositories: list[dict], root: Path) -> dict:
    """Our secrets scanner and `detect-secrets scan --all-files` over the same kept snapshots."""
    snapshots = [
        take_snapshot(
            git,
            RepoRef(r["connection"], r["workspace"], r["repository_uuid"], r["repository"], r["main_head"]),
            r["mainbranch"] or "main",
            root,
        )
        for r in repositories
    ]
    started = time.perf_counter()
    outputs = SecretsScanner().scan(snapshots)
    ours_seconds = time.perf_counter() - started
    ours = {
        (s.repo.workspace, s.repo.repository, f.file_path, f.start_line)
        for s, o in zip(snapshots, outputs)
        for f in o.findings
    }
    started = time.perf_counter()
    proc = subprocess.run(
        [str(DETECT_SECRETS), "scan", "--all-files", "--exclude-files", r"(^|/)\.git/|\.complete$", "."],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    cli_seconds = time.perf_counter() - started
    cli: dict[tuple, list[str]] = {}
    for name, hits in json.loads(proc.stdout)["results"].items():
        workspace, slug, _commit, path = name.split("/", 3)  # <workspace>/<slug>/<commit>/<path>
        for hit in hits:
            cli.setdefault((workspace, slug, path, hit["line_number"]), []).append(hit["type"])
    files = {(s.repo.workspace, s.repo.repository, f.path) for s in snapshots for f in s.files}
    why_cli_only: dict[str, int] = {}
    for key in set(cli) - ours:
        reason = (
            "lock file (our LOCK_FILES filter)"
            if PurePosixPath(key[2]).name in LOCK_FILES
            else "not in the snapshot (binary or over a cap)"
            if key[:3] not in files
            else "our noise filters (placeholder, content digest), or a secret repeated in the file"
        )
        why_cli_only[reason] = why_cli_only.get(reason, 0) + 1
    why_ours_only: dict[str, int] = {}
    for key in ours - set(cli):
        reason = (
            "pipelines file read as plain text too (script: items)"
            if key[2] == PIPELINES_FILE
            else "YAML read as plain text"
            if key[2].endswith((".yml", ".yaml"))
            else "other"
        )
        why_ours_only[reason] = why_ours_only.get(reason, 0) + 1
    return {
        "repositories": len(snapshots),
        "files": sum(len(s.files) for s in snapshots),
        "ours_seconds": ours_seconds,
        "cli_seconds": cli_seconds,
        "time_ratio_cli_over_ours": cli_seconds / ours_seconds,
        "ours_lines": len(ours),
        "cli_lines": len(cli),
        "same_lines": len(ours & set(cli)),
        "cli_only": why_cli_only,
        "ours_only": why_ours_only,
    }


def run(quick: bool = False) -> dict:
    spec = SandboxSpec(
        seed=42,
        workspaces=3,
        repos=10 if quick else 200,
        branches=10,
        pull_requests=30,
        commits=10,
        anchor=datetime(2026, 11, 1, tzinfo=UTC),
    )
    home = Path(tempfile.mkdtemp(prefix="ox-bb-bench-scan-"))
    os.environ["OX_BB_HOME"] = str(home)
    server = SandboxServer(spec, rate_limit=UNLIMITED).start()
    try:
        path = server.write_connections(home / "connections.yaml")
        conn = load_connections(path).get("sandbox-token").model_copy(update={"requests_per_hour": UNLIMITED})
        client = BitbucketClient(conn, sleep=lambda seconds: None)
        git = GitAccess(conn.name, conn.git_url, client.auth.git_credentials)
        started = time.perf_counter()
        repositories = (
            Extractor(client, git, redact_yml=redact_text, previous={}, state={"repositories": {}}, home=home)
            .run()
            .rows["repositories"]
        )
        extract_seconds = time.perf_counter() - started
        selected = [r for r in repositories if r["selected"] and r["main_head"]]

        census = Census()
        scanners = [Counting(s) for s in default_scanners()]
        first = scan_repositories(repositories, git, scanners=[census, *scanners], home=home)
        first_batches = {s.name: s.batches for s in scanners}
        for scanner in scanners:
            scanner.batches = 0
        second = scan_repositories(repositories, git, scanners=[census, *scanners], home=home)
        second_batches = sum(s.batches for s in scanners)
        comparison = compare_with_cli(git, selected[:COMPARED_REPOSITORIES], home / "compared")
        peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)  # kept snapshots hold the sandbox's raw secrets

    scanners_stats = per_scanner(first.scan_runs)
    scanner_seconds = sum(s["seconds"] for s in scanners_stats.values())
    n = len(selected)
    table = [
        ("repositories scanned", n, f"{spec.workspaces} workspaces × {spec.repos}"),
        ("extract before the scan (s)", extract_seconds, "prerequisite, not measured here"),
        ("first run: repositories cloned", first.cloned, f"all {n}"),
        ("first run: files / KB in snapshots", f"{census.files:,} / {census.bytes / 1e3:,.0f}", ""),
        ("first run: wall time (s)", first.seconds, ""),
        ("first run: stage files/s", census.files / first.seconds, "clones + every scanner"),
        ("first run: stage KB/s", census.bytes / 1e3 / first.seconds, ""),
        ("first run: clones, walks, cache (s)", first.seconds - scanner_seconds, "stage time outside scanners"),
    ]
    for name, s in scanners_stats.items():
        table.append(
            (
                f"{name}: files/s · KB/s",
                f"{s['files_per_second']:,.0f} · {s['kb_per_second']:,.0f}",
                f"{s['files']:,} files, {s['seconds']:.1f} s, {first_batches[name]} batches"
                + (f", {s['errors']} errors" if s["errors"] else ""),
            )
        )
    table += [
        (
            "secrets vs detect-secrets CLI: time ratio",
            comparison["time_ratio_cli_over_ours"],
            f"CLI s / ours s over {comparison['files']} files of {comparison['repositories']} repositories",
        ),
        (
            "secrets vs CLI: same (file, line)",
            f"{comparison['same_lines']} of {comparison['cli_lines']} CLI",
            f"ours {comparison['ours_lines']}",
        ),
        (
            "secrets vs CLI: CLI only",
            sum(comparison["cli_only"].values()),
            "; ".join(f"{k}: {v}" for k, v in comparison["cli_only"].items()) or "none",
        ),
        (
            "secrets vs CLI: ours only",
            sum(comparison["ours_only"].values()),
            "; ".join(f"{k}: {v}" for k, v in comparison["ours_only"].items()) or "none",
        ),
        ("unchanged run: repositories cloned", second.cloned, "target 0"),
        ("unchanged run: scanner batches started", second_batches, "target 0"),
        ("unchanged run: wall time (s)", second.seconds, ""),
        ("unchanged run: share of first run", f"{second.seconds / first.seconds:.1%}", "target < 5%"),
        ("peak RSS, this process (MB)", peak_self, "sandbox + extract + in-process scanners"),
        ("peak RSS, largest child (MB)", peak_children, "semgrep, checkov, git"),
    ]
    return {
        "title": "scan: throughput per scanner, detect-secrets CLI, unchanged run",
        "table": table,
        "json": {
            "spec": spec.__dict__,
            "repositories": n,
            "extract_seconds": extract_seconds,
            "first": {
                "seconds": first.seconds,
                "cloned": first.cloned,
                "files": census.files,
                "bytes": census.bytes,
                "scanners": scanners_stats,
                "batches": first_batches,
            },
            "unchanged": {
                "seconds": second.seconds,
                "cloned": second.cloned,
                "scanner_batches": second_batches,
                "git_operations": second.git_operations,
                "share_of_first": second.seconds / first.seconds,
            },
            "secrets_vs_cli": comparison,
            "peak_rss_mb": {"self": peak_self, "children": peak_children},
        },
    }
