"""A thin `requests` client for the REST tests, and look-ups of expected answers in `server.world`.

Every call goes over real HTTP to a running SandboxServer; the world is only read to work out
what the answer should be.
"""

from __future__ import annotations

import subprocess
from urllib.parse import parse_qsl, urlsplit

import requests

from ox_bb_sandbox.world import Repository, World

NO_REPO_MESSAGE = (
    "You may not have access to this repository or it no longer exists in this workspace. "
    "If you think this repository exists and you have access, make sure you are authenticated."
)


class Api:
    """GETs (and writes) against one sandbox as one caller; paths are relative to /2.0."""

    def __init__(self, server, auth=None, headers: dict | None = None) -> None:
        self.server = server
        self.session = requests.Session()
        self.session.auth = auth
        self.session.headers.update(headers or {})

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.server.api_url}{path}"

    def get(self, path: str, params=None, **kwargs) -> requests.Response:
        return self.session.get(self.url(path), params=params, timeout=10, allow_redirects=False, **kwargs)

    def json(self, path: str, params=None, status: int = 200) -> dict:
        response = self.get(path, params)
        assert response.status_code == status, (response.status_code, response.text[:500])
        return response.json()

    def error(self, path: str, params=None, status: int = 400) -> str:
        """The `error.message` of a failing call, after checking the status and the error envelope."""
        body = self.json(path, params, status=status)
        assert body["type"] == "error"
        return body["error"]["message"]

    def values(self, path: str, params=None) -> list[dict]:
        """Every item of a listing, following `next` verbatim to the end (50 a page: every
        endpoint allows that many, pull requests and their activity no more)."""
        page = self.json(path, {"pagelen": 50, **(params or {})})
        items = list(page["values"])
        while page.get("next"):
            page = self.json(page["next"])
            items += page["values"]
        return items

    def put(self, path: str, body, status: int = 200) -> dict:
        response = self.session.put(self.url(path), json=body, timeout=10)
        assert response.status_code == status, (response.status_code, response.text[:500])
        return response.json()

    def post(self, path: str, body, status: int = 201) -> dict | list:
        response = self.session.post(self.url(path), json=body, timeout=10)
        assert response.status_code == status, (response.status_code, response.text[:500])
        return response.json()


def query_of(url: str) -> list[tuple[str, str]]:
    """A link's query parameters in order, decoded (repeated names kept)."""
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def git(repo: Repository, *args: str) -> bytes:
    """Ask git itself (not the sandbox) about a repository's bare directory."""
    return subprocess.run(["git", "--git-dir", str(repo.git.path), *args], check=True, capture_output=True).stdout


def git_lines(repo: Repository, *args: str) -> list[str]:
    return git(repo, *args).decode().split()


def first_workspace(world: World) -> str:
    return sorted(world.workspaces)[0]


def repositories(world: World, workspace: str | None = None) -> list[Repository]:
    slugs = [workspace] if workspace else sorted(world.workspaces)
    return [r for ws in slugs for r in sorted(world.workspaces[ws].repositories.values(), key=lambda r: r.slug)]


def find_repo(world: World, predicate, workspace: str | None = None) -> Repository:
    found = next((r for r in repositories(world, workspace) if predicate(r)), None)
    assert found is not None, "the generated world has no such repository"
    return found


def repo_path(repo: Repository) -> str:
    return f"/repositories/{repo.full_name}"
