"""Secrets-in-history throughput on the largest real repository at hand (juice-shop's mirror, ~23,000 commits:
`fetch` github:juice-shop/juice-shop, or set OX_BB_BENCH_HISTORY_REPO to another bare repository): the oldest
N commits of the main branch (5,000, the default `max_commits` of one run; quick: 300) scanned by
scanners/history.py, against a plain `git log -p` read of the same commits into a pipe. Target: ≤ 5× the read.
Also times the incremental second run (no new commits: reads none), and checks the per-line shortcuts (the
prefilter, scanners/secrets_prefilter.py, and the others scan_lines takes) against a reference scan of the same
commits with every plugin as it is on every line: "identical: yes" when both find the same secrets at the same
commits and lines (OX_BB_BENCH_HISTORY_REFERENCE=0 skips the reference, which takes the unfiltered time: about a
minute for the quick 300 commits). Wall and CPU seconds (this process and git) are reported apart.

    python -m ox_bb_pipeline_tests.benchmarks.bench_secrets_history [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ox_bb_pipeline.findings import RepoRef
from ox_bb_pipeline.scanners import history, secrets_lines

DEFAULT_REPO = Path("/work/.mirror/juice-shop+juice-shop/repo")
TARGET_RATIO = 5.0


def _main_ref(git_dir: Path) -> str:
    out = subprocess.run(
        ["git", "--git-dir", str(git_dir), "symbolic-ref", "--quiet", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or "HEAD"


def _cpu() -> float:
    """CPU seconds of this process and its finished children (git) so far."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def plain_read(git_dir: Path, commits: list[str]) -> tuple[float, int]:
    """Seconds and bytes of `git log -p` of exactly these commits, read through a pipe."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        ["git", "--git-dir", str(git_dir), "log", "-p", "--no-walk=unsorted", "--stdin"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    proc.stdin.write(("\n".join(commits) + "\n").encode())
    proc.stdin.close()
    total = 0
    while chunk := proc.stdout.read(1 << 20):
        total += len(chunk)
    proc.wait()
    return time.perf_counter() - started, total


def _found(result: history.HistoryResult) -> list[tuple]:
    """What a scan found, in order: fingerprint, rule, path, line, commit and the masked evidence."""
    return [(f.finding_id, f.file_path, f.start_line, f.commit, f.evidence) for f in result.findings]


def run(quick: bool = False) -> dict:
    git_dir = Path(os.environ.get("OX_BB_BENCH_HISTORY_REPO") or DEFAULT_REPO)
    if not (git_dir / "objects").is_dir() and not (git_dir / ".git").is_dir():
        raise FileNotFoundError(
            f"no git repository at {git_dir}: fetch github:juice-shop/juice-shop into /work/.mirror or set "
            "OX_BB_BENCH_HISTORY_REPO to a bare repository"
        )
    count = 300 if quick else 5_000
    ref = _main_ref(git_dir)
    commits = history.pending_commits(git_dir, [ref], [])[:count]
    repo = RepoRef("bench", "bench", "{bench-history}", git_dir.parent.name, None)
    home = Path(tempfile.mkdtemp(prefix="ox-bb-bench-history-"))
    os.environ.setdefault("OX_BB_SECRET_SALT", "bench-salt")
    try:
        cpu = _cpu()
        plain_seconds, plain_bytes = plain_read(git_dir, commits)
        plain_cpu = _cpu() - cpu
        limits = history.HistoryLimits(max_commits=count, max_bytes=1 << 40)
        started, cpu = time.perf_counter(), _cpu()
        # max_commits cuts the main branch's history at the same oldest `count` commits the plain read read
        first = history.scan_history(git_dir, repo, [ref], set(), home, limits=limits)
        scan_seconds, scan_cpu = time.perf_counter() - started, _cpu() - cpu
        started = time.perf_counter()
        second = history.scan_history(git_dir, repo, [commits[-1]], set(), home, limits=limits)  # nothing new
        second_seconds = time.perf_counter() - started
        identical, reference_seconds = None, None
        if os.environ.get("OX_BB_BENCH_HISTORY_REFERENCE", "1") != "0":
            secrets_lines.PREFILTER = False
            try:
                started = time.perf_counter()
                reference = history.scan_history(git_dir, repo, [ref], set(), home / "reference", limits=limits)
                reference_seconds = time.perf_counter() - started
            finally:
                secrets_lines.PREFILTER = True
            identical = _found(reference) == _found(first)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    ratio = scan_seconds / plain_seconds if plain_seconds else float("inf")
    figures = {
        "repository": str(git_dir),
        "commits": first.commits_scanned,
        "scan_seconds": round(scan_seconds, 2),
        "scan_commits_per_second": round(first.commits_scanned / scan_seconds, 1),
        "scan_megabytes_read": round(first.bytes_read / 1e6, 1),
        "scan_mb_per_second": round(first.bytes_read / 1e6 / scan_seconds, 2),
        "scan_cpu_seconds": round(scan_cpu, 2),
        "plain_git_log_p_seconds": round(plain_seconds, 2),
        "plain_git_log_p_megabytes": round(plain_bytes / 1e6, 1),
        "plain_git_log_p_mb_per_second": round(plain_bytes / 1e6 / plain_seconds, 2),
        "plain_commits_per_second": round(len(commits) / plain_seconds, 1),
        "plain_cpu_seconds": round(plain_cpu, 2),
        "ratio_to_plain_read": round(ratio, 2),
        "cpu_ratio_to_plain_read": round(scan_cpu / plain_cpu, 2) if plain_cpu else None,
        "candidates": first.candidates,
        "second_run_commits": second.commits_scanned,
        "second_run_seconds": round(second_seconds, 2),
        "reference_unfiltered_seconds": None if reference_seconds is None else round(reference_seconds, 2),
        "identical": None if identical is None else ("yes" if identical else "no"),
    }
    table = [
        ("repository", git_dir.parent.name, ""),
        ("commits scanned", first.commits_scanned, ""),
        ("history scan: seconds", figures["scan_seconds"], ""),
        ("history scan: commits/s", figures["scan_commits_per_second"], ""),
        ("history scan: MB read (git log -p -U0)", figures["scan_megabytes_read"], ""),
        ("history scan: MB/s", figures["scan_mb_per_second"], ""),
        ("history scan: CPU seconds (with git)", figures["scan_cpu_seconds"], ""),
        ("plain git log -p: seconds", figures["plain_git_log_p_seconds"], ""),
        ("plain git log -p: MB", figures["plain_git_log_p_megabytes"], ""),
        ("plain git log -p: commits/s", figures["plain_commits_per_second"], ""),
        ("plain git log -p: MB/s", figures["plain_git_log_p_mb_per_second"], ""),
        ("plain git log -p: CPU seconds", figures["plain_cpu_seconds"], ""),
        ("ratio scan / plain read", figures["ratio_to_plain_read"], f"target ≤ {TARGET_RATIO:.0f}×"),
        ("ratio of CPU seconds (load-independent)", figures["cpu_ratio_to_plain_read"], ""),
        ("distinct secrets in history", first.candidates, ""),
        ("second run: commits read", second.commits_scanned, "target 0"),
        ("second run: seconds", figures["second_run_seconds"], ""),
        ("reference scan, no shortcuts: seconds", figures["reference_unfiltered_seconds"], ""),
        ("identical: prefiltered = reference", figures["identical"], "target yes"),
    ]
    return {"title": "Secrets in git history (throughput)", "table": table, "json": figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    result = run(quick=parser.parse_args().quick)
    print(json.dumps(result["json"], indent=2))


if __name__ == "__main__":
    main()
