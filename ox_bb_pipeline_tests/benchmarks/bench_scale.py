"""Scale benchmark (issue 14): one workspace of many small repositories (every 50th one grown to 2,000
files), simulated clock.

- Extraction: a first full extract through a workspace access token, paced at the base 1,000 requests/hour
  and at the scaled 10,000/hour (a Premium workspace of 1,000 paid seats); simulated hours and 429 answers.
- Scan: the first OX_BB_BENCH_SCALE_SCAN_REPOS repositories in 4 shards, scanned with every scanner by 1, 2
  and 4 worker processes (the shard steps' local pool; each run on a home of its own, so nothing comes
  from a cache): wall time, CPU seconds, the critical path (the longest shard) and peak RSS; a projection
  to 16 workers for the whole workspace from the measured per-repository cost.

Sizes are parameters: OX_BB_BENCH_SCALE_REPOS (default 2,000; --quick 40) and OX_BB_BENCH_SCALE_SCAN_REPOS
(default 24; --quick 8). On the shared 2-core machine the scan figures are noisy: read the CPU seconds.
"""

from __future__ import annotations

import math
import os
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

from ox_bb_pipeline.bitbucket.client import BitbucketClient, RequestBudget
from ox_bb_pipeline.bitbucket.extract import Extractor
from ox_bb_pipeline.bitbucket.git import GitAccess
from ox_bb_pipeline.clock import ManualClock
from ox_bb_pipeline.config import load_connections
from ox_bb_pipeline.scanners import shards as shardmod
from ox_bb_pipeline.scanners.secrets import redact_text
from ox_bb_pipeline.scanners.stage import default_scanners
from ox_bb_sandbox.generator import SandboxSpec
from ox_bb_sandbox.gitrepo import run_git
from ox_bb_sandbox.server import SandboxServer

LARGE_EVERY, LARGE_FILES = 50, 2000  # ~2% of the repositories have 2,000 files
SCAN_SHARDS = 4
WORKERS = (1, 2, 4)
PROJECTED_WORKERS = 16
LIMITS = {"base 1,000/h": ("free", 5, 1000), "scaled 10,000/h": ("premium", 1000, 10_000)}


def _grow(repo, files: int) -> None:
    """One commit on main adding `files` small Python files (git fast-import, no working tree)."""
    git_dir = str(repo.git.path)
    parent = run_git(["--git-dir", git_dir, "rev-parse", repo.mainbranch]).decode().strip()
    chunks = [
        f"commit refs/heads/{repo.mainbranch}\ncommitter bench <bench@example.com> 1790000000 +0000\n"
        f"data 10\ngrow files\nfrom {parent}\n".encode()
    ]
    for i in range(files):
        data = f"def handler_{i}(value):\n    return value * {i}\n".encode()
        chunks.append(b"M 100644 inline bulk/module_%04d.py\ndata %d\n%s\n" % (i, len(data), data))
    run_git(["--git-dir", git_dir, "fast-import", "--quiet"], input=b"".join(chunks) + b"\n")
    repo.git.refresh()


def _extract(server, clock, home: Path, label: str, plan: str, seats: int, budget: int) -> dict:
    requests.post(
        f"{server.base_url}/_sandbox/plan", json={"workspace": WS, "plan": plan, "seats": seats}, timeout=10
    ).raise_for_status()
    requests.post(f"{server.base_url}/_sandbox/rate-limit", json={"reset": True}, timeout=10).raise_for_status()
    requests.post(f"{server.base_url}/_sandbox/stats/reset", timeout=10).raise_for_status()
    conn = (
        load_connections(server.write_connections(home / f"connections-{budget}.yaml"))
        .get("sandbox-access-token")
        .model_copy(update={"requests_per_hour": budget})
    )
    client = BitbucketClient(
        conn, clock=clock, sleep=clock.advance, budget=RequestBudget(budget, clock, sleep=clock.advance)
    )
    git = GitAccess(conn.name, conn.git_url, client.auth.git_credentials)
    t0, sim0 = time.perf_counter(), clock.now()
    report = Extractor(
        client, git, redact_yml=redact_text, previous={}, state={"repositories": {}}, clock=clock, home=home
    ).run()
    stats = requests.get(f"{server.base_url}/_sandbox/stats", timeout=10).json()
    return {
        "limit": label,
        "announced": client.budget.announced,
        "paced_to": client.effective_limit,
        "rest_requests": stats["rest_total"],
        "rate_limited": stats["rate_limited"],
        "simulated_hours": (clock.now() - sim0).total_seconds() / 3600,
        "wall_seconds": time.perf_counter() - t0,
        "rows": report.rows,
        "git": git,
    }


def _children() -> tuple[float, int]:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def _scan(parts: list[list[dict]], git, workers: int, home: Path) -> dict:
    cpu0, _ = _children()
    self0 = time.process_time()
    t0 = time.perf_counter()
    results = shardmod.run_shards(parts, git, workers=workers, scanners=default_scanners(), home=home)
    wall = time.perf_counter() - t0
    cpu1, rss = _children()
    failed = [r for r in results if isinstance(r, shardmod.ShardFailure)]
    seconds = [r.seconds for r in results if not isinstance(r, shardmod.ShardFailure)]
    return {
        "workers": workers,
        "wall_seconds": wall,
        "cpu_seconds": cpu1 - cpu0 + time.process_time() - self0,
        "critical_path_seconds": max(seconds, default=0.0),
        "shard_seconds": seconds,
        "peak_rss_mb_any_child": rss / 1024,
        "failed_shards": len(failed),
        "repositories": sum(len(p) for p in parts),
    }


WS = "acme-payments"


def run(quick: bool = False) -> dict:
    n = int(os.environ.get("OX_BB_BENCH_SCALE_REPOS", "40" if quick else "2000"))
    m = int(os.environ.get("OX_BB_BENCH_SCALE_SCAN_REPOS", "8" if quick else "24"))
    spec = SandboxSpec(
        seed=14,
        workspaces=1,
        projects=4,
        repos=n,
        branches=0,
        pull_requests=1,
        commits=1,
        anchor=datetime(2026, 11, 1, tzinfo=UTC),
    )
    home = Path(tempfile.mkdtemp(prefix="ox-bb-bench-scale-"))
    os.environ["OX_BB_HOME"] = str(home)
    clock = ManualClock(datetime(2026, 11, 2, tzinfo=UTC))
    t0 = time.perf_counter()
    server = SandboxServer(spec, clock=clock).start()
    try:
        repos = list(server.world.workspaces[WS].repositories.values())
        for repo in repos[::LARGE_EVERY]:
            _grow(repo, LARGE_FILES)
        generated = time.perf_counter() - t0
        extracts = [_extract(server, clock, home, label, *limit) for label, limit in LIMITS.items()]
        rows = extracts[-1]["rows"]["repositories"]
        git = extracts[-1]["git"]
        scanned = [r for r in rows if r.get("selected") and r.get("main_head")][:m]
        parts = shardmod.split(scanned, SCAN_SHARDS)
        scans = [_scan(parts, git, w, home / f"scan-{w}") for w in WORKERS]
        whole = _scan([scanned], git, 1, home / "scan-whole")  # the same repositories as one shard
    finally:
        server.stop()
    # Two points give a shard's cost as start-up + per repository: 4 shards cost 4a + b·m, one shard a + b·m.
    four, one_shard = sum(scans[0]["shard_seconds"]), whole["critical_path_seconds"]
    startup = max(0.0, (four - one_shard) / (SCAN_SHARDS - 1))
    per_repo = max(0.0, (one_shard - startup) / max(1, len(scanned)))
    shards_full = shardmod.shard_count(n)
    per_shard = startup + per_repo * n / shards_full
    projected = math.ceil(shards_full / PROJECTED_WORKERS) * per_shard
    table = [
        ("repositories", n, f"1 workspace; {len(repos[::LARGE_EVERY])} of {LARGE_FILES:,} files"),
        ("sandbox generation (s)", generated, ""),
    ]
    for e in extracts:
        table += [
            (
                f"extract {e['limit']}: simulated hours",
                e["simulated_hours"],
                f"announced {e['announced']}, paced to {e['paced_to']}",
            ),
            (f"extract {e['limit']}: REST requests", e["rest_requests"], f"{e['rest_requests'] / n:.1f} / repo"),
            (f"extract {e['limit']}: 429 answers", e["rate_limited"], "target 0"),
        ]
    for s in scans:
        table += [
            (
                f"scan {s['repositories']} repos, {SCAN_SHARDS} shards, {s['workers']} worker(s): wall (s)",
                s["wall_seconds"],
                f"CPU {s['cpu_seconds']:.0f} s, critical path {s['critical_path_seconds']:.0f} s",
            ),
            (f"  peak RSS of a worker or tool (MB), {s['workers']} worker(s)", s["peak_rss_mb_any_child"], ""),
        ]
    table += [
        (
            f"scan {len(scanned)} repos as 1 shard, 1 worker: wall (s)",
            whole["wall_seconds"],
            f"CPU {whole['cpu_seconds']:.0f} s",
        ),
        ("shard start-up (s)", startup, "from the 4-shard and 1-shard runs"),
        ("scan cost per repository (s)", per_repo, "beyond the start-up"),
        (
            f"projected scan of {n} repos, {shards_full} shards, {PROJECTED_WORKERS} workers (s)",
            projected,
            f"ceil({shards_full}/{PROJECTED_WORKERS}) × {per_shard:.0f} s per shard",
        ),
    ]
    return {
        "title": "scale: one workspace, scaled rate limits, scan shards",
        "table": table,
        "json": {
            "repositories": n,
            "scan_repositories": m,
            "large_repositories": len(repos[::LARGE_EVERY]),
            "generation_seconds": generated,
            "extract": [{k: v for k, v in e.items() if k not in ("rows", "git")} for e in extracts],
            "scan": scans,
            "scan_one_shard": whole,
            "shard_startup_seconds": startup,
            "per_repository_seconds": per_repo,
            "projection": {"workers": PROJECTED_WORKERS, "shards": shards_full, "seconds": projected},
        },
    }
