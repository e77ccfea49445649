"""Extract benchmark: REST requests per repository against the floor, for a first full run, a run
with nothing changed and a run with 5% of repositories changed; git operations apart; wall time;
429s when the sandbox's limit equals the client's budget. Time is simulated: the client's budget
waits advance the clock the sandbox's rate limiter also reads, so hours of pacing take seconds.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

from ox_bb_pipeline.bitbucket.client import BitbucketClient, RequestBudget
from ox_bb_pipeline.bitbucket.extract import Extractor, StateStore
from ox_bb_pipeline.bitbucket.git import GitAccess
from ox_bb_pipeline.clock import ManualClock
from ox_bb_pipeline.config import load_connections
from ox_bb_pipeline.scanners.secrets import redact_text
from ox_bb_sandbox.generator import SandboxSpec
from ox_bb_sandbox.gitrepo import run_git
from ox_bb_sandbox.server import SandboxServer

BUDGET = 900
PER_REPO_ENDPOINTS = (
    "refs/branches",
    "pullrequests",
    "branch-restrictions",
    "branching-model",
    "default-reviewers",
    "deploy-keys",
    "hooks",
)
PIPELINE_ENDPOINTS = ("pipelines_config", "pipelines", "environments", "pipelines_config/variables")


def _touch(server: SandboxServer, repo) -> None:
    """A push to main: a new commit on the bare repository, as git receive-pack would leave it."""
    git_dir = str(repo.git.path)
    tree = run_git(["--git-dir", git_dir, "rev-parse", f"{repo.mainbranch}^{{tree}}"]).decode().strip()
    parent = run_git(["--git-dir", git_dir, "rev-parse", repo.mainbranch]).decode().strip()
    commit = (
        run_git(
            [
                "--git-dir",
                git_dir,
                "-c",
                "user.name=bench",
                "-c",
                "user.email=bench@example.com",
                "commit-tree",
                tree,
                "-p",
                parent,
                "-m",
                "benchmark push",
            ]
        )
        .decode()
        .strip()
    )
    run_git(["--git-dir", git_dir, "update-ref", f"refs/heads/{repo.mainbranch}", commit])
    repo.git.refresh()
    repo.updated_on = server.clock.now()


def _floor(server: SandboxServer, selected: list) -> tuple[int, int]:
    """(per-repository floor, workspace-level floor): one request per applicable endpoint and repository,
    plus the pages the workspace-wide listings need."""
    per_repo = 0
    for repo in selected:
        has_yml = repo.git.object_kind(repo.mainbranch, "bitbucket-pipelines.yml") == "blob"
        # with a pipelines file: its endpoints, plus one deployment-variables listing per environment
        per_repo += len(PER_REPO_ENDPOINTS) + (len(PIPELINE_ENDPOINTS) + len(repo.environments) if has_yml else 0)
    listings = 2  # /user/workspaces, and the verify-free run has no /user call
    for ws in server.world.workspaces.values():
        repos = len(ws.repositories)
        perms = sum(
            1
            for r in ws.repositories.values()
            for u in server.world.users
            if server.world.permission(u, r) != "none" and (u in ws.members or r.is_private)
        )
        listings += 1 + 1 + math.ceil(repos / 100) + 1 + 1 + max(1, math.ceil(perms / 100))
    return per_repo, listings


def run(quick: bool = False) -> dict:
    spec = SandboxSpec(
        seed=42,
        workspaces=3,
        repos=20 if quick else 200,
        branches=10,
        pull_requests=30,
        commits=10,
        anchor=datetime(2026, 11, 1, tzinfo=UTC),
    )
    home = Path(tempfile.mkdtemp(prefix="ox-bb-bench-"))
    os.environ["OX_BB_HOME"] = str(home)
    clock = ManualClock(datetime(2026, 11, 2, tzinfo=UTC))
    started = time.perf_counter()
    server = SandboxServer(spec, clock=clock, rate_limit=BUDGET).start()
    generated = time.perf_counter() - started
    try:
        path = server.write_connections(home / "connections.yaml")
        conn = load_connections(path).get("sandbox-token").model_copy(update={"requests_per_hour": BUDGET})
        budget = RequestBudget(BUDGET, clock, sleep=lambda s: clock.advance(s))
        client = BitbucketClient(conn, clock=clock, sleep=lambda s: clock.advance(s), budget=budget)
        git = GitAccess(conn.name, conn.git_url, client.auth.git_credentials)
        store = StateStore(conn.name, home)
        repos = [r for ws in server.world.workspaces.values() for r in ws.repositories.values()]
        per_repo_floor, listing_floor = _floor(server, repos)
        runs = {}
        previous: dict = {}
        state = store.load()

        def extract(label: str) -> None:
            nonlocal previous
            requests.post(f"{server.base_url}/_sandbox/stats/reset", timeout=10)
            t0, sim0, git0 = time.perf_counter(), clock.now(), git.operations
            report = Extractor(
                client, git, redact_yml=redact_text, previous=previous, state=state, clock=clock, home=home
            ).run()
            stats = requests.get(f"{server.base_url}/_sandbox/stats", timeout=10).json()
            store.save(state)
            previous = report.rows
            runs[label] = {
                "rest_requests": stats["rest_total"],
                "rate_limited": stats["rate_limited"],
                "git_operations": git.operations - git0,
                "changed": report.repositories_changed,
                "settings_refreshed": report.settings_refreshed,
                "wall_seconds": time.perf_counter() - t0,
                "simulated_hours": (clock.now() - sim0).total_seconds() / 3600,
            }

        extract("first")
        clock.advance(3600)
        extract("unchanged")
        for repo in repos[::20]:  # 5%
            _touch(server, repo)
        clock.advance(3600)
        extract("changed_5pct")
    finally:
        server.stop()
    n = len(repos)
    first, unchanged, changed = runs["first"], runs["unchanged"], runs["changed_5pct"]
    floor_total = per_repo_floor + listing_floor
    table = [
        ("repositories", n, f"{spec.workspaces} workspaces × {spec.repos}"),
        ("sandbox generation (s)", generated, ""),
        ("first run: REST requests", first["rest_requests"], f"floor {floor_total}"),
        ("first run: REST per repository", first["rest_requests"] / n, f"floor {floor_total / n:.2f}"),
        ("first run: over floor", first["rest_requests"] / floor_total - 1, "target ≤ 0.10"),
        ("first run: git operations", first["git_operations"], "apart from REST"),
        ("first run: wall time (s)", first["wall_seconds"], ""),
        ("first run: simulated hours (budget pacing)", first["simulated_hours"], f"budget {BUDGET}/h"),
        ("first run: 429 answers", first["rate_limited"], "target 0 (sandbox limit = budget)"),
        ("unchanged run: REST per repository", unchanged["rest_requests"] / n, "target ≤ 0.2"),
        ("unchanged run: settings refreshed", unchanged["settings_refreshed"], "reported apart"),
        ("unchanged run: git operations", unchanged["git_operations"], "one ls-remote per repository"),
        ("unchanged run: wall time (s)", unchanged["wall_seconds"], ""),
        ("5% changed: repositories re-read", changed["changed"], f"{len(repos[::20])} pushed"),
        ("5% changed: REST per repository", changed["rest_requests"] / n, ""),
        ("5% changed: git operations", changed["git_operations"], ""),
        ("5% changed: wall time (s)", changed["wall_seconds"], ""),
        ("429 answers, all runs", sum(r["rate_limited"] for r in runs.values()), "target 0"),
    ]
    return {
        "title": "extract: REST requests against the floor",
        "table": table,
        "json": {
            "spec": spec.__dict__,
            "repositories": n,
            "floor": {"per_repository_endpoints": per_repo_floor, "workspace_listings": listing_floor},
            "runs": runs,
            "generation_seconds": generated,
        },
    }
