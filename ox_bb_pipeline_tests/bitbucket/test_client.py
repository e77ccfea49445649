"""The Bitbucket client against the sandbox over real HTTP: the four connection methods, OAuth expiry
and refresh-token rotation, typed errors, paging, retries through injected faults, and the hourly
request budget. Time never passes for real: clocks are injected and `sleep` only records.
"""

from __future__ import annotations

import http.server
import json
import logging
import math
import random
import socket
import stat
import threading

import pytest
import requests
from pydantic import SecretStr

from ox_bb_pipeline.bitbucket.client import BitbucketClient
from ox_bb_pipeline.bitbucket.errors import (
    AuthenticationError,
    EndpointGoneError,
    MissingScopeError,
    NotBitbucketError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    UnreachableError,
)
from ox_bb_pipeline.bitbucket.git import GitAccess
from ox_bb_pipeline.clock import ManualClock
from ox_bb_pipeline.config import Timeouts, load_connections
from ox_bb_pipeline_tests.conftest import ANCHOR, TINY
from ox_bb_sandbox.server import SandboxServer

WS = "acme-payments"
LISTING = f"/workspaces/{WS}/permissions/repositories"  # ~10 items in the tiny sandbox, many more in SMALL
LISTING_ROUTE = "/2.0/workspaces/*/permissions/repositories"
WRONG = "wrong-s3cr3t-" + "x" * 24
TWO_HOURS = 2 * 3600


class Sleeps(list):
    """A `sleep` that records each wait instead of waiting; with a clock, it moves that clock."""

    def __init__(self, clock: ManualClock | None = None) -> None:
        super().__init__()
        self.clock = clock

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        if self.clock:
            self.clock.advance(seconds)


def admin(server, method: str, path: str, body=None) -> dict:
    response = requests.request(method, f"{server.base_url}/_sandbox/{path}", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def client_for(config, name: str, *, clock=None, sleep=None, **changes) -> BitbucketClient:
    """A client for a connection of the file, optionally with some of its settings changed."""
    connection = config.get(name).model_copy(update=changes)
    return BitbucketClient(connection, clock=clock, sleep=Sleeps() if sleep is None else sleep, rng=random.Random(1))


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("OX_BB_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def config(fresh_sandbox, tmp_path, home):
    """The connections of a fresh tiny sandbox (manual clock): one per method, admin and not."""
    return load_connections(fresh_sandbox.write_connections(tmp_path / "connections.yaml"))


@pytest.fixture
def shared_config(sandbox, tmp_path, home):
    """The connections of the session's read-only sandbox (written afresh: the idp method rotates
    its refresh token, and the file always carries the live one)."""
    return load_connections(sandbox.write_connections(tmp_path / "connections.yaml"))


@pytest.fixture(scope="module")
def faulty_server():
    with SandboxServer(TINY, clock=ManualClock(ANCHOR)) as server:
        yield server


@pytest.fixture
def faulty(faulty_server):
    """This module's tiny sandbox for faults and rate limits, with nothing left over from the last test."""
    admin(faulty_server, "DELETE", "faults")
    admin(faulty_server, "POST", "stats/reset")
    admin(faulty_server, "POST", "rate-limit", {"limit": 1000, "reset": True})
    return faulty_server


@pytest.fixture
def faulty_config(faulty, tmp_path, home):
    return load_connections(faulty.write_connections(tmp_path / "connections.yaml"))


# -- the four methods -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "credential"),
    [
        ("sandbox-app", "oauth:ox-app"),
        ("sandbox-idp", "oauth:ox-idp"),
        ("sandbox-token", "api_token:alice-admin"),
        ("sandbox-access-token", "access_token:workspace-token"),
    ],
)
def test_each_connection_method_authenticates(sandbox, shared_config, name, credential):
    client = client_for(shared_config, name)
    before = admin(sandbox, "GET", "stats")["per_credential"].get(credential, 0)

    repositories = list(client.paginate(f"/repositories/{WS}", pagelen=100))

    assert {r["slug"] for r in repositories} >= {"python-service", "node-web"}
    assert admin(sandbox, "GET", "stats")["per_credential"][credential] - before == client.requests_sent == 1


# -- OAuth expiry and refresh ---------------------------------------------------------------------
def test_app_token_is_renewed_once_the_shared_clock_passes_its_expiry(fresh_sandbox, config):
    client = client_for(config, "sandbox-app", clock=fresh_sandbox.clock)
    client.get_json("/user")
    client.get_json("/user")
    assert client.auth.token_requests == 1  # one access token serves many requests

    fresh_sandbox.clock.advance(TWO_HOURS)
    assert client.get_json("/user")["username"] == "alice"

    assert client.auth.token_requests == 2
    stats = admin(fresh_sandbox, "GET", "stats")
    assert stats["oauth_total"] == 2
    assert "401" not in stats["per_status"]  # renewed before Bitbucket had to refuse it


def test_an_expiry_the_client_did_not_foresee_gets_one_refresh_then_succeeds(fresh_sandbox, config):
    client = client_for(config, "sandbox-app", clock=ManualClock(ANCHOR))  # its own clock stands still
    client.get_json("/user")

    admin(fresh_sandbox, "POST", "clock", {"advance_seconds": TWO_HOURS})  # only the server's time moves
    assert client.get_json("/user")["username"] == "alice"

    assert client.auth.token_requests == 2
    assert admin(fresh_sandbox, "GET", "stats")["per_status"]["401"] == 1


def test_idp_persists_the_rotated_refresh_token_and_the_next_client_uses_it(fresh_sandbox, config, tmp_path):
    store = tmp_path / "tokens" / "idp.json"
    connection = config.get("sandbox-idp").model_copy(update={"token_store": store})
    configured = connection.refresh_token.get_secret_value()

    assert BitbucketClient(connection).get_json("/user")["username"] == "bob"

    rotated = json.loads(store.read_text())["refresh_token"]
    assert rotated != configured
    assert rotated == fresh_sandbox.secrets()["OX_BB_SANDBOX_IDP_REFRESH_TOKEN"]  # the one Bitbucket now honours
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    # The next run starts from the same file (holding the spent token) and still gets in.
    assert BitbucketClient(connection).get_json("/user")["username"] == "bob"
    assert json.loads(store.read_text())["refresh_token"] == fresh_sandbox.secrets()["OX_BB_SANDBOX_IDP_REFRESH_TOKEN"]
    # Without the store, the configured token is spent: persisting the rotation is what keeps it working.
    without_store = connection.model_copy(update={"token_store": tmp_path / "nowhere.json"})
    with pytest.raises(AuthenticationError, match="re-authorise"):
        BitbucketClient(without_store).get_json("/user")


def test_the_idp_connection_keeps_working_with_a_new_data_home_and_from_another_directory(
    fresh_sandbox, config, home, state_dir, tmp_path, monkeypatch
):
    BitbucketClient(config.get("sandbox-idp")).get_json("/user")  # rotates: the file's token is now spent
    [stored] = (state_dir / "tokens").glob("sandbox-idp-*.json")
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600 and not (home / "cache" / "tokens").exists()

    monkeypatch.setenv("OX_BB_HOME", str(tmp_path / "another-home"))
    monkeypatch.chdir(tmp_path)
    assert BitbucketClient(config.get("sandbox-idp")).get_json("/user")["username"] == "bob"


def test_a_refused_refresh_token_says_where_it_is_stored_and_how_to_reauthorise(fresh_sandbox, config, home, state_dir):
    connection = config.get("sandbox-idp")
    BitbucketClient(connection).get_json("/user")
    [stored] = (state_dir / "tokens").glob("sandbox-idp-*.json")
    stored.write_text(json.dumps({**json.loads(stored.read_text()), "refresh_token": "revoked-" + "r" * 30}))

    with pytest.raises(AuthenticationError) as raised:
        BitbucketClient(connection).get_json("/user")

    message = str(raised.value)
    assert "invalid_grant" in message and f"stored in {stored}" in message
    assert "re-authorise" in message and "refresh_token" in message and "revoked-" not in message


def test_a_newly_authorised_token_in_the_connections_file_wins_over_the_stored_one(
    fresh_sandbox, config, home, state_dir, tmp_path
):
    BitbucketClient(config.get("sandbox-idp")).get_json("/user")
    [stored] = (state_dir / "tokens").glob("sandbox-idp-*.json")
    stored.write_text(json.dumps({**json.loads(stored.read_text()), "refresh_token": "revoked-" + "r" * 30}))

    # The operator re-authorises: the connections file now holds the live token (the sandbox writes it).
    reauthorised = load_connections(fresh_sandbox.write_connections(tmp_path / "again.yaml")).get("sandbox-idp")

    assert BitbucketClient(reauthorised).get_json("/user")["username"] == "bob"
    assert json.loads(stored.read_text())["refresh_token"] == fresh_sandbox.secrets()["OX_BB_SANDBOX_IDP_REFRESH_TOKEN"]


def test_a_token_rotated_into_the_old_data_home_is_still_found_after_the_upgrade(
    fresh_sandbox, config, home, state_dir, tmp_path
):
    connection = config.get("sandbox-idp")
    BitbucketClient(
        connection.model_copy(update={"token_store": home / "cache" / "tokens" / "sandbox-idp.json"})
    ).get_json("/user")  # where releases before the state dir kept it

    assert BitbucketClient(connection).get_json("/user")["username"] == "bob"
    assert list((state_dir / "tokens").glob("sandbox-idp-*.json"))


# -- typed errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "field", "method"),
    [
        ("sandbox-token", "api_token", "token"),
        ("sandbox-access-token", "token", "access_token"),
        ("sandbox-app", "client_secret", "app"),
        ("sandbox-idp", "refresh_token", "idp"),
    ],
)
def test_a_refused_credential_names_connection_and_method_never_the_secret(sandbox, shared_config, name, field, method):
    client = client_for(shared_config, name, **{field: SecretStr(WRONG)})

    with pytest.raises(AuthenticationError) as raised:
        client.get_json(f"/repositories/{WS}")

    message = str(raised.value)
    assert raised.value.connection == name
    assert f"connection '{name}' ({method})" in message
    assert WRONG not in message
    assert not any(secret in message for secret in sandbox.secrets().values())


def test_a_missing_scope_names_granted_and_required_scopes_and_the_endpoint(sandbox, shared_config):
    client = client_for(shared_config, "sandbox-token-limited")
    endpoint = f"/repositories/{WS}/python-service/pullrequests"

    with pytest.raises(MissingScopeError) as raised:
        client.get_json(endpoint)

    error = raised.value
    assert error.required == ["read:pullrequest:bitbucket"]
    assert "read:repository:bitbucket" in error.granted and "read:pullrequest:bitbucket" not in error.granted
    assert (error.endpoint, error.status) == (endpoint, 403)
    assert "needs scope read:pullrequest:bitbucket" in str(error) and endpoint in str(error)


def test_a_member_without_admin_rights_is_denied_branch_restrictions(sandbox, shared_config):
    client = client_for(shared_config, "sandbox-token-member")  # bob: every scope, but not an admin

    with pytest.raises(PermissionDeniedError) as raised:
        client.get_json(f"/repositories/{WS}/python-service/branch-restrictions")

    assert raised.value.status == 403
    assert "admin rights" in str(raised.value) and "sandbox-token-member" in str(raised.value)


def test_an_unknown_repository_is_not_found(sandbox, shared_config):
    with pytest.raises(NotFoundError) as raised:
        client_for(shared_config, "sandbox-token").get_json(f"/repositories/{WS}/no-such-repository")
    assert raised.value.status == 404
    assert raised.value.endpoint == f"/repositories/{WS}/no-such-repository"


def test_a_removed_endpoint_names_its_replacement(sandbox, shared_config):
    with pytest.raises(EndpointGoneError) as raised:
        client_for(shared_config, "sandbox-token").get_json("/workspaces")
    assert raised.value.status == 410
    assert raised.value.replacement == "/user/workspaces"
    assert "use /user/workspaces instead" in str(raised.value)


# -- paging ---------------------------------------------------------------------------------------
def test_paging_follows_next_across_many_pages(sandbox, shared_config):
    client = client_for(shared_config, "sandbox-token")
    everything = list(client.paginate(LISTING, pagelen=100))
    before = client.requests_sent

    paged = list(client.paginate(LISTING, pagelen=2))

    assert len(everything) > 10
    assert paged == everything
    assert client.requests_sent - before == math.ceil(len(everything) / 2)


# -- faults: retried or handled, nothing lost, nothing twice --------------------------------------
@pytest.mark.parametrize(
    ("kind", "retried"),
    [
        ("500", True),
        ("502", True),
        ("503", True),
        ("drop", True),
        ("truncate", True),
        ("repeat", False),  # the next page starts with this page's last item again
        ("next_on_last", False),  # the last page links to itself
    ],
)
def test_faults_lose_and_duplicate_nothing(faulty, faulty_config, kind, retried):
    sleeps = Sleeps()
    client = client_for(faulty_config, "sandbox-token", sleep=sleeps)
    baseline = list(client.paginate(LISTING, pagelen=3))
    pages = client.requests_sent
    assert pages >= 3

    after = 0 if kind == "next_on_last" else 1  # that one can only fire on the last page
    admin(faulty, "POST", "faults", {"route": LISTING_ROUTE, "kind": kind, "times": 2, "after": after})
    listed = list(client.paginate(LISTING, pagelen=3))

    assert listed == baseline
    assert admin(faulty, "GET", "stats")["faults_injected"][kind] >= 1
    assert len(sleeps) == (2 if retried else 0)
    assert client.requests_sent - pages == pages + len(sleeps)  # a looping `next` is not followed


def test_a_slow_answer_times_out_and_is_retried(faulty, faulty_config):
    baseline = list(client_for(faulty_config, "sandbox-token").paginate(LISTING, pagelen=3))
    client = client_for(faulty_config, "sandbox-token", timeouts=Timeouts(connect=2, read=0.4))

    admin(faulty, "POST", "faults", {"route": LISTING_ROUTE, "kind": "slow", "delay": 1.0, "times": 1})
    listed = list(client.paginate(LISTING, pagelen=3))

    assert listed == baseline
    assert client.retries["ReadTimeout"] >= 1


def test_retries_back_off_with_jitter_then_raise_server_error(faulty, faulty_config):
    sleeps = Sleeps()
    client = client_for(faulty_config, "sandbox-token", sleep=sleeps, max_retries=3)
    admin(faulty, "POST", "faults", {"route": LISTING_ROUTE, "kind": "503", "times": 0})  # every time

    with pytest.raises(ServerError) as raised:
        client.get_json(LISTING)

    assert client.requests_sent == 4
    assert len(sleeps) == 3 and all(0 <= wait <= 2**i for i, wait in enumerate(sleeps))
    assert len(set(sleeps)) == 3  # jitter: no two waits alike
    assert "after 4 attempts" in str(raised.value) and LISTING in str(raised.value)


def test_a_429_that_outlasts_every_retry_raises_rate_limited_error(faulty, faulty_config):
    admin(faulty, "POST", "rate-limit", {"limit": 1})
    client = client_for(faulty_config, "sandbox-token", max_retries=2)
    client.get_json(f"/repositories/{WS}")

    with pytest.raises(RateLimitedError):
        client.get_json(f"/repositories/{WS}")

    assert admin(faulty, "GET", "stats")["rate_limited"] == 3


# -- the hourly budget ----------------------------------------------------------------------------
def test_the_budget_paces_requests_so_the_sandbox_never_answers_429(faulty, faulty_config):
    admin(faulty, "POST", "rate-limit", {"limit": 5})
    sleeps = Sleeps(faulty.clock)  # waiting moves the time both sides share
    client = client_for(faulty_config, "sandbox-token", clock=faulty.clock, sleep=sleeps, requests_per_hour=5)

    for _ in range(12):
        client.get_json(f"/repositories/{WS}", {"pagelen": 1})

    stats = admin(faulty, "GET", "stats")
    assert (stats["rest_total"], stats["rate_limited"]) == (12, 0)
    assert sleeps == [3600, 3600]  # waited for the oldest request to leave the rolling hour, twice
    assert client.budget.waited_seconds == 7200


# -- secrets --------------------------------------------------------------------------------------
def test_no_secret_reaches_a_log_record_or_an_exception(fresh_sandbox, config, caplog):
    caplog.set_level(logging.DEBUG)
    failures, clients = [], {}
    for name in ("sandbox-app", "sandbox-idp", "sandbox-token", "sandbox-access-token"):
        admin(fresh_sandbox, "POST", "faults", {"route": f"/2.0/repositories/{WS}", "kind": "503", "times": 1})
        client = clients[name] = client_for(config, name, clock=ManualClock(ANCHOR))
        client.get_json(f"/repositories/{WS}")  # with one retry, logged
        GitAccess(name, client.connection.git_url, client.auth.git_credentials).ls_remote(WS, "python-service")
    admin(fresh_sandbox, "POST", "clock", {"advance_seconds": TWO_HOURS})
    clients["sandbox-idp"].get_json(f"/repositories/{WS}")  # a 401, then a refresh that rotates the token
    assert clients["sandbox-idp"].auth.token_requests == 2
    for name, field in (("sandbox-token", "api_token"), ("sandbox-app", "client_secret")):
        bad = client_for(config, name, **{field: SecretStr(WRONG)})
        with pytest.raises(AuthenticationError) as raised:
            bad.get_json(f"/repositories/{WS}")
        failures.append(str(raised.value))
        with pytest.raises(AuthenticationError) as raised:
            GitAccess(name, bad.connection.git_url, lambda: ("x-bitbucket-api-token-auth", WRONG)).ls_remote(
                WS, "python-service"
            )
        failures.append(str(raised.value))

    world = fresh_sandbox.world
    secrets = {WRONG, *fresh_sandbox.secrets().values(), *world.issued_tokens, *world.refresh_tokens}
    secrets -= {fresh_sandbox.secrets()["OX_BB_SANDBOX_APP_KEY"], fresh_sandbox.secrets()["OX_BB_SANDBOX_IDP_KEY"]}
    logged = [caplog.text] + [record.getMessage() for record in caplog.records]
    assert any("retry 1" in text for text in logged)  # the retries were logged...
    for text in logged + failures:
        assert not any(secret in text for secret in secrets)  # ...and nothing secret with them


# -- failure classes: a host that cannot be reached or is not Bitbucket fails fast, once ----------
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the probe is closed


@pytest.mark.parametrize(
    ("host_url", "reason"),
    [
        ("http://127.0.0.1:{closed}/2.0", "connection refused"),  # the port is picked when the test runs
        ("http://no-such-host.invalid/2.0", "host name does not resolve (DNS)"),
        ("https://{sandbox}/2.0", "TLS handshake failed"),  # the sandbox speaks plain HTTP
    ],
)
@pytest.mark.parametrize("name", ["sandbox-token", "sandbox-app"])
def test_an_unreachable_host_is_named_and_fails_after_one_short_retry(faulty, faulty_config, host_url, reason, name):
    clock = ManualClock(ANCHOR)
    host_url = host_url.format(sandbox=faulty.base_url.removeprefix("http://"), closed=closed_port())
    client = client_for(
        faulty_config, name, clock=clock, sleep=Sleeps(clock), host_url=host_url, web_url=host_url.removesuffix("/2.0")
    )

    with pytest.raises(UnreachableError) as raised:
        client.get_json(f"/repositories/{WS}")

    assert raised.value.reason == reason and reason in str(raised.value)
    assert "Bitbucket may be degraded" not in str(raised.value)
    assert (clock.now() - ANCHOR).total_seconds() <= 1  # one short retry at most, then stop
    assert client.requests_sent <= 2


class NotBitbucket(http.server.BaseHTTPRequestHandler):
    """A web server that answers every request with a 200 HTML page (a wrong host_url)."""

    def answer(self) -> None:
        body = b"<html><body>Welcome to nginx!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def web_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotBitbucket)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("name", ["sandbox-token", "sandbox-app"])
def test_a_host_that_is_not_bitbucket_is_a_permanent_error_naming_host_url(faulty_config, web_server, name):
    sleeps = Sleeps()
    client = client_for(faulty_config, name, sleep=sleeps, host_url=f"{web_server}/2.0", web_url=web_server)

    with pytest.raises(NotBitbucketError) as raised:
        client.get_json(f"/repositories/{WS}")

    assert "host_url" in str(raised.value) and "access_token" not in str(raised.value).replace("/access_token", "")
    assert sleeps == []  # the same page would come back: no retry


def test_exhausted_retries_say_how_long_they_waited_and_when_to_retry(faulty, faulty_config):
    clock = ManualClock(ANCHOR)
    client = client_for(faulty_config, "sandbox-token", clock=clock, sleep=Sleeps(clock), max_retries=3)
    admin(faulty, "POST", "faults", {"route": LISTING_ROUTE, "kind": "503", "times": 0})

    with pytest.raises(ServerError) as raised:
        client.get_json(LISTING)

    waited = (clock.now() - ANCHOR).total_seconds()
    assert f"over {waited:.0f}s of waiting (HTTP 503)" in str(raised.value)
    assert f"retry after {ANCHOR:%H}:15 UTC" in str(raised.value)
