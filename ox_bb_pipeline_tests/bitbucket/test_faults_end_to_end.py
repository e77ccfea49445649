"""Faults end to end: the extract stage, as the `bitbucket_raw_tables` asset runs it, against a sandbox
that injects each of its fault kinds into the listing, pull-request, settings and pipelines routes, plus
a low rate limit and an OAuth token that expires mid-run.

Every run must either write exactly the rows of a clean run (compared table by table, volatile columns
left out) or fail the connection with an error naming the connection, the endpoint and the cause, with
nothing written to the lake for it — never duplicated or silently missing rows.

One small sandbox (1 workspace, 2 repositories) serves the whole module; its manual clock and the
client's injected sleep keep retries out of real time (only the `slow` fault waits, on purpose: the
client's read timeout must fire).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from dagster import DagsterInstance

from ox_bb_pipeline import lake
from ox_bb_pipeline.app.runner import run_stages
from ox_bb_pipeline.bitbucket import tables
from ox_bb_pipeline.bitbucket.client import BitbucketClient, RequestBudget
from ox_bb_pipeline.bitbucket.errors import BitbucketError
from ox_bb_pipeline.bitbucket.extract import ExtractOptions, Extractor, StateStore
from ox_bb_pipeline.bitbucket.git import GitAccess
from ox_bb_pipeline.clock import ManualClock
from ox_bb_pipeline.config import load_connections
from ox_bb_pipeline.scanners.secrets import redact_text
from ox_bb_pipeline_tests.conftest import ANCHOR, TINY
from ox_bb_sandbox.generator import SandboxSpec
from ox_bb_sandbox.server import SandboxServer

WS = "acme-payments"
VOLATILE = ("extracted_at", "checked_at")
READ_TIMEOUT, SLOW_DELAY = 0.5, 1.0  # a `slow` answer outlasts the client's read timeout
MAX_RETRIES = 2  # fewer than the default: persistent faults fail sooner, transient ones still recover

# The route families the extract reads over REST, as sandbox path globs (fnmatch: `*` crosses `/`).
ROUTES = {
    "listing": f"/2.0/repositories/{WS}",
    "pull_requests": f"/2.0/repositories/{WS}/*/pullrequests",
    "settings": f"/2.0/repositories/{WS}/*/branch-restrictions",
    "pipelines": "/2.0/*pipelines*",
}
# The endpoint each family's failure must name (as the client reports it, without the API prefix).
ENDPOINTS = {
    "listing": f"/repositories/{WS}",
    "pull_requests": "/pullrequests",
    "settings": "/branch-restrictions",
    "pipelines": "pipelines",
}
TRANSIENT = ("500", "502", "503", "slow", "drop", "truncate")


@pytest.fixture(scope="module")
def server():
    with SandboxServer(TINY, clock=ManualClock(ANCHOR)) as running:
        yield running


@pytest.fixture(scope="module")
def connections_file(server, tmp_path_factory) -> Path:
    settings = {"max_retries": MAX_RETRIES, "timeouts": {"connect": 5.0, "read": READ_TIMEOUT}}
    return server.write_connections(tmp_path_factory.mktemp("faults") / "connections.yaml", settings)


@pytest.fixture(autouse=True)
def quiet_sandbox(server, reference):
    """Each cell starts with no faults, an empty rate-limit window and the normal limit."""
    admin(server, "DELETE", "faults")
    admin(server, "POST", "rate-limit", {"limit": 1000, "reset": True})
    yield
    admin(server, "DELETE", "faults")
    admin(server, "POST", "rate-limit", {"limit": 1000, "reset": True})


def admin(server, method: str, route: str, body=None) -> dict:
    response = requests.request(method, f"{server.base_url}/_sandbox/{route}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


class HookedBudget(RequestBudget):
    """The client's request budget, calling `hook(n)` before the n-th request (to act mid-run)."""

    def __init__(self, *args, hook, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.hook, self.count = hook, 0

    def acquire(self) -> None:
        self.count += 1
        self.hook(self.count)
        super().acquire()


def extract(path: Path, home: Path, name: str, server, hook=None) -> None:
    """One pass for one connection as the asset runs it: previous partition and state in, every
    partition written only after the whole extraction succeeded. Sleeps advance the sandbox's clock."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OX_BB_HOME", str(home))  # scratch and cache directories too
        _extract(path, home, name, server, hook)


def _extract(path: Path, home: Path, name: str, server, hook) -> None:
    connection = load_connections(path).get(name)
    sleep = lambda seconds: server.clock.advance(seconds)  # noqa: E731 - retries wait in sandbox time only
    budget = HookedBudget(connection.requests_per_hour, sleep=sleep, hook=hook) if hook else None
    client = BitbucketClient(connection, sleep=sleep, budget=budget)
    git = GitAccess(name, connection.git_url, client.auth.git_credentials)
    previous = {t: lake.read_partition("raw", t, name, home) for t in tables.TABLES}
    store = StateStore(name, home)
    state = store.load()
    report = Extractor(
        client, git, redact_yml=redact_text, previous=previous, state=state, options=ExtractOptions(), home=home
    ).run()
    for table in tables.TABLES:
        lake.write_partition("raw", table, name, report.rows[table], tables.schema(table), home)
    store.save(state)


def snapshot(home: Path, name: str) -> dict[str, list[str]]:
    """Every raw table of the connection, rows as canonical JSON, sorted (duplicates kept)."""
    return {
        t: sorted(
            json.dumps({k: v for k, v in r.items() if k not in VOLATILE}, sort_keys=True, default=str)
            for r in lake.read_partition("raw", t, name, home)
        )
        for t in tables.TABLES
    }


def lake_files(home: Path) -> list[Path]:
    root = lake.lake_root(home)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture(scope="module")
def reference(server, connections_file, tmp_path_factory) -> dict[str, dict[str, list[str]]]:
    """The clean run's rows per connection, computed once, before any cell installs a fault."""
    admin(server, "DELETE", "faults")
    admin(server, "POST", "rate-limit", {"limit": 1000, "reset": True})
    clean = {}
    for name in ("sandbox-token", "sandbox-app"):
        home = tmp_path_factory.mktemp("clean")
        extract(connections_file, home, name, server)
        clean[name] = snapshot(home, name)
        assert clean[name]["repositories"] and clean[name]["pull_requests"], "the clean run read nothing"
    return clean


def outcome(server, connections_file, reference, tmp_path, name="sandbox-token", hook=None):
    """Run the extract on a fresh home: ("clean", None) when its rows are the clean run's,
    ("failed", message) when it failed with nothing written; anything else fails the test."""
    home = tmp_path / "home"
    home.mkdir()
    expected = reference[name]
    try:
        extract(connections_file, home, name, server, hook)
    except BitbucketError as exc:
        assert lake_files(home) == [], "a failed extraction left lake files behind"
        return "failed", str(exc)
    got = snapshot(home, name)
    for table in tables.TABLES:
        assert got[table] == expected[table], f"{table}: rows differ from the clean run"
    return "clean", None


def fired(server) -> int:
    return sum(rule["fired"] for rule in admin(server, "GET", "faults")["faults"])


# -- the matrix -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", [*TRANSIENT, "next_on_last"])
@pytest.mark.parametrize("family", list(ROUTES))
def test_a_fault_once_is_retried_and_the_rows_are_the_clean_runs(
    server, connections_file, reference, tmp_path, family, kind
):
    admin(server, "POST", "faults", {"route": ROUTES[family], "kind": kind, "times": 1, "delay": SLOW_DELAY})

    result, message = outcome(server, connections_file, reference, tmp_path)

    assert fired(server) == 1, "the fault never reached the extract"
    assert (result, message) == ("clean", None)


@pytest.mark.parametrize("kind", TRANSIENT)
@pytest.mark.parametrize("family", list(ROUTES))
def test_a_persistent_fault_fails_the_connection_naming_the_endpoint_and_writes_nothing(
    server, connections_file, reference, tmp_path, family, kind
):
    admin(server, "POST", "faults", {"route": ROUTES[family], "kind": kind, "times": 0, "delay": SLOW_DELAY})

    result, message = outcome(server, connections_file, reference, tmp_path)

    assert result == "failed"
    assert "connection 'sandbox-token'" in message and ENDPOINTS[family] in message, message
    cause = {
        "500": "HTTP 500",
        "502": "HTTP 502",
        "503": "HTTP 503",
        "truncate": "truncated or invalid JSON",
        "slow": "ReadTimeout",
        "drop": "ConnectionError",
    }[kind]
    assert cause in message, message


@pytest.mark.parametrize("family", list(ROUTES))
def test_a_next_link_on_every_last_page_is_not_followed_twice(server, connections_file, reference, tmp_path, family):
    admin(server, "POST", "faults", {"route": ROUTES[family], "kind": "next_on_last", "times": 0})

    assert outcome(server, connections_file, reference, tmp_path) == ("clean", None)
    assert fired(server) >= 1


def test_a_low_rate_limit_fails_the_connection_saying_the_hourly_limit_is_reached(
    server, connections_file, reference, tmp_path
):
    admin(server, "POST", "rate-limit", {"limit": 5, "reset": True})

    result, message = outcome(server, connections_file, reference, tmp_path)

    assert result == "failed"
    assert "connection 'sandbox-token'" in message and "429" in message and "hourly request limit" in message


def test_an_oauth_token_expiring_mid_run_is_refreshed_and_the_rows_are_the_clean_runs(
    server, connections_file, reference, tmp_path
):
    before = admin(server, "GET", "stats")["oauth_total"]
    expire = lambda n: server.clock.advance(3 * 3600) if n == 6 else None  # noqa: E731 - 2 h lifetime

    assert outcome(server, connections_file, reference, tmp_path, name="sandbox-app", hook=expire) == ("clean", None)
    assert admin(server, "GET", "stats")["oauth_total"] - before >= 2, "the expired token was never refreshed"


def test_the_extract_stage_run_as_dagster_runs_it_retries_a_fault_and_writes_the_clean_rows(
    server, connections_file, reference, tmp_path, monkeypatch
):
    """The same cell through `run_stages` (the asset, its resource and its retry handling), not the
    helper above: a 503 on the pull-request route once."""
    expected = reference["sandbox-token"]
    home = tmp_path / "home"
    monkeypatch.setenv("OX_BB_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    admin(server, "POST", "faults", {"route": ROUTES["pull_requests"], "kind": "503", "times": 1})

    [result] = run_stages(
        "extract",
        connections_file,
        "sandbox-token",
        progress=lambda line: None,
        dagster_instance=DagsterInstance.ephemeral(),
    )

    assert result.success, result.error
    assert fired(server) == 1
    assert snapshot(home, "sandbox-token") == expected


# -- faults that need a second page: one repository with more pull requests than the client's pagelen --
PAGED = SandboxSpec(seed=11, workspaces=1, projects=1, repos=1, branches=1, pull_requests=55, commits=2, anchor=ANCHOR)


@pytest.fixture(scope="module")
def paged(tmp_path_factory):
    """A second small sandbox whose pull-request list spans two pages, with its clean rows."""
    with SandboxServer(PAGED, clock=ManualClock(ANCHOR)) as running:
        path = running.write_connections(tmp_path_factory.mktemp("paged") / "connections.yaml")
        home = tmp_path_factory.mktemp("paged-clean")
        extract(path, home, "sandbox-token", running)
        clean = snapshot(home, "sandbox-token")
        assert len(clean["pull_requests"]) > 50 and len(set(clean["pull_requests"])) == len(clean["pull_requests"])
        yield running, path, {"sandbox-token": clean}


@pytest.mark.parametrize("kind, times", [("repeat", 1), ("repeat", 0), ("next_on_last", 0)])
def test_a_page_that_repeats_an_item_or_links_past_the_end_neither_duplicates_nor_loses_rows(
    paged, tmp_path, kind, times
):
    server, path, clean = paged
    admin(server, "DELETE", "faults")
    admin(server, "POST", "faults", {"route": f"/2.0/repositories/{WS}/*/pullrequests", "kind": kind, "times": times})

    assert outcome(server, path, clean, tmp_path) == ("clean", None)
    assert fired(server) >= 1, "the fault never reached the extract"
