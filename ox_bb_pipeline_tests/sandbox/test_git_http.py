"""git smart HTTP against the sandbox, with the real `git` client.

Repositories are served at `/{workspace}/{repo}.git` with Bitbucket's git credentials (reference,
"Cloning"): an OAuth or access token with the user `x-token-auth`, an API token with the user
`x-bitbucket-api-token-auth` or the Bitbucket username. What git sees is what REST reports:
same heads, same history, and a push shows up in REST at once.
"""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest
import requests

from ox_bb_pipeline.clock import isoformat
from ox_bb_pipeline_tests.conftest import Credentials, bearer

TIMEOUT = 10
WS = "acme-payments"
PRIVATE = "python-service"  # private; alice admin, bob and carol write
PUBLIC = "node-web"  # public


@pytest.fixture
def git(tmp_path):
    """Run git in isolation: no user/system config, no credential prompts, a throw-away HOME."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C",
        "GIT_AUTHOR_NAME": "Test Pusher",
        "GIT_AUTHOR_EMAIL": "alice@example.com",
        "GIT_COMMITTER_NAME": "Test Pusher",
        "GIT_COMMITTER_EMAIL": "alice@example.com",
    }

    def run(
        *args: str, cwd: Path | None = None, auth: tuple[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess:
        prefix = ["git"]
        if auth is not None:
            basic = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            prefix += ["-c", f"http.extraHeader=Authorization: Basic {basic}"]
        proc = subprocess.run([*prefix, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
        if check:
            assert proc.returncode == 0, f"git {' '.join(args)} failed:\n{proc.stderr}"
        return proc

    return run


def clone_url(server, repo: str = PRIVATE, ws: str = WS) -> str:
    return f"{server.base_url}/{ws}/{repo}.git"


def rest(server, path: str, auth) -> requests.Response:
    kwargs = {"headers": bearer(auth)} if isinstance(auth, str) else {"auth": auth}
    return requests.get(f"{server.api_url}{path}", timeout=TIMEOUT, **kwargs)


def all_values(server, path: str, auth) -> list[dict]:
    values, url = [], f"{server.api_url}{path}"
    while url:
        page = requests.get(url, auth=auth, timeout=TIMEOUT).json()
        values += page["values"]
        url = page.get("next")
    return values


def main_head(server, auth, repo: str = PRIVATE) -> str:
    mainbranch = rest(server, f"/repositories/{WS}/{repo}", auth).json()["mainbranch"]["name"]
    return rest(server, f"/repositories/{WS}/{repo}/refs/branches/{mainbranch}", auth).json()["target"]["hash"]


# -- clone with each credential kind --------------------------------------------------------------
@pytest.mark.parametrize("kind", ["api-token-user", "oauth", "access-token"])
def test_clone_with_each_credential_kind_in_an_extra_header(sandbox, creds, git, tmp_path, kind):
    git_auth = {
        "api-token-user": ("x-bitbucket-api-token-auth", creds.token("alice-admin")[1]),
        "oauth": ("x-token-auth", creds.oauth("app")),
        "access-token": ("x-token-auth", creds.access_token()),
    }[kind]
    git("clone", "--quiet", clone_url(sandbox), str(tmp_path / "clone"), auth=git_auth)
    head = git("rev-parse", "HEAD", cwd=tmp_path / "clone").stdout.strip()
    assert head == main_head(sandbox, creds.token())


def test_clone_with_the_username_and_api_token_in_the_rest_clone_link(sandbox, creds, git, tmp_path):
    """REST's https clone link carries the caller's username; git answers the 401 challenge with the
    token given as the password."""
    email, token = creds.token("alice-admin")
    repo = rest(sandbox, f"/repositories/{WS}/{PRIVATE}", (email, token)).json()
    href = next(link["href"] for link in repo["links"]["clone"] if link["name"] == "https")
    assert href.startswith("http://alice@")
    git("clone", "--quiet", href.replace("alice@", f"alice:{token}@"), str(tmp_path / "clone"))
    assert git("rev-parse", "HEAD", cwd=tmp_path / "clone").stdout.strip() == main_head(sandbox, (email, token))


def test_the_email_is_not_a_git_user(sandbox, creds, git, tmp_path):
    email, token = creds.token("alice-admin")
    cloned = git("clone", "--quiet", clone_url(sandbox), str(tmp_path / "clone"), auth=(email, token), check=False)
    assert cloned.returncode != 0
    refs = requests.get(
        f"{clone_url(sandbox)}/info/refs", params={"service": "git-upload-pack"}, auth=(email, token), timeout=TIMEOUT
    )
    assert refs.status_code == 401


def test_clone_agrees_with_rest_on_heads_and_history(sandbox, creds, git, tmp_path):
    alice = creds.token()
    git("clone", "--quiet", clone_url(sandbox), str(tmp_path / "clone"), auth=("alice", alice[1]))
    clone = tmp_path / "clone"

    remote_heads = dict(
        reversed(line.split("\t"))
        for line in git("ls-remote", "--heads", "origin", cwd=clone, auth=("alice", alice[1])).stdout.splitlines()
    )
    rest_heads = {
        f"refs/heads/{b['name']}": b["target"]["hash"]
        for b in all_values(sandbox, f"/repositories/{WS}/{PRIVATE}/refs/branches?pagelen=100", alice)
    }
    assert remote_heads == rest_heads

    history = git("log", "--topo-order", "--format=%H", "HEAD", cwd=clone).stdout.split()
    rest_history = [
        c["hash"] for c in all_values(sandbox, f"/repositories/{WS}/{PRIVATE}/commits/main?pagelen=5", alice)
    ]
    assert rest_history == history

    everything = set(git("rev-list", "--all", cwd=clone).stdout.split())
    assert {
        c["hash"] for c in all_values(sandbox, f"/repositories/{WS}/{PRIVATE}/commits?pagelen=100", alice)
    } == everything

    top = rest(sandbox, f"/repositories/{WS}/{PRIVATE}/commit/{history[0]}", alice).json()
    assert top["message"].rstrip("\n") == git("log", "-1", "--format=%B", cwd=clone).stdout.rstrip("\n")
    assert top["author"]["raw"] == git("log", "-1", "--format=%an <%ae>", cwd=clone).stdout.strip()


# -- push and fetch -------------------------------------------------------------------------------
def test_push_with_write_permission_updates_rest_and_other_clones(fresh_sandbox, git, tmp_path):
    creds = Credentials(fresh_sandbox)
    alice = creds.token("alice-admin")
    git_auth = ("x-bitbucket-api-token-auth", alice[1])
    work, other = tmp_path / "work", tmp_path / "other"
    git("clone", "--quiet", clone_url(fresh_sandbox), str(work), auth=git_auth)
    git("clone", "--quiet", clone_url(fresh_sandbox), str(other), auth=git_auth)
    before = rest(fresh_sandbox, f"/repositories/{WS}/{PRIVATE}", alice).json()["updated_on"]

    (work / "PUSHED.md").write_text("pushed over smart HTTP\n")
    git("add", "PUSHED.md", cwd=work)
    git("commit", "--quiet", "-m", "Add PUSHED.md", cwd=work)
    pushed = git("rev-parse", "HEAD", cwd=work).stdout.strip()
    fresh_sandbox.clock.advance(60)
    git("push", "--quiet", "origin", "HEAD:main", "HEAD:refs/heads/feature/pushed", cwd=work, auth=git_auth)

    assert main_head(fresh_sandbox, alice) == pushed
    branches = {
        b["name"]: b["target"]["hash"]
        for b in all_values(fresh_sandbox, f"/repositories/{WS}/{PRIVATE}/refs/branches", alice)
    }
    assert branches["feature/pushed"] == pushed
    commits = rest(fresh_sandbox, f"/repositories/{WS}/{PRIVATE}/commits", alice).json()["values"]
    assert commits[0]["hash"] == pushed
    assert commits[0]["message"].rstrip("\n") == "Add PUSHED.md"
    source = rest(fresh_sandbox, f"/repositories/{WS}/{PRIVATE}/src/{pushed}/PUSHED.md", alice)
    assert source.text == "pushed over smart HTTP\n"
    updated_on = rest(fresh_sandbox, f"/repositories/{WS}/{PRIVATE}", alice).json()["updated_on"]
    assert updated_on == isoformat(fresh_sandbox.clock.now()) != before

    git("fetch", "--quiet", "origin", cwd=other, auth=git_auth)
    assert git("rev-parse", "origin/main", cwd=other).stdout.strip() == pushed


def test_a_push_larger_than_gits_post_buffer_arrives_whole(fresh_sandbox, git, tmp_path):
    """Past 1 MiB git streams the pack with chunked transfer encoding."""
    creds = Credentials(fresh_sandbox)
    alice = creds.token()
    git_auth = ("alice", alice[1])
    work = tmp_path / "work"
    git("clone", "--quiet", clone_url(fresh_sandbox), str(work), auth=git_auth)
    blob = os.urandom(2 * 1024 * 1024)
    (work / "big.bin").write_bytes(blob)
    git("add", "big.bin", cwd=work)
    git("commit", "--quiet", "-m", "Add a big file", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work, auth=git_auth)
    pushed = git("rev-parse", "HEAD", cwd=work).stdout.strip()
    assert main_head(fresh_sandbox, alice) == pushed
    served = requests.get(
        f"{fresh_sandbox.api_url}/repositories/{WS}/{PRIVATE}/src/{pushed}/big.bin", auth=alice, timeout=TIMEOUT
    )
    assert served.content == blob


def _commit_something(git, work: Path) -> None:
    (work / "NOPE.md").write_text("should not arrive\n")
    git("add", "NOPE.md", cwd=work)
    git("commit", "--quiet", "-m", "Should not arrive", cwd=work)


def test_push_without_write_permission_is_403(fresh_sandbox, git, tmp_path):
    creds = Credentials(fresh_sandbox)
    repo = fresh_sandbox.world.repository(WS, PRIVATE)
    repo.user_permissions["bob"] = "read"
    repo.group_permissions = {"administrators": "admin"}  # bob no longer writes through `developers`
    bob = ("x-bitbucket-api-token-auth", creds.token("bob-member")[1])
    head = main_head(fresh_sandbox, creds.token())
    work = tmp_path / "work"
    git("clone", "--quiet", clone_url(fresh_sandbox), str(work), auth=bob)  # reading is fine
    _commit_something(git, work)

    pushed = git("push", "origin", "HEAD:main", cwd=work, auth=bob, check=False)
    assert pushed.returncode != 0
    assert "403" in pushed.stderr
    assert main_head(fresh_sandbox, creds.token()) == head
    advert = requests.get(
        f"{clone_url(fresh_sandbox)}/info/refs", params={"service": "git-receive-pack"}, auth=bob, timeout=TIMEOUT
    )
    assert advert.status_code == 403


@pytest.mark.parametrize("who", ["carol-limited-api-token", "bob-idp-oauth"])
def test_push_needs_a_write_scope_even_with_write_permission(fresh_sandbox, git, tmp_path, who):
    """carol and bob may write to the repository, but their credentials are read-only."""
    creds = Credentials(fresh_sandbox)
    git_auth = (
        ("carol", creds.token("carol-limited")[1]) if who.startswith("carol") else ("x-token-auth", creds.oauth("idp"))
    )
    head = main_head(fresh_sandbox, creds.token())
    work = tmp_path / "work"
    git("clone", "--quiet", clone_url(fresh_sandbox), str(work), auth=git_auth)
    _commit_something(git, work)

    pushed = git("push", "origin", "HEAD:main", cwd=work, auth=git_auth, check=False)
    assert pushed.returncode != 0
    assert "403" in pushed.stderr
    assert main_head(fresh_sandbox, creds.token()) == head


# -- refusals -------------------------------------------------------------------------------------
def test_private_repository_without_credentials_is_401(sandbox, git, tmp_path):
    cloned = git("clone", "--quiet", clone_url(sandbox), str(tmp_path / "clone"), check=False)
    assert cloned.returncode != 0
    assert not (tmp_path / "clone" / ".git").exists()
    refs = requests.get(f"{clone_url(sandbox)}/info/refs", params={"service": "git-upload-pack"}, timeout=TIMEOUT)
    assert refs.status_code == 401
    assert refs.headers["WWW-Authenticate"] == 'Basic realm="Bitbucket.org HTTP"'


def test_wrong_token_is_401(sandbox, git, tmp_path):
    wrong = ("x-bitbucket-api-token-auth", "ATATT3xwrong")
    cloned = git("clone", "--quiet", clone_url(sandbox), str(tmp_path / "clone"), auth=wrong, check=False)
    assert cloned.returncode != 0  # git is challenged again and may not prompt
    refs = requests.get(
        f"{clone_url(sandbox)}/info/refs", params={"service": "git-upload-pack"}, auth=wrong, timeout=TIMEOUT
    )
    assert refs.status_code == 401


@pytest.mark.parametrize(
    ("ws", "repo", "who"),
    [
        (WS, "no-such-repo", "alice"),  # unknown repository
        ("no-such-workspace", PRIVATE, "alice"),  # unknown workspace
        (WS, "go-worker", "bob"),  # private, and bob has no access
        ("acme-platform", "go-worker", "access-token"),  # another workspace than the token's
    ],
)
def test_unknown_or_inaccessible_repository_is_404(sandbox, creds, git, tmp_path, ws, repo, who):
    git_auth = (
        ("x-token-auth", creds.access_token())
        if who == "access-token"
        else ("x-bitbucket-api-token-auth", creds.token({"alice": "alice-admin", "bob": "bob-member"}[who])[1])
    )
    refs = requests.get(
        f"{clone_url(sandbox, repo, ws)}/info/refs",
        params={"service": "git-upload-pack"},
        auth=git_auth,
        timeout=TIMEOUT,
    )
    assert refs.status_code == 404
    cloned = git("clone", "--quiet", clone_url(sandbox, repo, ws), str(tmp_path / "clone"), auth=git_auth, check=False)
    assert cloned.returncode != 0
    assert "not found" in cloned.stderr.lower()


def test_public_repository_clones_anonymously_but_refuses_anonymous_push(sandbox, creds, git, tmp_path):
    work = tmp_path / "clone"
    git("clone", "--quiet", clone_url(sandbox, PUBLIC), str(work))
    assert git("rev-parse", "HEAD", cwd=work).stdout.strip() == main_head(sandbox, creds.token(), PUBLIC)
    refs = requests.get(
        f"{clone_url(sandbox, PUBLIC)}/info/refs", params={"service": "git-receive-pack"}, timeout=TIMEOUT
    )
    assert refs.status_code == 401


# -- counters -------------------------------------------------------------------------------------
def test_git_requests_are_counted_apart_from_rest(fresh_sandbox, git, tmp_path):
    creds = Credentials(fresh_sandbox)
    base = fresh_sandbox.base_url
    requests.post(f"{base}/_sandbox/stats/reset", timeout=TIMEOUT)
    git(
        "clone",
        "--quiet",
        clone_url(fresh_sandbox),
        str(tmp_path / "clone"),
        auth=("x-bitbucket-api-token-auth", creds.token()[1]),
    )
    stats = requests.get(f"{base}/_sandbox/stats", timeout=TIMEOUT).json()
    assert stats["rest_total"] == 0
    assert stats["git_total"] >= 2  # the ref advertisement and at least one upload-pack exchange
    assert stats["per_credential"] == {"api_token:alice-admin": stats["git_total"]}
    assert stats["per_route"]["/{workspace}/{repo_slug}.git/info/refs"] == 1
    assert stats["per_route"]["/{workspace}/{repo_slug}.git/git-upload-pack"] == stats["git_total"] - 1


# -- faults on the git routes ----------------------------------------------------------------------
GIT_FAULT_ROUTES = {"info/refs": "/*/*.git/info/refs", "git-upload-pack": "/*/*.git/git-upload-pack"}
# What the real git client reports for each fault (the pipeline's messages keep these words).
GIT_FAULT_SAYS = {
    "500": "error: 500",
    "502": "error: 502",
    "503": "error: 503",
    "drop": "Empty reply from server",
    "truncate": ("expected flush", "bytes of body are still expected"),
    "401": ("error: 401", "could not read Username"),
}


@pytest.fixture
def faults(sandbox):
    """Install rules on the session sandbox (none left behind); stats() counts what fired since."""
    base = f"{sandbox.base_url}/_sandbox/faults"
    requests.delete(base, timeout=TIMEOUT)
    yield lambda rule: requests.post(base, json=rule, timeout=TIMEOUT).raise_for_status()
    requests.delete(base, timeout=TIMEOUT)


def injected(sandbox) -> dict:
    return requests.get(f"{sandbox.base_url}/_sandbox/stats", timeout=TIMEOUT).json()["faults_injected"]


@pytest.mark.parametrize("route", list(GIT_FAULT_ROUTES))
@pytest.mark.parametrize("kind", list(GIT_FAULT_SAYS))
def test_a_git_route_fault_fails_one_clone_and_the_next_clone_succeeds(sandbox, faults, git, tmp_path, route, kind):
    """Injected through the same control API as REST faults; `times` 1 fires once."""
    auth = ("x-bitbucket-api-token-auth", Credentials(sandbox).token()[1])
    before = injected(sandbox).get(kind, 0)
    faults({"route": GIT_FAULT_ROUTES[route], "kind": kind, "times": 1})

    failed = git("clone", "--quiet", clone_url(sandbox), str(tmp_path / "one"), auth=auth, check=False)
    cloned = git("clone", "--quiet", clone_url(sandbox), str(tmp_path / "two"), auth=auth, check=False)

    says = GIT_FAULT_SAYS[kind] if isinstance(GIT_FAULT_SAYS[kind], tuple) else (GIT_FAULT_SAYS[kind],)
    assert failed.returncode != 0 and any(s in failed.stderr for s in says), failed.stderr
    assert cloned.returncode == 0, cloned.stderr
    assert injected(sandbox).get(kind, 0) - before == 1


def test_a_persistent_git_fault_fires_until_deleted_and_slow_only_delays(sandbox, creds, faults, git, tmp_path):
    auth = ("x-bitbucket-api-token-auth", Credentials(sandbox).token()[1])
    before = injected(sandbox)
    faults({"route": "/*/*.git/git-upload-pack", "kind": "503", "times": 0})
    for attempt in range(2):
        assert (
            git(
                "clone", "--quiet", clone_url(sandbox), str(tmp_path / f"c{attempt}"), auth=auth, check=False
            ).returncode
            != 0
        )
    requests.delete(f"{sandbox.base_url}/_sandbox/faults", timeout=TIMEOUT)
    faults({"route": "/*/*.git/*", "kind": "slow", "times": 0, "delay": 0.2})

    git("clone", "--quiet", clone_url(sandbox), str(tmp_path / "slow"), auth=auth)

    assert git("rev-parse", "HEAD", cwd=tmp_path / "slow").stdout.strip() == main_head(sandbox, creds.token())
    after = injected(sandbox)
    assert after["503"] - before.get("503", 0) >= 2 and after["slow"] - before.get("slow", 0) >= 2
