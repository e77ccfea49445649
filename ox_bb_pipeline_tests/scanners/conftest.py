"""Scanner fixtures: real snapshots (shallow git clones over HTTP) of every sandbox repository."""

from __future__ import annotations

import pytest

from ox_bb_pipeline.bitbucket.git import GitAccess
from ox_bb_pipeline.scanners.finding import RepoRef
from ox_bb_pipeline.scanners.snapshot import Snapshot, take_snapshot


def git_access(server) -> GitAccess:
    secrets = server.secrets()
    token = secrets["OX_BB_SANDBOX_TOKEN_ALICE_ADMIN"]
    return GitAccess("sandbox-token", server.base_url, lambda: ("x-bitbucket-api-token-auth", token))


def snapshot_all(server, cache_root) -> dict[str, Snapshot]:
    """`workspace/slug` -> Snapshot of its main branch, for every repository of the sandbox."""
    git = git_access(server)
    result = {}
    for ws in server.world.workspaces.values():
        for repo in ws.repositories.values():
            ref = RepoRef("sandbox-token", ws.slug, repo.uuid, repo.slug)
            result[repo.full_name] = take_snapshot(git, ref, repo.mainbranch, cache_root)
    return result


@pytest.fixture(scope="session")
def snapshots(sandbox, tmp_path_factory) -> dict[str, Snapshot]:
    return snapshot_all(sandbox, tmp_path_factory.mktemp("snapshots"))


@pytest.fixture(scope="session")
def planted(sandbox) -> list[dict]:
    """The sandbox's planted-issue manifest (for recall tests; the pipeline never reads it)."""
    return sandbox.world.planted


def planted_of(planted: list[dict], kind: str) -> list[dict]:
    return [p for p in planted if p["kind"] == kind]
