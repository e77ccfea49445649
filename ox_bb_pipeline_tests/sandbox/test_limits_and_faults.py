"""Rate limits, injected faults and request counters: the sandbox's operating knobs, over HTTP.

Bitbucket limits each credential to a rolling hour of requests (reference §3) and, like any
service, fails now and then. The sandbox reproduces both on demand through its admin routes
(`/_sandbox/rate-limit`, `/_sandbox/faults`) so a client's retry and paging logic can be tested,
and counts what it served at `/_sandbox/stats`.
"""

from __future__ import annotations

import json

import pytest
import requests

from ox_bb_pipeline_tests.conftest import Credentials, bearer
from ox_bb_sandbox.control import FAULT_KINDS, FaultRule

TIMEOUT = 10
WS = "acme-payments"
REPO_PATH = f"/repositories/{WS}/python-service"
ALL_REPOS = "/2.0/repositories/*"
ALICE = object()  # Api.get's default: alice's API token


@pytest.fixture
def api(fresh_sandbox):
    return Api(fresh_sandbox)


class Api:
    """A fresh sandbox with alice's credentials and its admin routes."""

    def __init__(self, server) -> None:
        self.server = server
        self.creds = Credentials(server)
        self.alice = self.creds.token("alice-admin")

    def get(self, path: str, auth=ALICE, **kwargs) -> requests.Response:
        """GET as alice unless told otherwise (`auth=None` sends no Basic credentials)."""
        url = path if path.startswith("http") else f"{self.server.api_url}{path}"
        kwargs.setdefault("timeout", TIMEOUT)
        return requests.get(url, auth=self.alice if auth is ALICE else auth, **kwargs)

    def admin(self, method: str, path: str, body=None) -> requests.Response:
        return requests.request(method, f"{self.server.base_url}/_sandbox/{path}", json=body, timeout=TIMEOUT)

    def fault(self, kind: str, route: str = ALL_REPOS, **options) -> dict:
        response = self.admin("POST", "faults", {"route": route, "kind": kind, **options})
        assert response.status_code == 200, response.text
        return response.json()

    def stats(self) -> dict:
        return self.admin("GET", "stats").json()

    def pages(self, path: str) -> list[dict]:
        """Follow `next` verbatim (at most 20 pages, so a looping `next` cannot hang the test)."""
        pages, url = [], f"{self.server.api_url}{path}"
        while url and len(pages) < 20:
            response = self.get(url)
            assert response.status_code == 200
            pages.append(response.json())
            url = pages[-1].get("next")
        return pages


# -- rate limit -----------------------------------------------------------------------------------
def test_429_after_the_hourly_limit_with_bitbuckets_plain_text_body(api):
    configured = api.admin("POST", "rate-limit", {"limit": 5})
    assert configured.json()["limit"] == 5

    assert [api.get(REPO_PATH).status_code for _ in range(5)] == [200] * 5
    limited = api.get(REPO_PATH)
    assert limited.status_code == 429
    assert limited.headers["Content-Type"].startswith("text/plain")
    assert limited.text == "Rate limit for this resource has been exceeded"
    assert "Retry-After" not in limited.headers
    assert api.stats()["rate_limited"] == 1


def test_rate_limit_buckets_are_per_credential(api):
    api.admin("POST", "rate-limit", {"limit": 2})
    for _ in range(2):
        api.get(REPO_PATH)
    assert api.get(REPO_PATH).status_code == 429
    # Another user, an OAuth consumer and an access token each have their own bucket.
    assert api.get(REPO_PATH, auth=api.creds.token("bob-member")).status_code == 200
    assert api.get(REPO_PATH, auth=None, headers=bearer(api.creds.oauth("app"))).status_code == 200
    assert api.get(REPO_PATH, auth=None, headers=bearer(api.creds.access_token())).status_code == 200


def test_rate_limit_window_rolls_with_the_clock(api):
    api.admin("POST", "rate-limit", {"limit": 1})
    assert api.get(REPO_PATH).status_code == 200
    api.server.clock.advance(3599)
    assert api.get(REPO_PATH).status_code == 429
    api.server.clock.advance(1)  # an hour after the first request, it leaves the window
    assert api.get(REPO_PATH).status_code == 200
    assert api.get(REPO_PATH).status_code == 429


def test_rate_limit_overrides_and_reset(api):
    api.admin("POST", "rate-limit", {"limit": 1, "overrides": {"user:alice": 3}})
    assert [api.get(REPO_PATH).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert api.get(REPO_PATH, auth=api.creds.token("bob-member")).status_code == 200
    assert api.get(REPO_PATH, auth=api.creds.token("bob-member")).status_code == 429
    api.admin("POST", "rate-limit", {"reset": True})
    assert api.get(REPO_PATH).status_code == 200
    described = api.admin("GET", "rate-limit").json()
    assert described["limit"] == 1 and described["overrides"] == {"user:alice": 3}


# -- faults ---------------------------------------------------------------------------------------
def test_server_error_faults_answer_once_then_recover(api):
    for kind in ("500", "502", "503"):
        api.fault(kind, times=1)
        failed = api.get(REPO_PATH)
        assert failed.status_code == int(kind)
        if kind == "500":
            error = failed.json()["error"]  # Bitbucket's 500 carries an id to quote to support
            assert error["message"] == "Something went wrong"
            assert error["id"]
        assert api.get(REPO_PATH).status_code == 200
    assert api.stats()["faults_injected"] == {"500": 1, "502": 1, "503": 1}


def test_slow_fault_trips_the_client_read_timeout_once(api):
    api.fault("slow", times=1, delay=1.5)
    with pytest.raises(requests.ReadTimeout):
        api.get(REPO_PATH, timeout=(5, 0.5))
    assert api.get(REPO_PATH, timeout=(5, 0.5)).status_code == 200


def test_drop_fault_closes_the_connection_without_an_answer(api):
    api.fault("drop", times=1)
    with pytest.raises(requests.ConnectionError):
        api.get(REPO_PATH)
    assert api.get(REPO_PATH).status_code == 200


def test_truncate_fault_cuts_the_json_body(api):
    api.fault("truncate", times=1)
    cut = api.get(REPO_PATH)
    assert cut.status_code == 200
    with pytest.raises(ValueError):
        json.loads(cut.text)
    whole = api.get(REPO_PATH)
    assert whole.json()["full_name"] == f"{WS}/python-service"
    assert whole.text.startswith(cut.text)


def test_repeat_fault_repeats_an_item_across_pages_but_loses_none(api):
    commits = f"{REPO_PATH}/commits?pagelen=2"
    expected = [c["hash"] for page in api.pages(commits) for c in page["values"]]
    assert len(expected) > 2  # several pages

    api.fault("repeat", times=1)
    seen = [c["hash"] for page in api.pages(commits) for c in page["values"]]
    assert len(seen) == len(expected) + 1
    assert [h for h in set(seen) if seen.count(h) > 1] == [expected[1]]  # the first page's last item
    assert list(dict.fromkeys(seen)) == expected  # deduped: every item once, in order


def test_next_on_last_fault_links_the_last_page_to_itself(api):
    first = api.get(f"/repositories/{WS}?pagelen=1").json()
    last_url = first["next"]
    api.fault("next_on_last", times=1)
    last = api.get(last_url).json()
    assert last["next"] == last_url  # BCLOUD-22441: a client must stop on a repeated URL
    assert api.get(last_url).json().get("next") is None  # once only


def test_fault_times_and_after(api):
    api.fault("503", times=2, after=1)
    statuses = [api.get(REPO_PATH).status_code for _ in range(5)]
    assert statuses == [200, 503, 503, 200, 200]
    rule = api.admin("GET", "faults").json()["faults"][0]
    assert (rule["seen"], rule["fired"]) == (5, 2)


def test_fault_with_times_zero_fires_until_deleted(api):
    api.fault("503", times=0)
    assert [api.get(REPO_PATH).status_code for _ in range(3)] == [503, 503, 503]
    cleared = api.admin("DELETE", "faults")
    assert cleared.json() == {"faults": []}
    assert api.get(REPO_PATH).status_code == 200


def test_fault_route_is_a_glob_on_the_path(api):
    api.fault("503", route="/2.0/repositories/*/*/pullrequests", times=0)
    assert api.get(REPO_PATH).status_code == 200
    assert api.get(f"{REPO_PATH}/pullrequests").status_code == 503


def test_cli_style_fault_spec():
    rule = FaultRule.parse("/2.0/repositories/*=503:2")
    assert (rule.route, rule.kind, rule.times, rule.after) == ("/2.0/repositories/*", "503", 2, 0)
    assert FaultRule.parse("/2.0/*=drop").times == 1
    for bad in ("503", "/2.0/*=teapot", "=503", "/2.0/*=503:twice"):
        with pytest.raises(ValueError):
            FaultRule.parse(bad)


def test_a_parsed_rule_fires_as_specified(api):
    api.server.app.faults.set([FaultRule.parse("/2.0/repositories/*=503:2")])
    assert [api.get(REPO_PATH).status_code for _ in range(3)] == [503, 503, 200]


def test_unknown_fault_kind_is_refused_by_the_admin_route(api):
    response = api.admin("POST", "faults", {"route": ALL_REPOS, "kind": "teapot"})
    assert response.status_code == 400
    assert "teapot" in response.json()["error"]["message"]
    assert api.admin("GET", "faults").json() == {"faults": []}


def test_malformed_fault_rules_are_refused_up_front(api):
    for bad in ({"times": "2"}, {"after": -1}, {"delay": "slow"}, {"route": ""}):
        response = api.admin("POST", "faults", {"route": ALL_REPOS, "kind": "503", **bad})
        assert response.status_code == 400, bad
    assert api.admin("GET", "faults").json() == {"faults": []}
    assert api.get(REPO_PATH).status_code == 200


def test_malformed_rate_limits_are_refused_up_front(api):
    for bad in ({"limit": "5"}, {"limit": -1}, {"overrides": {"user:alice": "x"}}, [5]):
        response = api.admin("POST", "rate-limit", bad)
        assert response.status_code == 400, bad
    assert api.admin("GET", "rate-limit").json()["limit"] == 1000
    assert api.get(REPO_PATH).status_code == 200


def test_malformed_clock_move_is_refused(api):
    response = api.admin("POST", "clock", {"advance_seconds": "an hour"})
    assert response.status_code == 400
    assert api.admin("GET", "clock").json()["now"] == "2026-11-01T00:00:00.000000+00:00"


def test_admin_route_accepts_a_list_of_rules(api):
    response = api.admin("POST", "faults", [{"route": ALL_REPOS, "kind": k} for k in ("502", "503")])
    assert [r["kind"] for r in response.json()["faults"]] == ["502", "503"]
    # The first matching rule that still has shots left fires.
    assert [api.get(REPO_PATH).status_code for _ in range(3)] == [502, 503, 200]


def test_every_documented_fault_kind_is_known():
    assert set(FAULT_KINDS) == {"500", "502", "503", "slow", "drop", "truncate", "repeat", "next_on_last", "401"}


# -- stats ----------------------------------------------------------------------------------------
def test_stats_count_rest_and_git_requests_by_route_and_credential(api):
    api.admin("POST", "stats/reset")
    api.get(REPO_PATH)
    api.get(REPO_PATH, auth=api.creds.token("bob-member"))
    api.get(f"/repositories/{WS}")
    api.get(REPO_PATH, auth=None, headers=bearer(api.creds.access_token()))
    api.get(REPO_PATH, auth=None)  # anonymous: 401, no credential
    _, token = api.creds.token()
    git = requests.get(
        f"{api.server.base_url}/{WS}/python-service.git/info/refs",
        params={"service": "git-upload-pack"},
        auth=("x-bitbucket-api-token-auth", token),
        timeout=TIMEOUT,
    )
    assert git.status_code == 200

    stats = api.stats()
    assert stats["rest_total"] == 5
    assert stats["git_total"] == 1
    assert stats["per_route"]["/2.0/repositories/{workspace}/{repo_slug}"] == 4
    assert stats["per_route"]["/2.0/repositories/{workspace}"] == 1
    assert stats["per_credential"] == {
        "api_token:alice-admin": 3,  # two REST calls and the git request
        "api_token:bob-member": 1,
        "access_token:workspace-token": 1,
    }
    assert stats["per_status"]["401"] == 1


def test_stats_never_contain_a_secret(api):
    oauth_token = api.creds.oauth("app")
    api.get(REPO_PATH)
    api.get(REPO_PATH, auth=None, headers=bearer(oauth_token))
    api.get(REPO_PATH, auth=("alice@example.com", "ATATT3xwrong-secret"))
    stats = api.stats()
    assert stats["per_credential"]["oauth:ox-app"] == 1
    assert stats["oauth_total"] == 1
    text = json.dumps(stats)
    for name, value in [
        *api.server.secrets().items(),
        ("oauth access token", oauth_token),
        ("wrong secret", "ATATT3xwrong-secret"),
    ]:
        assert value not in text, name


def test_stats_reset(api):
    api.get(REPO_PATH)
    assert api.stats()["rest_total"] == 1
    assert api.admin("POST", "stats/reset").json() == {"reset": True}
    stats = api.stats()
    assert (stats["rest_total"], stats["git_total"], stats["rate_limited"]) == (0, 0, 0)
    assert stats["per_route"] == {} and stats["per_credential"] == {}


def test_unknown_admin_route_is_404(api):
    response = api.admin("GET", "nothing-here")
    assert response.status_code == 404
