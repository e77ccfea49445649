"""Authentication and scopes in the sandbox, over real HTTP.

Bitbucket Cloud accepts four kinds of credential (reference §1): Atlassian API tokens (Basic
`email:token`), OAuth 2.0 consumers (client credentials, authorization code, refresh token; the
access token is sent as Bearer), and workspace/repository access tokens (Bearer). These tests show
what each one is allowed to do, how failures look (§5), and how scopes are reported and enforced.
"""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from ox_bb_pipeline_tests.conftest import Credentials, bearer
from ox_bb_sandbox.auth import WWW_AUTHENTICATE
from ox_bb_sandbox.generator import LIMITED_API_TOKEN_SCOPES
from ox_bb_sandbox.world import ApiToken, OAuthConsumer

TIMEOUT = 10
OWN_WS = "acme-payments"  # the workspace the seeded access token belongs to
OTHER_WS = "acme-platform"
REPO = f"{OWN_WS}/python-service"
LACKS_SCOPES = "Your credentials lack one or more required privilege scopes."
TOKEN_NOT_SUPPORTED = "Token is invalid, expired, or not supported for this endpoint."
TOKEN_EXPIRED = "Access token expired. Use your refresh token to obtain a new access token."
NOT_FOR_TOKENS = "This API is not accessible by this authentication mechanism"


def get(server, path: str, **kwargs) -> requests.Response:
    return requests.get(f"{server.api_url}{path}", timeout=TIMEOUT, **kwargs)


def token_endpoint(server, form: dict, client: tuple[str, str]) -> requests.Response:
    return requests.post(f"{server.base_url}/site/oauth2/access_token", data=form, auth=client, timeout=TIMEOUT)


def consumer(server, name: str) -> tuple[str, str]:
    secrets = server.secrets()
    return secrets[f"OX_BB_SANDBOX_{name}_KEY"], secrets[f"OX_BB_SANDBOX_{name}_SECRET"]


def error_message(response: requests.Response) -> str:
    body = response.json()
    assert body["type"] == "error"
    return body["error"]["message"]


# -- each method works ----------------------------------------------------------------------------
def test_api_token_authenticates_with_the_email_as_basic_user(sandbox, creds):
    email, token = creds.token("alice-admin")
    response = get(sandbox, "/user", auth=(email, token))
    assert response.status_code == 200
    assert response.json()["username"] == "alice"
    assert response.headers["x-credential-type"] == "apikey"


def test_api_token_is_refused_with_the_username_as_basic_user(sandbox, creds):
    _, token = creds.token("alice-admin")
    response = get(sandbox, "/user", auth=("alice", token))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == WWW_AUTHENTICATE


def test_client_credentials_token_acts_as_the_consumer_owner(sandbox):
    response = token_endpoint(sandbox, {"grant_type": "client_credentials"}, consumer(sandbox, "APP"))
    assert response.status_code == 200
    grant = response.json()
    assert grant["token_type"] == "bearer"
    assert grant["expires_in"] == 7200
    assert grant["state"] == "client_credentials"
    assert "repository" in grant["scopes"].split()

    me = get(sandbox, "/user", headers=bearer(grant["access_token"]))
    assert me.status_code == 200
    assert me.json()["username"] == "alice"
    assert me.headers["x-credential-type"] == "oauth2"


def test_client_credentials_grant_needs_a_private_consumer(fresh_sandbox):
    response = token_endpoint(fresh_sandbox, {"grant_type": "client_credentials"}, consumer(fresh_sandbox, "IDP"))
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


def test_authorization_code_flow_redirects_with_code_and_state_and_the_code_works_once(fresh_sandbox):
    key, secret = consumer(fresh_sandbox, "IDP")
    authorize = requests.get(
        f"{fresh_sandbox.base_url}/site/oauth2/authorize",
        params={"client_id": key, "response_type": "code", "state": "s"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert authorize.status_code == 302
    location = urlsplit(authorize.headers["Location"])
    callback = next(c for c in fresh_sandbox.world.consumers if c.key == key).callback_url
    assert f"{location.scheme}://{location.netloc}{location.path}" == callback
    query = parse_qs(location.query)
    assert query["state"] == ["s"]
    code = query["code"][0]

    exchanged = token_endpoint(fresh_sandbox, {"grant_type": "authorization_code", "code": code}, (key, secret))
    assert exchanged.status_code == 200
    grant = exchanged.json()
    assert grant["state"] == "authorization_code" and grant["refresh_token"]
    me = get(fresh_sandbox, "/user", headers=bearer(grant["access_token"]))
    assert me.status_code == 200 and me.json()["username"] == "bob"  # the user who granted access

    again = token_endpoint(fresh_sandbox, {"grant_type": "authorization_code", "code": code}, (key, secret))
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_authorize_rejects_an_unknown_client_or_a_response_type_other_than_code(fresh_sandbox):
    key, _ = consumer(fresh_sandbox, "IDP")
    for params in ({"client_id": "nope", "response_type": "code"}, {"client_id": key, "response_type": "token"}):
        response = requests.get(
            f"{fresh_sandbox.base_url}/site/oauth2/authorize", params=params, allow_redirects=False, timeout=TIMEOUT
        )
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"


def test_refresh_token_grant_rotates_the_refresh_token(fresh_sandbox):
    client = consumer(fresh_sandbox, "IDP")
    seeded = fresh_sandbox.secrets()["OX_BB_SANDBOX_IDP_REFRESH_TOKEN"]

    first = token_endpoint(fresh_sandbox, {"grant_type": "refresh_token", "refresh_token": seeded}, client)
    assert first.status_code == 200
    grant = first.json()
    assert grant["state"] == "refresh_token"
    assert grant["refresh_token"] != seeded
    assert get(fresh_sandbox, "/user", headers=bearer(grant["access_token"])).json()["username"] == "bob"

    reused = token_endpoint(fresh_sandbox, {"grant_type": "refresh_token", "refresh_token": seeded}, client)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"

    rotated = token_endpoint(
        fresh_sandbox, {"grant_type": "refresh_token", "refresh_token": grant["refresh_token"]}, client
    )
    assert rotated.status_code == 200
    # The sandbox's secrets always name the live refresh token (what the connections file needs).
    assert fresh_sandbox.secrets()["OX_BB_SANDBOX_IDP_REFRESH_TOKEN"] == rotated.json()["refresh_token"]


def test_refresh_token_of_another_consumer_is_an_invalid_grant(fresh_sandbox):
    seeded = fresh_sandbox.secrets()["OX_BB_SANDBOX_IDP_REFRESH_TOKEN"]
    response = token_endpoint(
        fresh_sandbox, {"grant_type": "refresh_token", "refresh_token": seeded}, consumer(fresh_sandbox, "APP")
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_unsupported_grant_type(fresh_sandbox):
    response = token_endpoint(fresh_sandbox, {"grant_type": "password"}, consumer(fresh_sandbox, "APP"))
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_access_token_reads_its_own_workspace_only(sandbox, creds):
    headers = bearer(creds.access_token())
    listing = get(sandbox, f"/repositories/{OWN_WS}", headers=headers)
    assert listing.status_code == 200
    assert listing.headers["x-credential-type"] == "workspace_access_token"
    slugs = {r["slug"] for r in listing.json()["values"]}
    assert "python-service" in slugs
    assert get(sandbox, f"/repositories/{REPO}", headers=headers).status_code == 200

    other = get(sandbox, f"/repositories/{OTHER_WS}", headers=headers)
    assert other.status_code == 404
    other_repo = get(sandbox, f"/repositories/{OTHER_WS}/go-worker", headers=headers)
    assert other_repo.status_code == 404
    # alice, who can see both workspaces, proves the repository exists.
    assert get(sandbox, f"/repositories/{OTHER_WS}/go-worker", auth=creds.token()).status_code == 200


@pytest.mark.parametrize("path", ["/user", "/user/workspaces"])
def test_access_token_has_no_user_endpoints(sandbox, creds, path):
    response = get(sandbox, path, headers=bearer(creds.access_token()))
    assert response.status_code == 403
    assert error_message(response) == NOT_FOR_TOKENS


def test_access_token_is_also_accepted_as_access_token_query_parameter(sandbox, creds):
    response = get(sandbox, f"/repositories/{REPO}", params={"access_token": creds.access_token()})
    assert response.status_code == 200


# -- failures -------------------------------------------------------------------------------------
def test_no_credentials_is_401_with_a_basic_challenge(sandbox):
    response = get(sandbox, f"/repositories/{REPO}")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="Bitbucket.org HTTP"'
    assert "x-credential-type" not in response.headers


@pytest.mark.parametrize("auth", [("alice@example.com", "ATATT3xwrong"), ("nobody@example.com", "x")])
def test_wrong_secret_is_401(sandbox, auth):
    response = get(sandbox, "/user", auth=auth)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == WWW_AUTHENTICATE


def test_unknown_bearer_token_is_401(sandbox):
    response = get(sandbox, "/user", headers=bearer("not-a-token"))
    assert response.status_code == 401


def test_non_ascii_secrets_are_refused_not_a_server_error(sandbox, creds):
    utf8_basic = "Basic " + base64.b64encode("alice@example.com:pässwörd".encode()).decode()
    assert get(sandbox, "/user", headers={"Authorization": utf8_basic}).status_code == 401
    assert get(sandbox, "/user", headers={"Authorization": "Bearer tökén".encode("latin-1")}).status_code == 401
    key, _ = consumer(sandbox, "APP")
    response = token_endpoint(sandbox, {"grant_type": "client_credentials"}, (key.encode(), "sécret".encode()))
    assert response.status_code == 401


def test_api_token_sent_as_bearer_is_refused(sandbox, creds):
    _, token = creds.token("alice-admin")
    response = get(sandbox, "/user", headers=bearer(token))
    assert response.status_code == 401
    assert error_message(response) == TOKEN_NOT_SUPPORTED


def test_scopeless_api_token_is_refused(fresh_sandbox):
    fresh_sandbox.world.api_tokens.append(ApiToken("empty", "alice", "ATATT3xscopeless", frozenset()))
    response = get(fresh_sandbox, "/user", auth=("alice@example.com", "ATATT3xscopeless"))
    assert response.status_code == 401
    assert error_message(response) == TOKEN_NOT_SUPPORTED


def test_oauth_token_expires_after_two_hours(fresh_sandbox):
    token = Credentials(fresh_sandbox).oauth("app")
    fresh_sandbox.clock.advance(7199)
    assert get(fresh_sandbox, "/user", headers=bearer(token)).status_code == 200
    fresh_sandbox.clock.advance(1)
    response = get(fresh_sandbox, "/user", headers=bearer(token))
    assert response.status_code == 401
    assert error_message(response) == TOKEN_EXPIRED
    assert response.headers["WWW-Authenticate"] == WWW_AUTHENTICATE


def test_oauth_token_expires_when_the_clock_is_moved_over_http(fresh_sandbox):
    token = Credentials(fresh_sandbox).oauth("app")
    before = requests.get(f"{fresh_sandbox.base_url}/_sandbox/clock", timeout=TIMEOUT).json()
    assert before["manual"] is True
    moved = requests.post(f"{fresh_sandbox.base_url}/_sandbox/clock", json={"advance_seconds": 7200}, timeout=TIMEOUT)
    assert moved.status_code == 200
    assert moved.json()["now"] == "2026-11-01T02:00:00.000000+00:00"
    response = get(fresh_sandbox, "/user", headers=bearer(token))
    assert response.status_code == 401
    assert error_message(response) == TOKEN_EXPIRED


def test_the_clock_cannot_be_moved_on_a_system_clock(sandbox):
    response = requests.post(f"{sandbox.base_url}/_sandbox/clock", json={"advance_seconds": 7200}, timeout=TIMEOUT)
    assert response.status_code == 409
    assert requests.get(f"{sandbox.base_url}/_sandbox/clock", timeout=TIMEOUT).json()["manual"] is False


def test_bad_client_secret_at_the_token_endpoint_is_invalid_client(sandbox):
    key, _ = consumer(sandbox, "APP")
    response = token_endpoint(sandbox, {"grant_type": "client_credentials"}, (key, "wrong-secret"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_client_may_authenticate_with_form_fields_instead_of_basic(sandbox):
    key, secret = consumer(sandbox, "APP")
    response = requests.post(
        f"{sandbox.base_url}/site/oauth2/access_token",
        timeout=TIMEOUT,
        data={"grant_type": "client_credentials", "client_id": key, "client_secret": secret},
    )
    assert response.status_code == 200


# -- scopes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "required", "accepted"),
    [
        (f"/repositories/{REPO}/pullrequests", "read:pullrequest:bitbucket", "pullrequest"),
        (f"/repositories/{REPO}/pipelines", "read:pipeline:bitbucket", "pipeline"),
        (f"/repositories/{REPO}/hooks", "read:webhook:bitbucket", "webhook"),
        (f"/repositories/{REPO}/branch-restrictions", "admin:repository:bitbucket", "repository:admin"),
    ],
)
def test_limited_api_token_gets_403_naming_granted_and_required_scopes(sandbox, creds, path, required, accepted):
    response = get(sandbox, path, auth=creds.token("carol-limited"))
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["message"] == LACKS_SCOPES
    assert error["detail"] == {"granted": sorted(LIMITED_API_TOKEN_SCOPES), "required": [required]}
    assert response.headers["x-accepted-oauth-scopes"] == accepted
    assert set(response.headers["x-oauth-scopes"].split(", ")) == LIMITED_API_TOKEN_SCOPES
    assert response.headers["x-credential-type"] == "apikey"


def test_limited_api_token_still_reads_repositories(sandbox, creds):
    response = get(sandbox, f"/repositories/{REPO}", auth=creds.token("carol-limited"))
    assert response.status_code == 200
    assert response.headers["x-accepted-oauth-scopes"] == "repository"


def test_scope_headers_name_each_credential_kind(sandbox, creds):
    api = get(sandbox, f"/repositories/{REPO}", auth=creds.token("alice-admin"))
    oauth = get(sandbox, f"/repositories/{REPO}", headers=bearer(creds.oauth("app")))
    token = get(sandbox, f"/repositories/{REPO}", headers=bearer(creds.access_token()))
    assert [r.status_code for r in (api, oauth, token)] == [200, 200, 200]
    assert [r.headers["x-credential-type"] for r in (api, oauth, token)] == [
        "apikey",
        "oauth2",
        "workspace_access_token",
    ]
    # API tokens report the new scope names, OAuth and access tokens the legacy ones.
    assert "read:repository:bitbucket" in api.headers["x-oauth-scopes"].split(", ")
    assert "repository:admin" in oauth.headers["x-oauth-scopes"].split(", ")
    assert "repository:admin" in token.headers["x-oauth-scopes"].split(", ")
    assert {r.headers["x-accepted-oauth-scopes"] for r in (api, oauth, token)} == {"repository"}


def test_legacy_oauth_scopes_imply_weaker_ones(fresh_sandbox):
    fresh_sandbox.world.consumers.append(
        OAuthConsumer(
            "admin-only",
            key="adminonlykey",
            secret="adminonlysecret",
            owner="alice",
            scopes=frozenset({"repository:admin"}),
        )
    )
    grant = token_endpoint(fresh_sandbox, {"grant_type": "client_credentials"}, ("adminonlykey", "adminonlysecret"))
    headers = bearer(grant.json()["access_token"])

    repo = get(fresh_sandbox, f"/repositories/{REPO}", headers=headers)  # needs `repository`
    assert repo.status_code == 200
    assert repo.headers["x-oauth-scopes"] == "repository:admin"  # granted, not expanded
    assert get(fresh_sandbox, f"/repositories/{REPO}/branch-restrictions", headers=headers).status_code == 200

    prs = get(fresh_sandbox, f"/repositories/{REPO}/pullrequests", headers=headers)
    assert prs.status_code == 403
    assert prs.json()["error"]["detail"] == {"granted": ["repository:admin"], "required": ["pullrequest"]}


def test_api_token_scopes_imply_nothing(fresh_sandbox):
    fresh_sandbox.world.api_tokens.append(
        ApiToken("admin-only", "alice", "ATATT3xadminonly", frozenset({"admin:repository:bitbucket"}))
    )
    auth = ("alice@example.com", "ATATT3xadminonly")
    assert get(fresh_sandbox, f"/repositories/{REPO}/branch-restrictions", auth=auth).status_code == 200
    repo = get(fresh_sandbox, f"/repositories/{REPO}", auth=auth)
    assert repo.status_code == 403
    assert repo.json()["error"]["detail"]["required"] == ["read:repository:bitbucket"]


def test_scope_is_not_permission(sandbox, creds):
    """bob's token has every scope, but bob is not an administrator of the repository."""
    response = get(sandbox, f"/repositories/{REPO}/branch-restrictions", auth=creds.token("bob-member"))
    assert response.status_code == 403
    assert error_message(response) == "Access denied. You must have write or admin access."  # reference §5
