"""A credential refused in the middle of a run: git refreshes an expired OAuth token once and goes on, as
REST does; a git read that still fails keeps the last run's rows (stale, marked by an `extraction_status`
error row) instead of recording the repository as empty or without a pipelines file, and the next run
reads it again. Scratch repositories a killed run left behind are removed by the next run."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ox_bb_pipeline import lake
from ox_bb_pipeline.bitbucket import tables
from ox_bb_pipeline.bitbucket.client import BitbucketClient
from ox_bb_pipeline.bitbucket.errors import AuthenticationError
from ox_bb_pipeline.bitbucket.extract import Extractor, StateStore
from ox_bb_pipeline.bitbucket.git import GitAccess
from ox_bb_pipeline.config import data_home, load_connections
from ox_bb_pipeline.scanners.posture import evaluate
from ox_bb_pipeline.scanners.secrets import redact_text

from .test_extract import WS, push_a_commit, without_timestamps

HOURS_3 = 3 * 3600  # past the sandbox's two-hour access-token lifetime


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("OX_BB_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def connections(fresh_sandbox, tmp_path, home) -> Path:
    return fresh_sandbox.write_connections(tmp_path / "connections.yaml")


class ExpiresOnFirstGitUse:
    """The connection's git credentials; the first time git asks for them, the sandbox's clock moves past the
    token's lifetime: the token the client holds (still valid by its own clock) is then refused."""

    def __init__(self, server, auth) -> None:
        self.server, self.auth, self.expired = server, auth, False

    def __call__(self):
        credentials = self.auth.git_credentials()
        if not self.expired:
            self.expired = True
            self.server.clock.advance(HOURS_3)
        return credentials


class Refusing(GitAccess):
    """git whose `refused` operations (ls-remote, or the history fetch) are refused, as by a credential that
    was revoked and cannot be refreshed."""

    def __init__(self, *args, refused: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.refused = refused

    def run(self, args, *, what, cwd=None, remote=True):
        if self.refused in args:
            raise AuthenticationError(
                f"connection '{self.connection_name}': git refused the credential on {what}",
                connection=self.connection_name,
                endpoint=what,
            )
        return super().run(args, what=what, cwd=cwd, remote=remote)


def extract(connections: Path, name: str, git_factory=None):
    connection = load_connections(connections).get(name)
    client = BitbucketClient(connection, sleep=lambda seconds: None)
    git = (git_factory or (lambda c: GitAccess(name, connection.git_url, c.auth.git_credentials)))(client)
    previous = {t: lake.read_partition("raw", t, name, home=data_home()) for t in tables.TABLES}
    store = StateStore(name, home=data_home())
    state = store.load()
    report = Extractor(client, git, redact_yml=redact_text, previous=previous, state=state, home=data_home()).run()
    for table in tables.TABLES:
        lake.write_partition("raw", table, name, report.rows[table], tables.schema(table), home=data_home())
    store.save(state)
    return report, client


def of(table: str, repository: str, name: str) -> list[dict]:
    return without_timestamps(
        [r for r in lake.read_partition("raw", table, name, home=data_home()) if r.get("repository") == repository]
    )


def test_git_refreshes_an_expired_oauth_token_once_and_goes_on(fresh_sandbox, connections, tmp_path):
    connection = load_connections(connections).get("sandbox-app")
    client = BitbucketClient(connection, sleep=lambda seconds: None)
    git = GitAccess(connection.name, connection.git_url, client.auth.git_credentials)
    assert git.ls_remote(WS, "python-service").branches
    fresh_sandbox.clock.advance(HOURS_3)  # the token expires on the server; the client's clock says it is valid

    heads = git.ls_remote(WS, "python-service")
    fresh_sandbox.clock.advance(HOURS_3)
    git.run(["clone", "--quiet", git.remote_url(WS, "node-web"), str(tmp_path / "clone")], what="node-web clone")

    assert heads.branches and (tmp_path / "clone" / ".git").is_dir()
    assert client.auth.token_requests == 3  # the first token, then one refresh per refusal


def test_a_token_that_expires_mid_run_loses_no_commit_and_no_pipelines_file(fresh_sandbox, connections, tmp_path):
    name = "sandbox-app"
    extract(connections, name)
    pushed = push_a_commit(connections, "python-service", tmp_path / "work")
    clean_yml = {
        r["repository"]: r["yml_present"]
        for r in lake.read_partition("raw", "pipeline_configs", name, home=data_home())
    }

    report, client = extract(
        connections,
        name,
        lambda c: GitAccess(
            name,
            load_connections(connections).get(name).git_url,
            ExpiresOnFirstGitUse(fresh_sandbox, c.auth),
            auth=c.auth,
        ),
    )

    assert report.problems == [] and lake.read_partition("raw", "extraction_status", name, home=data_home()) == []
    assert pushed in {c["commit"] for c in of("main_branch_commits", "python-service", name)}
    assert {
        r["repository"]: r["yml_present"]
        for r in lake.read_partition("raw", "pipeline_configs", name, home=data_home())
    } == clean_yml
    assert client.auth.token_requests == 2


def test_a_failed_history_read_keeps_the_last_rows_marks_the_repository_and_is_read_again(
    fresh_sandbox, connections, tmp_path
):
    name = "sandbox-token"
    extract(connections, name)
    before = {
        t: of(t, "python-service", name)
        for t in ("main_branch_commits", "pipeline_configs", "pipeline_runs", "environments")
    }
    assert before["main_branch_commits"] and before["pipeline_configs"]
    pushed = push_a_commit(connections, "python-service", tmp_path / "work")

    report, _ = extract(
        connections,
        name,
        lambda c: Refusing(
            name, load_connections(connections).get(name).git_url, c.auth.git_credentials, refused="fetch"
        ),
    )

    assert {t: of(t, "python-service", name) for t in before} == before  # stale, not lost
    marked = {
        (s["repository"], s["table_name"], s["status"])
        for s in lake.read_partition("raw", "extraction_status", name, home=data_home())
    }
    assert marked == {
        ("python-service", "main_branch_commits", "error"),
        ("python-service", "pipeline_configs", "error"),
    }
    assert any("refused the credential" in p for p in report.problems)

    extract(connections, name)  # git works again: the repository is read afresh, not carried as it was

    assert pushed in {c["commit"] for c in of("main_branch_commits", "python-service", name)}
    assert lake.read_partition("raw", "extraction_status", name, home=data_home()) == []


def test_a_failed_branch_listing_keeps_the_head_and_does_not_resolve_bb_014(fresh_sandbox, connections):
    name = "sandbox-token"
    extract(connections, name)
    head = {
        r["repository"]: (r["main_head"], r["has_pipelines_yml"])
        for r in lake.read_partition("raw", "repositories", name, home=data_home())
    }
    assert all(h for h, _ in head.values())

    report, _ = extract(
        connections,
        name,
        lambda c: Refusing(
            name, load_connections(connections).get(name).git_url, c.auth.git_credentials, refused="ls-remote"
        ),
    )

    assert {r["repository"]: (r["main_head"], r["has_pipelines_yml"]) for r in report.rows["repositories"]} == head
    posture = evaluate(report.rows, connection=name, now=datetime(2026, 11, 2, tzinfo=UTC))
    bb_014 = {r["repository"]: r["status"] for r in posture.results if r["check_id"] == "BB-014"}
    assert set(bb_014) == set(head) and "pass" not in bb_014.values()


def test_scratch_repositories_of_a_killed_run_are_removed_when_the_next_extract_starts(connections, home):
    """History is fetched into scratch repositories (raw content, secrets included); a run killed while
    reading leaves them behind, and the next run removes them before it reads anything."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = home / "cache" / "git" / f"run-{dead.pid}-x1" / "sandbox-token" / f"{WS}-python-service-abc.git"
    old_layout = home / "cache" / "git" / "sandbox-token" / f"{WS}-node-web-def.git"
    for directory in (stale, old_layout):
        directory.mkdir(parents=True)
        (directory / "objects").write_text("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n")

    extract(connections, "sandbox-token")

    assert not stale.exists() and not old_layout.exists()
    assert list((home / "cache" / "git").iterdir()) == []
