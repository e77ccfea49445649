"""The sandbox as a whole: its deterministic world, the planted manifest, importing local
repositories, and `ox-bb sandbox serve` run as a real process."""

from __future__ import annotations

import base64
import dataclasses
import os
import queue
import random
import re
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml

from ox_bb_pipeline_tests.conftest import TINY, Credentials
from ox_bb_sandbox import content
from ox_bb_sandbox.generator import generate, seeded_secrets
from ox_bb_sandbox.importer import RepositoryImportError, import_repository
from ox_bb_sandbox.server import SandboxServer

TIMEOUT = 10
OX_BB = str(Path(sys.executable).with_name("ox-bb"))
CONTENT_KINDS = {"secret", "dependency", "sast", "iac", "pipeline"}
# Posture checks the generator (not the file templates) plants, read from generator.py:
# branch restrictions 001-004, 006-008, 013; default reviewers 012; merged without approval or pushed
# to main 014; public 015; forks 016; inactive 017; stale branch 018; no SECURITY.md 019; admin
# count 020; inactive writer 021; deploy key 022; webhooks 023-024; unsecured variables 025.
GENERATOR_POSTURE_RULES = {
    f"BB-{n:03d}" for n in (1, 2, 3, 4, 6, 7, 8, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25)
}
# What a repository's profile decides (as opposed to its history): absent from clean profiles.
PROFILE_POSTURE_RULES = {f"BB-{n:03d}" for n in (1, 2, 3, 4, 6, 7, 8, 12, 13, 22, 23, 24, 25)}
CLEAN_SLUGS = set(content.CLEAN_PROFILES)


def git_env(home: Path) -> dict:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C",
        "GIT_AUTHOR_NAME": "Importer",
        "GIT_AUTHOR_EMAIL": "importer@example.com",
        "GIT_COMMITTER_NAME": "Importer",
        "GIT_COMMITTER_EMAIL": "importer@example.com",
    }


def git(*args: str, cwd: Path | None = None, env: dict) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# -- the generated world --------------------------------------------------------------------------
def _heads(world) -> dict[str, dict[str, str]]:
    return {
        repo.full_name: dict(repo.git.branches())
        for ws in world.workspaces.values()
        for repo in ws.repositories.values()
    }


def test_same_seed_and_anchor_give_the_same_world(tmp_path):
    first, second = generate(TINY, tmp_path / "a"), generate(TINY, tmp_path / "b")
    assert _heads(first) == _heads(second)
    assert all(len(heads["main"]) == 40 for heads in _heads(first).values())
    assert first.planted == second.planted
    assert seeded_secrets(first) == seeded_secrets(second)


def test_another_seed_gives_other_secrets(tmp_path):
    first = generate(TINY, tmp_path / "a")
    other = generate(dataclasses.replace(TINY, seed=TINY.seed + 1), tmp_path / "b")
    mine, theirs = seeded_secrets(first), seeded_secrets(other)
    assert mine.keys() == theirs.keys()
    assert all(mine[k] != theirs[k] for k in mine)
    planted_values = {p["value"] for p in first.planted if p["kind"] == "secret"}
    assert planted_values and planted_values.isdisjoint({p["value"] for p in other.planted if p["kind"] == "secret"})
    assert _heads(first) != _heads(other)


@pytest.fixture(scope="module")
def planted(sandbox) -> list[dict]:
    response = requests.get(f"{sandbox.base_url}/_sandbox/planted", timeout=TIMEOUT)
    assert response.status_code == 200
    return response.json()["planted"]


def test_planted_manifest_covers_every_kind_and_the_generators_posture_rules(planted):
    assert {p["kind"] for p in planted} >= CONTENT_KINDS
    rules = {p["rule"] for p in planted}
    posture = {r for r in rules if re.fullmatch(r"BB-0(0\d|1\d|2[0-5])", r)}
    assert posture == GENERATOR_POSTURE_RULES
    for p in planted:
        assert p["workspace"] and p["kind"] and p["rule"] and p["detail"]


def test_planted_secrets_carry_their_value_and_sit_where_the_manifest_says(sandbox, creds, planted):
    secrets = [p for p in planted if p["kind"] == "secret"]
    assert secrets
    for p in secrets:
        assert p["value"], p
        response = requests.get(
            f"{sandbox.api_url}/repositories/{p['workspace']}/{p['repository']}/src/main/{p['path']}",
            auth=creds.token(),
            timeout=TIMEOUT,
        )
        assert response.status_code == 200, p
        lines = response.text.splitlines()
        first_line = p["value"].splitlines()[0]  # a private key spans several lines from `line` on
        assert first_line in lines[p["line"] - 1], p
        assert p["value"] in "\n".join(lines[p["line"] - 1 :]), p


def test_clean_profiles_plant_nothing(sandbox, planted):
    clean_repos = {
        (ws.slug, repo.slug)
        for ws in sandbox.world.workspaces.values()
        for repo in ws.repositories.values()
        if repo.slug in CLEAN_SLUGS
    }
    assert clean_repos  # the session sandbox has some
    for p in planted:
        if (p["workspace"], p["repository"]) in clean_repos:
            assert p["kind"] not in CONTENT_KINDS, p
            assert p["rule"] not in PROFILE_POSTURE_RULES, p
    for profile in content.CLEAN_PROFILES:
        _, plants = content.render_profile(profile, random.Random(1), repo_slug=profile)
        assert plants == []


# -- --import-repo --------------------------------------------------------------------------------
@pytest.fixture
def scratch_repo(tmp_path) -> tuple[Path, dict, list[str]]:
    """A small local repository on branch `trunk` with two commits."""
    env = git_env(tmp_path)
    repo = tmp_path / "My Tool"
    repo.mkdir()
    git("init", "--quiet", "--initial-branch=trunk", cwd=repo, env=env)
    (repo / "README.md").write_text("# My tool\n")
    git("add", ".", cwd=repo, env=env)
    git("commit", "--quiet", "-m", "First", cwd=repo, env=env)
    (repo / "src").mkdir()
    (repo / "src" / "tool.py").write_text("print('hello')\n")
    git("add", ".", cwd=repo, env=env)
    git("commit", "--quiet", "-m", "Second", cwd=repo, env=env)
    history = git("log", "--format=%H", cwd=repo, env=env).split()
    return repo, env, history


def test_imported_repository_is_served_by_rest_and_git(scratch_repo, tmp_path):
    repo, env, history = scratch_repo
    with SandboxServer(TINY, import_repos=[f"{repo}=acme-payments/imported-tool", f"{repo}=lab/tool"]) as server:
        creds = Credentials(server)
        alice = creds.token()
        api = server.api_url
        listing = requests.get(f"{api}/repositories/acme-payments", auth=alice, timeout=TIMEOUT).json()
        assert "imported-tool" in {r["slug"] for r in listing["values"]}
        meta = requests.get(f"{api}/repositories/acme-payments/imported-tool", auth=alice, timeout=TIMEOUT).json()
        assert meta["mainbranch"]["name"] == "trunk"
        assert meta["is_private"] is True
        assert meta["project"]["key"] == "IMPORTED"

        source = requests.get(
            f"{api}/repositories/acme-payments/imported-tool/src/trunk/src/tool.py", auth=alice, timeout=TIMEOUT
        )
        assert source.status_code == 200 and source.text == "print('hello')\n"
        commits = requests.get(
            f"{api}/repositories/acme-payments/imported-tool/commits/trunk", auth=alice, timeout=TIMEOUT
        ).json()["values"]
        assert [c["hash"] for c in commits] == history

        # A new workspace is made for a target that does not exist yet, owned by alice.
        tool = requests.get(f"{api}/repositories/lab/tool", auth=alice, timeout=TIMEOUT)
        assert tool.status_code == 200
        assert (
            requests.get(f"{api}/repositories/lab/tool", auth=creds.token("bob-member"), timeout=TIMEOUT).status_code
            == 404
        )

        clone = tmp_path / "clone"
        git(
            "-c",
            f"http.extraHeader=Authorization: Basic {_basic('x-bitbucket-api-token-auth', alice[1])}",
            "clone",
            "--quiet",
            f"{server.base_url}/acme-payments/imported-tool.git",
            str(clone),
            env=env,
        )
        assert git("rev-parse", "HEAD", cwd=clone, env=env).strip() == history[0]
        assert (clone / "README.md").read_text() == "# My tool\n"


def test_default_import_target_is_the_first_workspace_and_the_folder_name(scratch_repo, tmp_path):
    repo, _, _ = scratch_repo
    world = generate(TINY, tmp_path / "world")
    imported = import_repository(world, repo)
    assert imported.full_name == "acme-payments/my-tool"


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
    return generate(TINY, tmp_path_factory.mktemp("world"))


def test_import_refuses_a_missing_path(small_world, tmp_path):
    missing = tmp_path / "does-not-exist"
    with pytest.raises(RepositoryImportError, match=re.escape(str(missing))):
        import_repository(small_world, missing)


def test_import_refuses_a_folder_that_is_not_a_repository(small_world, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(RepositoryImportError, match=re.escape(str(plain))) as raised:
        import_repository(small_world, plain)
    assert "not a git repository" in str(raised.value)


def test_import_refuses_a_folder_inside_a_repository(small_world, scratch_repo):
    repo, _, _ = scratch_repo
    with pytest.raises(RepositoryImportError, match="not the top of a git repository"):
        import_repository(small_world, repo / "src")


def test_import_refuses_a_repository_without_commits(small_world, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    git("init", "--quiet", cwd=empty, env=git_env(tmp_path))
    with pytest.raises(RepositoryImportError, match=re.escape(str(empty))) as raised:
        import_repository(small_world, empty, "acme-payments/empty")
    assert "no branches" in str(raised.value)


def test_import_refuses_a_bad_or_taken_target(small_world, scratch_repo):
    repo, _, _ = scratch_repo
    with pytest.raises(RepositoryImportError, match="workspace/slug"):
        import_repository(small_world, repo, "no-slash")
    with pytest.raises(RepositoryImportError, match="already exists"):
        import_repository(small_world, repo, "acme-payments/python-service")


def test_server_refuses_a_bad_import_and_cleans_up(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    with pytest.raises(RepositoryImportError, match="nowhere"):
        SandboxServer(TINY, import_repos=[str(tmp_path / "nowhere")])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("ox-bb-sandbox-")]


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_write_connections_keeps_secrets_beside_the_file_whatever_its_name(sandbox, tmp_path):
    for name in ("connections.yaml", "sandbox.env"):
        written = sandbox.write_connections(tmp_path / name)
        env_file = tmp_path / f"{name}.env"
        document = yaml.safe_load(written.read_text())
        assert document["env_file"] == env_file.name
        assert "OX_BB_SANDBOX_TOKEN_ALICE_ADMIN=" in env_file.read_text()
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600


# -- ox-bb sandbox serve --------------------------------------------------------------------------
class Lines:
    """Lines of a pipe, read in a thread so the test can wait with a deadline."""

    def __init__(self, stream) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self.queue.put(line.rstrip("\n"))

    def next(self, timeout: float = 30) -> str:
        return self.queue.get(timeout=timeout)


def test_serve_prints_its_url_writes_connections_and_stops_on_sigterm(tmp_path):
    connections = tmp_path / "connections.yaml"
    proc = subprocess.Popen(
        [
            OX_BB,
            "sandbox",
            "serve",
            "--port",
            "0",
            "--write-connections",
            str(connections),
            "--repos",
            "2",
            "--workspaces",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = Lines(proc.stdout), Lines(proc.stderr)
        base_url = err.next()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base_url)
        printed = [out.next(5) for _ in range(5)]
        assert printed[0] == "ox-bb sandbox: 1 workspaces, 2 repositories"
        assert f"REST API  {base_url}/2.0" in printed
        assert any(str(connections) in line for line in printed)

        stats = requests.get(f"{base_url}/_sandbox/stats", timeout=TIMEOUT)
        assert stats.status_code == 200 and stats.json()["rest_total"] == 0

        env_file = connections.with_name(connections.name + ".env")
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        values = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        assert values and all(k.startswith("OX_BB_SANDBOX_") and v for k, v in values.items())
        text = connections.read_text()
        for name, value in values.items():
            assert value not in text, name
        document = yaml.safe_load(text)
        assert document["env_file"] == env_file.name
        refs = set(re.findall(r"\$\{(OX_BB_SANDBOX_\w+)\}", text))
        assert refs and refs <= values.keys()
        for entry in document["connections"]:
            assert entry["host_url"] == f"{base_url}/2.0"

        # The written credentials work against the printed URL.
        me = requests.get(
            f"{base_url}/2.0/user",
            auth=("alice@example.com", values["OX_BB_SANDBOX_TOKEN_ALICE_ADMIN"]),
            timeout=TIMEOUT,
        )
        assert me.status_code == 200 and me.json()["username"] == "alice"

        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - started < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_help():
    result = subprocess.run([OX_BB, "sandbox", "serve", "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    for option in ("--port", "--write-connections", "--fault", "--import-repo", "--manual-clock", "--rate-limit"):
        assert option in result.stdout


def test_serve_refuses_a_bad_fault_spec():
    """(Every way a spec can be wrong is covered by FaultRule.parse's own test.)"""
    result = subprocess.run(
        [OX_BB, "sandbox", "serve", "--fault", "/2.0/repositories/*=teapot"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2  # click's usage error
    assert "Usage: ox-bb sandbox serve" in result.stderr
    assert "unknown fault kind 'teapot'" in result.stderr


def test_serve_refuses_a_bad_import_path(tmp_path):
    missing = tmp_path / "missing-repo"
    result = subprocess.run(
        [OX_BB, "sandbox", "serve", "--repos", "1", "--workspaces", "1", "--import-repo", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert str(missing) in result.stderr


def test_the_sandbox_restarts_on_a_data_dir_whose_repositories_changed(tmp_path):
    data_dir = tmp_path / "sandbox"
    with SandboxServer(TINY, data_dir=data_dir):
        pass
    changed = dataclasses.replace(TINY, seed=TINY.seed + 1, repos=TINY.repos + 1)

    with SandboxServer(changed, data_dir=data_dir) as server:  # used to stop on a git fast-import traceback
        served = {
            r.full_name: sorted(r.git.branches())
            for w in server.world.workspaces.values()
            for r in w.repositories.values()
        }
    fresh = generate(changed, tmp_path / "fresh")  # what a new --data-dir would hold

    assert served == {
        r.full_name: sorted(r.git.branches()) for w in fresh.workspaces.values() for r in w.repositories.values()
    }  # the regenerated history, no branch of the old one


def test_a_data_dir_holding_something_else_where_a_repository_goes_is_refused_in_one_line(tmp_path):
    data_dir = tmp_path / "sandbox"
    with SandboxServer(TINY, data_dir=data_dir) as server:
        [ws] = server.world.workspaces.values()
        slug = next(iter(ws.repositories))
    target = data_dir / "git" / ws.slug / f"{slug}.git"
    subprocess.run(["rm", "-rf", str(target)], check=True)
    target.mkdir()
    (target / "notes.txt").write_text("mine")

    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("ox-bb")),
            "sandbox",
            "serve",
            "--data-dir",
            str(data_dir),
            "--seed",
            str(TINY.seed),
            "--workspaces",
            "1",
            "--repos",
            str(TINY.repos),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert f"{target} exists and is not a sandbox repository; remove it or choose another --data-dir" in result.stderr
    assert "Traceback" not in result.stderr and (target / "notes.txt").exists()
