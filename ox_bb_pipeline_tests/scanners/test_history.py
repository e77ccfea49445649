"""Secrets in git history against the sandbox over real git: a secret deleted in a later commit is a
`secret_in_history` finding (introducing commit, masked author), a second run reads only the new commits,
the limits cut a run at a commit boundary, and opt-in live checks tell a live planted token from a revoked
one with requests to the connection's host only."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from ox_bb_pipeline.bitbucket.live import HostRefused, LiveChecker
from ox_bb_pipeline.findings import RepoRef
from ox_bb_pipeline.scanners import history
from ox_bb_pipeline.scanners.secrets import SecretsScanner
from ox_bb_pipeline.scanners.snapshot import take_snapshot

from .conftest import git_access

AUTHOR = ("Dana Prince", "dana.prince@example.com")
AWS_KEY = "AKIAZ7QW3RTY5UIO2PLM"  # a key id shape the AWS detector reports, not a real key
NOW = datetime(2026, 11, 2, tzinfo=UTC)


class FixedClock:
    def now(self) -> datetime:
        return NOW


def _repository(server):
    ws = next(iter(server.world.workspaces.values()))
    return ws, sorted(ws.repositories.values(), key=lambda r: r.slug)[0]


def commit(repo, work: Path, changes: dict[str, str | None], message: str, author=AUTHOR) -> str:
    """A commit on the main branch of a sandbox repository, made in a local clone and pushed to its bare
    repository (`None` deletes a file). Returns the new commit."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
        "GIT_AUTHOR_NAME": author[0],
        "GIT_AUTHOR_EMAIL": author[1],
        "GIT_COMMITTER_NAME": author[0],
        "GIT_COMMITTER_EMAIL": author[1],
    }

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "safe.directory=*", *args], cwd=work, env=env, capture_output=True, text=True, check=True
        ).stdout

    if not (work / ".git").exists():
        subprocess.run(
            ["git", "-c", "safe.directory=*", "clone", "--quiet", str(repo.git.path), str(work)],
            env=env,
            check=True,
            capture_output=True,
        )
    git("checkout", "--quiet", repo.mainbranch)
    git("pull", "--quiet", "origin", repo.mainbranch)
    for path, text in changes.items():
        target = work / path
        if text is None:
            git("rm", "--quiet", path)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        git("add", path)
    git("commit", "--quiet", "-m", message)
    git("push", "--quiet", "origin", f"HEAD:refs/heads/{repo.mainbranch}")
    repo.git.refresh()
    return git("rev-parse", "HEAD").strip()


def row(ws, repo, head: str) -> dict:
    return {
        "selected": True,
        "main_head": head,
        "connection": "sandbox-token",
        "workspace": ws.slug,
        "repository_uuid": repo.uuid,
        "repository": repo.slug,
        "mainbranch": repo.mainbranch,
    }


def tip_rows(server, ws, repo, head: str, tmp: Path) -> list[dict]:
    """The tip scan's secrets findings at `head`, as the scan stage hands them to the history scan."""
    ref = RepoRef("sandbox-token", ws.slug, repo.uuid, repo.slug, head)
    snapshot = take_snapshot(git_access(server), ref, repo.mainbranch, tmp)
    return [f.row() for f in SecretsScanner().scan([snapshot])[0].findings]


def run(server, ws, repo, home: Path, tmp: Path, **kwargs) -> history.HistoryResult:
    head = repo.git.resolve(repo.mainbranch)
    tips = kwargs.pop("tips", None)
    tips = tips if tips is not None else tip_rows(server, ws, repo, head, tmp / f"tip-{head[:8]}")
    (result,) = history.scan_connection(
        [row(ws, repo, head)], git_access(server), tips, home, clock=FixedClock(), **kwargs
    )
    assert result.error is None
    return result


def stats(server) -> dict:
    return requests.get(f"{server.base_url}/_sandbox/stats", timeout=10).json()


def test_a_secret_deleted_later_is_found_in_history_with_commit_and_masked_author(fresh_sandbox, tmp_path, secret_salt):
    ws, repo = _repository(fresh_sandbox)
    introduced = commit(repo, tmp_path / "work", {"deploy/aws.py": f'KEY_ID = "{AWS_KEY}"\n'}, "add deploy key")
    commit(repo, tmp_path / "work", {"deploy/aws.py": "KEY_ID = os.environ['KEY_ID']\n"}, "read the key at run time")

    result = run(fresh_sandbox, ws, repo, tmp_path / "home", tmp_path)

    ours = [f for f in result.findings if f.file_path == "deploy/aws.py"]
    assert [(f.scanner, f.rule_id, f.commit, f.start_line, f.base_severity) for f in ours] == [
        ("git_history", "secret_in_history", introduced, 1, "high")
    ]
    assert "introduced in " + introduced[:12] + " by D. P. <…@example.com>" in ours[0].evidence
    assert "aws-access-key" in ours[0].evidence
    rows = str([f.row() for f in result.findings])
    assert AWS_KEY not in rows and "dana.prince" not in rows and "Dana" not in rows
    cursor = (tmp_path / "home" / "cache" / "history").rglob("*.json")
    assert all(AWS_KEY not in path.read_text() for path in cursor)
    # the sandbox's planted secrets still at the tip are the tip scan's, not history findings
    tips = tip_rows(fresh_sandbox, ws, repo, repo.git.resolve(repo.mainbranch), tmp_path / "tip-again")
    assert tips
    assert not {(r["file_path"], f"{r['rule_id']}: {r['evidence']}") for r in tips} & {
        (f.file_path, f.evidence.split("; introduced")[0]) for f in result.findings
    }
    # a re-run reports the same finding (same fingerprint), not a duplicate
    again = run(fresh_sandbox, ws, repo, tmp_path / "home", tmp_path, tips=tips)
    assert [f.finding_id for f in again.findings] == [f.finding_id for f in result.findings]


def test_a_second_run_reads_only_the_new_commits_and_limits_cut_at_commit_boundaries(
    fresh_sandbox, tmp_path, secret_salt
):
    ws, repo = _repository(fresh_sandbox)
    commit(repo, tmp_path / "work", {"a.txt": "a\n"}, "a")
    commit(repo, tmp_path / "work", {"b.txt": "b\n"}, "b")
    total = len(repo.git.rev_list([repo.mainbranch]))
    home = tmp_path / "home"

    first = run(fresh_sandbox, ws, repo, home, tmp_path, limits=history.HistoryLimits(max_commits=2))
    assert (first.commits_scanned, first.commits_pending, first.commits_total) == (2, total - 2, 2)
    rest = run(fresh_sandbox, ws, repo, home, tmp_path)
    assert (rest.commits_scanned, rest.commits_pending, rest.commits_total) == (total - 2, 0, total)

    commit(repo, tmp_path / "work", {"notes.txt": "nothing secret\n"}, "notes")
    new = run(fresh_sandbox, ws, repo, home, tmp_path)
    assert (new.commits_scanned, new.commits_pending, new.commits_total) == (1, 0, total + 1)
    assert run(fresh_sandbox, ws, repo, home, tmp_path).commits_scanned == 0


def test_live_checks_tell_a_live_token_from_a_revoked_one_on_the_connections_host_only(
    fresh_sandbox, tmp_path, secret_salt
):
    ws, repo = _repository(fresh_sandbox)
    live = fresh_sandbox.world.plant_access_token(ws.slug, repo.slug, live=True)
    live_name = fresh_sandbox.world.access_tokens[-1].name
    revoked = fresh_sandbox.world.plant_access_token(ws.slug, repo.slug, live=False)
    commit(
        repo,
        tmp_path / "work",
        {"ci/tokens.env": f"BITBUCKET_TOKEN={live}\nOLD_BITBUCKET_TOKEN={revoked}\nAWS_KEY_ID={AWS_KEY}\n"},
        "ci tokens",
    )
    commit(repo, tmp_path / "work", {"ci/tokens.env": f"BITBUCKET_TOKEN={live}\n"}, "drop the old token")
    head = repo.git.resolve(repo.mainbranch)
    tips = tip_rows(fresh_sandbox, ws, repo, head, tmp_path / "tip")
    requests.post(f"{fresh_sandbox.base_url}/_sandbox/stats/reset", timeout=10)
    waits = []
    checker = LiveChecker(
        fresh_sandbox.base_url,
        f"{fresh_sandbox.base_url}/site/oauth2/access_token",
        min_interval=5.0,
        clock=FixedClock(),
        sleep=waits.append,
        monotonic=lambda: 100.0,
    )

    result = run(fresh_sandbox, ws, repo, tmp_path / "home", tmp_path, tips=tips, checker=checker)

    in_history = sorted(
        (f.evidence.partition(":")[0], f.validity, f.validity_checked_at)
        for f in result.findings
        if f.file_path == "ci/tokens.env"
    )
    assert in_history == [("aws-access-key", None, None), ("bitbucket-access-token", "revoked", NOW)]
    at_tip = [r for r in tips if r["file_path"] == "ci/tokens.env" and r["rule_id"] == "bitbucket-access-token"]
    assert [(r["validity"], r["validity_checked_at"]) for r in at_tip] == [("active", NOW)]
    # the AWS key (another kind of secret) is never checked: two requests in all, one per Bitbucket token,
    # both to the sandbox's git endpoint, the second after the rate limit's wait
    assert (checker.checks, result.live_checks, waits) == (2, 2, [5.0])
    seen = stats(fresh_sandbox)
    assert seen["per_credential"].get(f"access_token:{live_name}") == 1  # the live token, once
    assert seen["per_status"].get("401") == 1  # the revoked one, refused once
    assert checker.adapter.refused == 0
    text = str(result.findings) + str(tips) + "".join(p.read_text() for p in (tmp_path / "home").rglob("*.json"))
    assert live not in text and revoked not in text


def test_live_check_session_refuses_every_address_but_the_connections(fresh_sandbox):
    import socket

    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    other.listen(1)
    other.setblocking(False)
    try:
        port = other.getsockname()[1]
        checker = LiveChecker(fresh_sandbox.base_url, f"{fresh_sandbox.base_url}/site/oauth2/access_token")
        for url in (
            f"http://127.0.0.1:{port}/ws/repo.git/info/refs",  # same address, another port
            "https://api.atlassian.com/me",  # where an Atlassian API token would be "at home"
            f"https://{fresh_sandbox.base_url.split('://')[1]}/ws/repo.git/info/refs",  # another scheme
        ):
            with pytest.raises(HostRefused, match="not the connection's host"):
                checker.session.get(url, timeout=5)
        assert checker.adapter.refused == 3
        with pytest.raises(BlockingIOError):
            other.accept()  # no connection ever reached the other listener
        # a credential whose checker is pointed elsewhere is not asked at the sandbox either
        before = stats(fresh_sandbox)["git_total"]
        elsewhere = LiveChecker(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/token")
        elsewhere.session = checker.session  # the connection's session: it refuses the other host
        validity, _ = elsewhere.check("bitbucket-access-token", "ATCTT3" + "x" * 120, "ws", "repo")
        assert validity == "unknown" and checker.adapter.refused == 4
        with pytest.raises(BlockingIOError):
            other.accept()
        assert stats(fresh_sandbox)["git_total"] == before
        # other kinds of secret are never checked at all
        assert checker.check("aws-access-key", AWS_KEY, "ws", "repo") == (None, None)
        assert checker.checks == 0
    finally:
        other.close()


def test_without_opt_in_no_live_check_is_made(fresh_sandbox, tmp_path, secret_salt):
    ws, repo = _repository(fresh_sandbox)
    live = fresh_sandbox.world.plant_access_token(ws.slug, repo.slug, live=True)
    live_name = fresh_sandbox.world.access_tokens[-1].name
    commit(repo, tmp_path / "work", {"ci/token.env": f"BITBUCKET_TOKEN={live}\n"}, "token")
    commit(repo, tmp_path / "work", {"ci/token.env": None}, "drop it")
    requests.post(f"{fresh_sandbox.base_url}/_sandbox/stats/reset", timeout=10)

    result = run(fresh_sandbox, ws, repo, tmp_path / "home", tmp_path)

    token = [f for f in result.findings if f.file_path == "ci/token.env"]
    assert [(f.validity, f.validity_checked_at) for f in token] == [(None, None)]
    assert result.live_checks == 0
    seen = stats(fresh_sandbox)
    assert seen["per_credential"].get(f"access_token:{live_name}") is None and "401" not in seen["per_status"]
