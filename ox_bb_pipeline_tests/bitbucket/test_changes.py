"""Change detection against the sandbox: a quiet poll costs one listing per workspace and no
per-repository request, a push to main is one change and only once, activity off the main branch
is none, the first poll after an extract finds what changed since, and a bounded poll leaves the
rest for the next one, resuming from a saved (JSON) cursor.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
import yaml

from ox_bb_pipeline import lake
from ox_bb_pipeline.bitbucket import tables
from ox_bb_pipeline.bitbucket.changes import ChangeDetector
from ox_bb_pipeline.bitbucket.client import BitbucketClient
from ox_bb_pipeline.bitbucket.extract import Extractor, StateStore
from ox_bb_pipeline.bitbucket.git import GitAccess
from ox_bb_pipeline.config import data_home, load_connections
from ox_bb_pipeline.scanners.secrets import redact_text

WS = "acme-payments"
LISTING = "/2.0/repositories/{workspace}"
PER_REPOSITORY = "/2.0/repositories/{workspace}/{repo_slug}"


@pytest.fixture
def connection_file(fresh_sandbox, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("OX_BB_HOME", str(tmp_path / "home"))
    return fresh_sandbox.write_connections(tmp_path / "connections.yaml")


def access(path: Path, name: str = "sandbox-token") -> tuple[BitbucketClient, GitAccess]:
    connection = load_connections(path).get(name)
    client = BitbucketClient(connection, sleep=lambda seconds: None)
    return client, GitAccess(name, connection.git_url, client.auth.git_credentials)


def detector(path: Path, **kw) -> ChangeDetector:
    return ChangeDetector(*access(path), **kw)


def stats(server, reset: bool = False) -> dict:
    if reset:
        requests.post(f"{server.base_url}/_sandbox/stats/reset", timeout=10).raise_for_status()
        return {}
    return requests.get(f"{server.base_url}/_sandbox/stats", timeout=10).json()


def advance(server, seconds: float = 60) -> None:
    """Later pushes get later `updated_on` stamps (the sandbox's clock is manual)."""
    requests.post(f"{server.base_url}/_sandbox/clock", json={"advance_seconds": seconds}, timeout=10).raise_for_status()


def push(path: Path, slug: str, work: Path, branch: str = "main") -> str:
    """Clone, commit, push to `branch`; the new commit."""
    _, git = access(path)
    git.run(["clone", "--quiet", git.remote_url(WS, slug), str(work)], what="clone")
    identity = ["-c", "user.name=Test Pusher", "-c", "user.email=pusher@example.com"]
    git.run(
        ["-C", str(work), *identity, "commit", "--quiet", "--allow-empty", "-m", "Change"],
        what="commit",
        remote=False,
    )
    git.run(["-C", str(work), "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}"], what="push")
    return git.run(["-C", str(work), "rev-parse", "HEAD"], what="rev-parse", remote=False).strip()


def extract(path: Path, name: str = "sandbox-token") -> None:
    client, git = access(path, name)
    store = StateStore(name, home=data_home())
    state = store.load()
    report = Extractor(client, git, redact_yml=redact_text, previous={}, state=state, home=data_home()).run()
    for table in tables.TABLES:
        lake.write_partition("raw", table, name, report.rows[table], tables.schema(table), home=data_home())
    store.save(state)


def test_a_quiet_poll_lists_each_workspace_once_and_reads_no_repository(fresh_sandbox, connection_file):
    first = detector(connection_file).poll(None)
    stats(fresh_sandbox, reset=True)

    quiet = detector(connection_file).poll(first.cursor)

    assert quiet.changes == [] and quiet.problems == []
    counted = stats(fresh_sandbox)
    assert counted["per_route"] == {"/2.0/user/workspaces": 1, LISTING: 1}
    assert not any(route.startswith(PER_REPOSITORY) for route in counted["per_route"])
    assert counted["git_total"] == 0
    assert quiet.cursor == first.cursor


def test_a_push_to_main_is_one_change_once_and_a_saved_cursor_resumes(fresh_sandbox, connection_file, tmp_path):
    saved = json.dumps(detector(connection_file).poll(None).cursor)
    advance(fresh_sandbox)
    pushed = push(connection_file, "python-service", tmp_path / "work")
    stats(fresh_sandbox, reset=True)

    # A new process, with the cursor from storage.
    poll = detector(connection_file).poll(json.loads(saved))

    assert [(c.full_name, c.main_head) for c in poll.changes] == [(f"{WS}/python-service", pushed)]
    counted = stats(fresh_sandbox)
    assert not any(route.startswith(PER_REPOSITORY) for route in counted["per_route"])
    # One ls-remote, for the one repository listed.
    assert counted["per_route"]["/{workspace}/{repo_slug}.git/info/refs"] == 1
    again = detector(connection_file).poll(json.loads(json.dumps(poll.cursor)))
    assert again.changes == []


def test_activity_off_the_main_branch_is_no_change(fresh_sandbox, connection_file, tmp_path):
    extract(connection_file)
    cursor = detector(
        connection_file, baseline=lake.read_partition("raw", "repositories", "sandbox-token", home=data_home())
    ).poll()
    advance(fresh_sandbox)
    push(connection_file, "node-web", tmp_path / "work", branch="feature/new-login")

    poll = detector(
        connection_file, baseline=lake.read_partition("raw", "repositories", "sandbox-token", home=data_home())
    ).poll(cursor.cursor)

    assert poll.changes == []
    assert poll.cursor["workspaces"][WS]["updated_on"] > cursor.cursor["workspaces"][WS]["updated_on"]


def test_the_first_poll_after_an_extract_finds_what_changed_since(fresh_sandbox, connection_file, tmp_path):
    extract(connection_file)
    before = next(
        r["main_head"]
        for r in lake.read_partition("raw", "repositories", "sandbox-token", home=data_home())
        if r["repository"] == "node-web"
    )
    advance(fresh_sandbox)
    pushed = push(connection_file, "node-web", tmp_path / "work")

    poll = detector(
        connection_file, baseline=lake.read_partition("raw", "repositories", "sandbox-token", home=data_home())
    ).poll()

    assert [(c.repository, c.previous_head, c.main_head) for c in poll.changes] == [("node-web", before, pushed)]


def test_a_bounded_poll_leaves_the_rest_for_the_next(fresh_sandbox, connection_file, tmp_path):
    cursor = detector(connection_file).poll().cursor
    advance(fresh_sandbox)
    # Both pushes at the same instant: the cursor must tell tied updated_on stamps apart.
    heads = {slug: push(connection_file, slug, tmp_path / slug) for slug in ("python-service", "node-web")}

    found = []
    for _ in range(3):
        poll = detector(connection_file, max_repositories=1).poll(cursor)
        found.append([(c.repository, c.main_head) for c in poll.changes])
        cursor = poll.cursor

    assert len(found[0]) == 1 and len(found[1]) == 1 and found[2] == []
    assert sorted(found[0] + found[1]) == sorted(heads.items())


def test_a_repository_outside_the_selection_is_never_a_change(fresh_sandbox, connection_file, tmp_path):
    document = yaml.safe_load(connection_file.read_text())
    next(c for c in document["connections"] if c["name"] == "sandbox-token")["exclude"] = ["*/*/node-web"]
    connection_file.write_text(yaml.safe_dump(document, sort_keys=False))
    cursor = detector(connection_file).poll().cursor
    advance(fresh_sandbox)
    push(connection_file, "node-web", tmp_path / "work")

    poll = detector(connection_file).poll(cursor)

    assert poll.changes == []
    assert poll.cursor["workspaces"][WS]["heads"] == {}  # not even looked at with git
