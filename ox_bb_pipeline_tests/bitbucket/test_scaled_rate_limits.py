"""The client learns Bitbucket's scaled rate limit from X-RateLimit-Limit and paces to it: never above
the announced limit, never above the configured budget, and a lower limit announced mid-run is followed
from the next request on. Time is the sandbox's manual clock; `sleep` moves it instead of waiting.
"""

from __future__ import annotations

import json
import random

import pytest
import requests

from ox_bb_pipeline.bitbucket.client import BitbucketClient
from ox_bb_pipeline.config import load_connections

WS = "acme-payments"
BUCKET = "access_token:workspace-token:api"  # the sandbox's bucket for the token's /2.0/repositories* calls


class Sleeps(list):
    def __init__(self, clock) -> None:
        super().__init__()
        self.clock = clock

    def __call__(self, seconds: float) -> None:
        self.append(round(seconds))
        self.clock.advance(seconds)


def admin(server, path: str, body: dict) -> dict:
    response = requests.post(f"{server.base_url}/_sandbox/{path}", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def config(fresh_sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("OX_BB_HOME", str(tmp_path / "home"))
    return load_connections(fresh_sandbox.write_connections(tmp_path / "connections.yaml"))


def token_client(server, config, ceiling: int) -> tuple[BitbucketClient, Sleeps]:
    sleeps = Sleeps(server.clock)
    connection = config.get("sandbox-access-token").model_copy(update={"requests_per_hour": ceiling})
    return BitbucketClient(connection, clock=server.clock, sleep=sleeps, rng=random.Random(1)), sleeps


def rate_limited(server) -> int:
    return requests.get(f"{server.base_url}/_sandbox/stats", timeout=10).json()["rate_limited"]


@pytest.mark.parametrize(
    ("seats", "ceiling", "effective"),
    [
        (250, 10_000, 2500),  # the announced limit, below the budget
        (2000, 10_000, 10_000),
        (2000, 900, 900),  # the configured budget stays the ceiling
    ],
)
def test_the_client_paces_to_the_announced_limit_within_its_budget(fresh_sandbox, config, seats, ceiling, effective):
    admin(fresh_sandbox, "plan", {"workspace": WS, "plan": "premium", "seats": seats})
    client, _ = token_client(fresh_sandbox, config, ceiling)

    client.get_json(f"/repositories/{WS}", {"pagelen": 1})

    assert (client.effective_limit, client.budget.announced, client.rate_limit_resource) == (
        effective,
        min(1000 + 10 * (seats - 100), 10_000),
        "api",
    )


def test_an_announced_limit_is_never_exceeded(fresh_sandbox, config):
    admin(fresh_sandbox, "rate-limit", {"overrides": {BUCKET: 5}})
    client, sleeps = token_client(fresh_sandbox, config, 10_000)

    for _ in range(12):
        client.get_json(f"/repositories/{WS}", {"pagelen": 1})

    assert rate_limited(fresh_sandbox) == 0
    assert sleeps == [3600, 3600]  # 5 per rolling hour: two waits for the oldest request to age out
    assert client.near_limit_seen > 0


def test_a_lower_limit_announced_mid_run_is_followed_from_the_next_request(fresh_sandbox, config):
    admin(fresh_sandbox, "rate-limit", {"overrides": {BUCKET: 50}})
    client, sleeps = token_client(fresh_sandbox, config, 10_000)
    for _ in range(4):
        client.get_json(f"/repositories/{WS}", {"pagelen": 1})
    assert (client.effective_limit, sleeps) == (50, [])

    admin(fresh_sandbox, "rate-limit", {"overrides": {BUCKET: 6}})  # Bitbucket lowers the limit
    for _ in range(3):
        client.get_json(f"/repositories/{WS}", {"pagelen": 1})

    assert client.effective_limit == 6
    assert rate_limited(fresh_sandbox) == 0
    assert sleeps == [3600]  # the 7th request waited for the first to leave the rolling hour


def test_a_credential_without_headers_keeps_the_configured_budget(fresh_sandbox, config):
    connection = config.get("sandbox-token").model_copy(update={"requests_per_hour": 900})
    client = BitbucketClient(connection, clock=fresh_sandbox.clock, sleep=Sleeps(fresh_sandbox.clock))

    client.get_json(f"/repositories/{WS}", {"pagelen": 1})

    assert (client.effective_limit, client.budget.announced) == (900, None)


def test_verify_reports_each_connections_effective_limit(fresh_sandbox, tmp_path):
    import yaml

    from ox_bb_pipeline_tests.test_cli import ox_bb

    admin(fresh_sandbox, "plan", {"workspace": WS, "plan": "premium", "seats": 250})
    path = fresh_sandbox.write_connections(tmp_path / "connections.yaml")
    document = yaml.safe_load(path.read_text())
    for connection in document["connections"]:
        if connection["name"] == "sandbox-access-token":
            connection["requests_per_hour"] = 10_000
    path.write_text(yaml.safe_dump(document, sort_keys=False))

    result = ox_bb("verify", "--connections", str(path), "--format", "json", home=tmp_path / "home")

    limits = {
        c["connection"]: (c["requests_per_hour"], c["announced_limit"])
        for c in json.loads(result.stdout)["connections"]
    }
    assert limits["sandbox-access-token"] == (2500, 2500)
    assert limits["sandbox-token"] == (900, None)  # API tokens get no scaled limit: the configured budget
    text = ox_bb(
        "verify", "--connections", str(path), "--connection", "sandbox-access-token", home=tmp_path / "home"
    ).stdout
    assert "rate limit: 2500 requests/hour; Bitbucket announces 2500" in text
