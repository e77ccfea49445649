"""Live-credential checks: is a Bitbucket credential found in code or history still accepted by the host?

Only credentials of the connected Bitbucket host itself (Atlassian API tokens, Bitbucket access tokens,
OAuth consumer key/secret pairs), only with one read-only request to the connection's own host, only when
the connection opts in (`live_checks: true`). The session carries a `HostOnlyAdapter`: any request to
another scheme, host or port is refused before a socket is opened, whatever URL a bug might build. The
secret is used in memory for the request and never logged, stored or put in an exception message.

A 401 means the host refused the credential (`revoked`); any other answer from the host means it knew it
(`active`: a 403 or 404 is a live token without access to that repository); a transport error, a 429 or a
5xx tells nothing (`unknown`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from ..clock import Clock, SystemClock

ACTIVE, REVOKED, UNKNOWN = "active", "revoked", "unknown"
VALIDITIES = (ACTIVE, REVOKED, UNKNOWN)

# Rule id (severity/secrets.yaml) -> the git user name Bitbucket expects with that kind of credential.
GIT_USERS = {
    "atlassian-api-token": "x-bitbucket-api-token-auth",
    "bitbucket-access-token": "x-token-auth",
}
OAUTH_RULE = "bitbucket-oauth-consumer"
CHECKED_RULES = frozenset({*GIT_USERS, OAUTH_RULE})


class HostRefused(requests.exceptions.ConnectionError):
    """A request to an address other than the connection's own; raised before any connection is made."""


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


class HostOnlyAdapter(HTTPAdapter):
    """A transport adapter that sends only to the given origins (scheme, host, port) and refuses the rest.
    Mounted for both `http://` and `https://`, so every request of the session passes through it."""

    def __init__(self, allowed_urls: list[str], **kwargs) -> None:
        self.allowed = frozenset(_origin(url) for url in allowed_urls)
        self.refused = 0
        super().__init__(**kwargs)

    def send(self, request, *args, **kwargs):
        if _origin(request.url) not in self.allowed:
            self.refused += 1
            scheme, host, port = _origin(request.url)
            raise HostRefused(f"live check refused a request to {scheme}://{host}:{port}: not the connection's host")
        return super().send(request, *args, **kwargs)


def host_only_session(allowed_urls: list[str]) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: the request goes to the host or nowhere
    adapter = HostOnlyAdapter(allowed_urls, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class LiveChecker:
    """One read-only request per credential to the connection's host, at most one every `min_interval`
    seconds and at most `max_checks` per run (the rest stay `unknown`)."""

    def __init__(
        self,
        git_url: str,
        token_url: str,
        *,
        min_interval: float = 1.0,
        max_checks: int = 50,
        timeout: float = 10.0,
        clock: Clock | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.git_url = git_url.rstrip("/")
        self.token_url = token_url
        self.session = host_only_session([self.git_url, token_url])
        self.min_interval = min_interval
        self.max_checks = max_checks
        self.timeout = timeout
        self.clock = clock or SystemClock()
        self.sleep = sleep
        self.monotonic = monotonic
        self.checks = 0
        self._last: float | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_connection(cls, connection, **kwargs) -> LiveChecker:
        """The checker of a loaded connection (config._Connection): its git host and its token endpoint."""
        return cls(connection.git_url, connection.token_url, **kwargs)

    @property
    def adapter(self) -> HostOnlyAdapter:
        return self.session.get_adapter(self.git_url)

    def check(self, rule: str, secret: str, workspace: str, repository: str, *, pair: str | None = None):
        """(validity, checked_at) of a credential found in `workspace/repository`; `pair` is the OAuth
        consumer secret that goes with a consumer key. Other rules are not checked: (None, None)."""
        if rule not in CHECKED_RULES or (rule == OAUTH_RULE and not pair):
            return None, None
        with self._lock:
            if self.checks >= self.max_checks:
                return UNKNOWN, None
            if self._last is not None:
                wait = self.min_interval - (self.monotonic() - self._last)
                if wait > 0:
                    self.sleep(wait)
            self.checks += 1
            try:
                if rule == OAUTH_RULE:
                    # a client-credentials grant: a 401 (invalid_client) is a dead pair; a 400 for a public
                    # consumer still proves the pair valid
                    answer = self.session.post(
                        self.token_url,
                        data={"grant_type": "client_credentials"},
                        auth=(secret, pair),
                        timeout=self.timeout,
                        allow_redirects=False,
                    )
                    status = ACTIVE if answer.status_code in (200, 400) else _status(answer.status_code)
                else:
                    # git's own first request of a clone (ref advertisement): read-only, on the git host
                    answer = self.session.get(
                        f"{self.git_url}/{workspace}/{repository}.git/info/refs",
                        params={"service": "git-upload-pack"},
                        auth=(GIT_USERS[rule], secret),
                        timeout=self.timeout,
                        allow_redirects=False,
                    )
                    status = _status(answer.status_code)
            except requests.RequestException:
                status = UNKNOWN  # the exception's text may quote the request: never logged
            finally:
                self._last = self.monotonic()
            return status, self.clock.now()


def _status(code: int) -> str:
    if code == 401:
        return REVOKED
    if code == 429 or code >= 500:
        return UNKNOWN
    return ACTIVE
