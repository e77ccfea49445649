"""Scanner fixtures: real snapshots (shallow git clones over HTTP) of every sandbox repository, one
extract pass to feed the scan stage, and a push to a sandbox repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from ox_bb_pipeline.bitbucket.client import BitbucketClient
from ox_bb_pipeline.bitbucket.extract import Extractor
from ox_bb_pipeline.bitbucket.git import GitAccess
from ox_bb_pipeline.config import data_home, load_connections
from ox_bb_pipeline.findings import RepoRef
from ox_bb_pipeline.scanners.secrets import redact_text
from ox_bb_pipeline.scanners.snapshot import Snapshot, take_snapshot
from ox_bb_sandbox.gitrepo import run_git


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


def extract(connections_file: Path, name: str = "sandbox-token") -> tuple[dict[str, list[dict]], GitAccess]:
    """One full extract pass for a connection (OX_BB_HOME must be set): its raw tables, which the scan
    stage reads from the lake, and the connection's git access, built as the Dagster resource builds it."""
    connection = load_connections(connections_file).get(name)
    client = BitbucketClient(connection, sleep=lambda seconds: None)
    git = GitAccess(name, connection.git_url, client.auth.git_credentials)
    report = Extractor(
        client, git, redact_yml=redact_text, previous={}, state={"repositories": {}}, home=data_home()
    ).run()
    return report.rows, git


def push_file(repo, path: str, text: str) -> str:
    """A push to the main branch of a sandbox repository: a new commit adding the top-level file `path`,
    written with git plumbing into the bare repository, as receive-pack would leave it. Returns the commit."""
    git_dir = ["--git-dir", str(repo.git.path)]
    blob = run_git([*git_dir, "hash-object", "-w", "--stdin"], input=text.encode()).decode().strip()
    listing = run_git([*git_dir, "ls-tree", f"{repo.mainbranch}^{{tree}}"]).decode()
    tree = run_git([*git_dir, "mktree"], input=f"{listing}100644 blob {blob}\t{path}\n".encode()).decode().strip()
    parent = run_git([*git_dir, "rev-parse", repo.mainbranch]).decode().strip()
    commit = (
        run_git(
            [
                *git_dir,
                "-c",
                "user.name=dev",
                "-c",
                "user.email=dev@example.com",
                "commit-tree",
                tree,
                "-p",
                parent,
                "-m",
                f"add {path}",
            ]
        )
        .decode()
        .strip()
    )
    run_git([*git_dir, "update-ref", f"refs/heads/{repo.mainbranch}", commit])
    repo.git.refresh()
    return commit


@pytest.fixture(scope="session")
def snapshots(sandbox, tmp_path_factory) -> dict[str, Snapshot]:
    return snapshot_all(sandbox, tmp_path_factory.mktemp("snapshots"))


@pytest.fixture(scope="module")
def secret_salt():
    """A fixed salt, so secret and snippet fingerprints are comparable within a module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OX_BB_SECRET_SALT", "test-salt")
        yield


@pytest.fixture(scope="session")
def planted(sandbox) -> list[dict]:
    """The sandbox's planted-issue manifest (for recall tests; the pipeline never reads it)."""
    return sandbox.world.planted


def planted_of(planted: list[dict], kind: str) -> list[dict]:
    return [p for p in planted if p["kind"] == kind]
