"""Shared fixtures: real sandboxes on free ports, with their seeded credentials."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests

from ox_bb_pipeline.clock import ManualClock
from ox_bb_sandbox.generator import SandboxSpec
from ox_bb_sandbox.server import SandboxServer

ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)
SMALL = SandboxSpec(seed=7, workspaces=2, projects=2, repos=6, branches=2, pull_requests=4, commits=4, anchor=ANCHOR)
TINY = SandboxSpec(seed=11, workspaces=1, projects=1, repos=2, branches=1, pull_requests=2, commits=2, anchor=ANCHOR)


class Credentials:
    """Ready-made `requests` auth for the seeded accounts of a sandbox."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.secrets = server.secrets()

    def token(self, name: str = "alice-admin") -> tuple[str, str]:
        user = {"alice-admin": "alice", "bob-member": "bob", "carol-limited": "carol"}[name]
        return (f"{user}@example.com", self.secrets[f"OX_BB_SANDBOX_TOKEN_{name.upper().replace('-', '_')}"])

    def oauth(self, consumer: str = "app") -> str:
        """An access token from the client-credentials grant (app) or the current refresh token (idp;
        the sandbox rotates refresh tokens, and `server.secrets()` always names the live one)."""
        prefix = f"OX_BB_SANDBOX_{consumer.upper()}"
        key, secret = self.secrets[f"{prefix}_KEY"], self.secrets[f"{prefix}_SECRET"]
        if consumer == "app":
            form = {"grant_type": "client_credentials"}
        else:
            form = {"grant_type": "refresh_token", "refresh_token": self.server.secrets()[f"{prefix}_REFRESH_TOKEN"]}
        response = requests.post(
            f"{self.server.base_url}/site/oauth2/access_token", data=form, auth=(key, secret), timeout=10
        )
        response.raise_for_status()
        body = response.json()
        return body["access_token"]

    def access_token(self) -> str:
        return self.secrets["OX_BB_SANDBOX_ACCESS_TOKEN_WORKSPACE_TOKEN"]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session", autouse=True)
def sandbox_advisories():
    """The tests' advisory data: the sandbox's own OSV records (product code has no default; the
    advisories tests unset this to exercise the synced index and `not_evaluable`)."""
    from ox_bb_sandbox.content import advisories_dir

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OX_BB_OSV_PATH", str(advisories_dir()))
        yield advisories_dir()


@pytest.fixture(scope="session", autouse=True)
def session_state_dir(tmp_path_factory):
    """Tests never touch the installation's real state dir (refresh tokens, fingerprint salt): the
    session gets its own, inherited by every subprocess it starts."""
    import os

    path = tmp_path_factory.mktemp("state")
    previous = os.environ.get("OX_BB_STATE_DIR")
    os.environ["OX_BB_STATE_DIR"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("OX_BB_STATE_DIR", None)
    else:
        os.environ["OX_BB_STATE_DIR"] = previous


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    """A state dir of this test's own (an installation that never ran)."""
    path = tmp_path / "state"
    monkeypatch.setenv("OX_BB_STATE_DIR", str(path))
    return path


@pytest.fixture
def isolated_home(tmp_path, monkeypatch):
    """An empty OX_BB_HOME, run from tmp_path (no applications.yaml / suppressions.yaml /
    workflows.yaml from the working directory), none of the user's settings or Dagster home, and
    one DuckDB thread."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("OX_BB_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    for var in (
        "OX_BB_APPLICATIONS",
        "OX_BB_SUPPRESSIONS",
        "OX_BB_SLA",
        "OX_BB_SLA_DAYS",
        "OX_BB_WORKFLOWS",
        "DAGSTER_HOME",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OX_BB_DUCKDB_THREADS", "1")
    return home


@pytest.fixture(scope="session")
def sandbox():
    """One read-mostly sandbox for the session (system clock). Tests that move time, change
    limits or inject faults start their own with `fresh_sandbox`."""
    with SandboxServer(SMALL) as server:
        yield server


@pytest.fixture(scope="session")
def creds(sandbox) -> Credentials:
    return Credentials(sandbox)


@pytest.fixture
def fresh_sandbox():
    """A tiny private sandbox with a manual clock; use it to move time, limit rates or inject faults."""
    with SandboxServer(TINY, clock=ManualClock(ANCHOR)) as server:
        yield server


def pytest_ignore_collect(collection_path, config):
    """`-m unit` (make test-fast) collects only what can hold a unit test (tiers.py), instead of importing every
    module to deselect most of them; None leaves every other run to pytest."""
    if config.getoption("markexpr", "") == "unit":
        from ox_bb_pipeline_tests.tiers import outside_unit_tier

        return True if outside_unit_tier(collection_path) else None
    return None


def pytest_collection_modifyitems(items):
    """The unit tier (`make test-fast`): the modules listed in tiers.py."""
    from ox_bb_pipeline_tests.tiers import mark_unit_tier

    mark_unit_tier(items)
