"""The endpoint catalog against the sandbox (our stand-in for Bitbucket Cloud): every catalog endpoint,
called as the extractor calls it (path, `fields` selector, page size), answers with every field the
catalog declares, under the permission the catalog names; and an extraction calls exactly the catalog's
endpoints, no other REST path, so the catalog is the whole REST surface of the extractor."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
import requests

from ox_bb_pipeline.bitbucket import catalog
from ox_bb_pipeline.bitbucket.capabilities import CAPABILITIES
from ox_bb_pipeline_tests.conftest import SMALL
from ox_bb_sandbox.app import ROUTES
from ox_bb_sandbox.auth import SCOPES as SANDBOX_SCOPES
from ox_bb_sandbox.server import SandboxServer

from .test_extract import extract

# The sandbox names path parameters as Bitbucket's API reference does.
SANDBOX_NAMES = {"ws": "workspace", "repo": "repo_slug", "environment": "environment_uuid"}


def sandbox_template(path: str) -> str:
    return "/2.0" + re.sub(r"\{(\w+)\}", lambda m: "{" + SANDBOX_NAMES[m.group(1)] + "}", path)


@pytest.fixture(scope="module")
def small():
    """A sandbox of our own: the test reads and resets its request counters."""
    with SandboxServer(SMALL) as server:
        yield server


@pytest.fixture(scope="module")
def session(small):
    """The admin's API token (every scope the pipeline asks for)."""
    secrets = small.secrets()
    with requests.Session() as s:
        s.auth = ("alice@example.com", secrets["OX_BB_SANDBOX_TOKEN_ALICE_ADMIN"])
        yield s


def get(session, small, path: str, params: dict | None = None) -> dict:
    response = session.get(small.api_url + path, params=params, timeout=10)
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return response.json()


def places(session, small) -> list[dict]:
    """Every (ws, repo, environment) the admin sees, for filling the catalog's paths."""
    found = []
    for member in get(session, small, "/user/workspaces", {"pagelen": 100})["values"]:
        ws = member["workspace"]["slug"]
        found.append({"ws": ws})
        for repo in get(session, small, f"/repositories/{ws}", {"pagelen": 100})["values"]:
            found.append({"ws": ws, "repo": repo["slug"]})
            path = f"/repositories/{ws}/{repo['slug']}/environments"
            response = session.get(small.api_url + path, params={"pagelen": 100}, timeout=10)
            if response.status_code == 200:
                found += [
                    {"ws": ws, "repo": repo["slug"], "environment": quote(e["uuid"])}
                    for e in response.json().get("values", [])
                ]
    return found


def test_every_catalog_endpoint_answers_with_the_fields_it_declares(small, session):
    where = places(session, small)
    problems, empty = [], []
    for endpoint in catalog.ENDPOINTS.values():
        needed = set(re.findall(r"\{(\w+)\}", endpoint.path))
        answers = []
        for values in (v for v in where if set(v) == needed or (not needed and len(v) == 1)):
            params = dict(endpoint.params)
            if endpoint.paging != "single" and endpoint.pagelen:
                params["pagelen"] = endpoint.pagelen
            body = get(session, small, endpoint.url(**values), params)
            answers = [body] if endpoint.paging == "single" else body.get("values", [])
            if answers:
                break
        if not answers:
            empty.append(endpoint.name)
        for answer in answers:
            missing = catalog.missing_fields(answer, endpoint.answer)
            if missing:
                problems.append(f"{endpoint.name}: {', '.join(missing)}")
                break
    assert problems == []
    assert empty == []  # every endpoint was seen answering with at least one object


def test_every_catalog_endpoint_needs_the_permission_the_catalog_names():
    routes = {"/2.0" + r.template: r for r in ROUTES if "GET" in r.methods}
    for endpoint in catalog.ENDPOINTS.values():
        route = routes.get(sandbox_template(endpoint.path))
        assert route is not None, f"{endpoint.name}: the sandbox has no GET {sandbox_template(endpoint.path)}"
        assert (endpoint.name, endpoint.scope, endpoint.access) == (endpoint.name, route.scope, route.access)
        assert (endpoint.api_token_scope, endpoint.legacy_scope) == SANDBOX_SCOPES[route.scope]
        if endpoint.pagelen:
            assert endpoint.pagelen <= route.max_pagelen, endpoint.name
    # verify probes catalog endpoints, so it names the scopes the extractor needs
    assert {c.endpoint for c in CAPABILITIES} <= set(catalog.ENDPOINTS)


def test_an_extraction_calls_the_catalog_endpoints_and_nothing_else(small, tmp_path, monkeypatch):
    monkeypatch.setenv("OX_BB_HOME", str(tmp_path / "home"))
    connections = small.write_connections(tmp_path / "connections.yaml")
    requests.post(f"{small.base_url}/_sandbox/stats/reset", timeout=10).raise_for_status()
    report = extract(connections)
    assert report.rows["repositories"]
    called = set(requests.get(f"{small.base_url}/_sandbox/stats", timeout=10).json()["per_route"])
    rest = {c for c in called if c.startswith("/2.0")}
    extractor = {sandbox_template(e.path) for e in catalog.ENDPOINTS.values() if e.table}
    assert rest == extractor
    assert {e.name for e in catalog.ENDPOINTS.values() if not e.table} == {"user"}  # verify's own
