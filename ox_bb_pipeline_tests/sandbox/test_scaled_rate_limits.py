"""Bitbucket's scaled rate limits as the sandbox serves them, checked against what Bitbucket documents
(support.atlassian.com/bitbucket-cloud/docs/api-request-limits, "Introducing scaled rate limits for
Bitbucket Cloud API"): access tokens on /2.0/repositories* get 1,000 requests per hour plus 10 per paid
seat above 100 on Standard and Premium workspaces, at most 10,000, and three headers —
X-RateLimit-Limit (the hourly limit, not what remains), X-RateLimit-Resource (the resource group, `api`)
and X-RateLimit-NearLimit (true once less than 20% of the limit remains). Other credentials and other
endpoints get neither the scaling nor the headers.
"""

from __future__ import annotations

import pytest
import requests

from ox_bb_pipeline_tests.conftest import Credentials, bearer

WS = "acme-payments"
DOCUMENTED = ("X-RateLimit-Limit", "X-RateLimit-Resource", "X-RateLimit-NearLimit")


def admin(server, path: str, body: dict) -> dict:
    response = requests.post(f"{server.base_url}/_sandbox/{path}", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def get(server, path: str, **kwargs) -> requests.Response:
    return requests.get(f"{server.api_url}{path}", timeout=10, **kwargs)


@pytest.fixture
def token(fresh_sandbox) -> dict:
    return bearer(Credentials(fresh_sandbox).access_token())


@pytest.mark.parametrize(
    ("plan", "seats", "limit"),
    [
        ("free", 5, 1000),
        ("free", 500, 1000),  # scaling is for paid plans only
        ("standard", 100, 1000),  # up to 100 seats: the base
        ("standard", 250, 2500),  # the documented example: 1,000 + 150 × 10
        ("premium", 1000, 10_000),
        ("premium", 5000, 10_000),  # capped
    ],
)
def test_an_access_token_gets_the_documented_scaled_limit_and_headers(fresh_sandbox, token, plan, seats, limit):
    admin(fresh_sandbox, "plan", {"workspace": WS, "plan": plan, "seats": seats})

    response = get(fresh_sandbox, f"/repositories/{WS}", headers=token)

    assert response.status_code == 200
    assert {h: response.headers.get(h) for h in DOCUMENTED} == {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Resource": "api",
        "X-RateLimit-NearLimit": "false",
    }


def test_the_headers_come_only_with_access_tokens_on_repositories_endpoints(fresh_sandbox, token):
    creds = Credentials(fresh_sandbox)
    answers = {
        "access token, /2.0/repositories/{ws}/{slug}/commits": get(
            fresh_sandbox, f"/repositories/{WS}/python-service/commits", headers=token
        ),
        "access token, /2.0/workspaces/{ws}": get(fresh_sandbox, f"/workspaces/{WS}", headers=token),
        "API token, /2.0/repositories/{ws}": get(fresh_sandbox, f"/repositories/{WS}", auth=creds.token()),
        "OAuth consumer, /2.0/repositories/{ws}": get(
            fresh_sandbox, f"/repositories/{WS}", headers=bearer(creds.oauth("app"))
        ),
    }

    assert {what: [h for h in DOCUMENTED if h in r.headers] for what, r in answers.items()} == {
        "access token, /2.0/repositories/{ws}/{slug}/commits": list(DOCUMENTED),
        "access token, /2.0/workspaces/{ws}": [],
        "API token, /2.0/repositories/{ws}": [],
        "OAuth consumer, /2.0/repositories/{ws}": [],
    }


def test_near_limit_turns_true_once_less_than_a_fifth_remains_and_a_429_still_names_the_limit(fresh_sandbox, token):
    admin(fresh_sandbox, "rate-limit", {"overrides": {"access_token:workspace-token:api": 10}})

    answers = [get(fresh_sandbox, f"/repositories/{WS}", headers=token) for _ in range(11)]

    assert [r.headers["X-RateLimit-NearLimit"] for r in answers[:10]] == ["false"] * 8 + ["true"] * 2
    assert [r.status_code for r in answers] == [200] * 10 + [429]
    assert answers[10].headers["X-RateLimit-Limit"] == "10"


def test_the_scaled_group_is_counted_apart_from_the_tokens_other_requests(fresh_sandbox, token):
    admin(fresh_sandbox, "rate-limit", {"limit": 2})  # the base limit; the scaled group starts from it too

    workspace = [get(fresh_sandbox, f"/workspaces/{WS}", headers=token).status_code for _ in range(3)]
    repositories = get(fresh_sandbox, f"/repositories/{WS}", headers=token).status_code

    assert (workspace, repositories) == ([200, 200, 429], 200)


def test_a_plan_change_names_the_workspace_and_values_it_accepts(fresh_sandbox):
    response = requests.post(f"{fresh_sandbox.base_url}/_sandbox/plan", json={"workspace": "nope"}, timeout=10)
    bad_plan = requests.post(
        f"{fresh_sandbox.base_url}/_sandbox/plan", json={"workspace": WS, "plan": "enterprise"}, timeout=10
    )

    assert response.status_code == 400 and "workspace" in response.json()["error"]["message"]
    assert bad_plan.status_code == 400 and "free, standard or premium" in bad_plan.json()["error"]["message"]
