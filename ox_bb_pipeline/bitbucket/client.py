"""A small Bitbucket Cloud REST client: one pooled session per connection, paging that follows
`next` verbatim and stops safely, retries with backoff and jitter, and an hourly request budget.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from ..clock import Clock, SystemClock, isoformat, parse_when
from .auth import auth_for
from .errors import (
    REPLACEMENTS,
    AuthenticationError,
    BitbucketError,
    EndpointGoneError,
    InvalidResponseError,
    MissingScopeError,
    NotBitbucketError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    unreachable_error,
    unreachable_reason,
)

log = logging.getLogger(__name__)
# Bitbucket's scaled rate limit headers (sent to access tokens on the `api` resource group, /2.0/repositories*).
LIMIT_HEADER, RESOURCE_HEADER, NEAR_LIMIT_HEADER = "X-RateLimit-Limit", "X-RateLimit-Resource", "X-RateLimit-NearLimit"
TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
MAX_BACKOFF = 60.0
UNREACHABLE_RETRY = 1.0  # one short second try for a refused connection (a restarting proxy), then stop


class RequestBudget:
    """At most `per_hour` requests in any rolling hour; `acquire` waits (injectable sleep) for a slot.

    A request counts from `acquire` and is time-stamped at `release` (when its answer came back):
    the server counts it at arrival, somewhere in between, so this count is never below the server's
    and a budget equal to Bitbucket's limit draws no 429 even with requests in flight in parallel.
    """

    def __init__(self, per_hour: int, clock: Clock | None = None, sleep: Callable[[float], None] = time.sleep):
        self.per_hour = per_hour
        self.ceiling = per_hour  # the configured budget: an announced limit never raises the pace above it
        self.announced: int | None = None
        self.clock = clock or SystemClock()
        self.sleep = sleep
        self._done: deque = deque()  # completion times, oldest first
        self._in_flight = 0
        self._lock = threading.Lock()
        self.waited_seconds = 0.0

    def _expire(self, now) -> None:
        while self._done and now - self._done[0] >= timedelta(hours=1):
            self._done.popleft()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self.clock.now()
                self._expire(now)
                if len(self._done) + self._in_flight < self.per_hour:
                    self._in_flight += 1
                    return
                wait = (self._done[0] + timedelta(hours=1) - now).total_seconds() if self._done else 0.05
            if wait > 1:  # a budget wait can last minutes: say so instead of hanging silently
                log.warning("hourly request budget of %d spent; waiting %.0fs for a slot", self.per_hour, wait)
            self.waited_seconds += max(wait, 0.05)
            self.sleep(max(wait, 0.05))

    def follow(self, announced: int) -> None:
        """Pace to a limit Bitbucket announced (X-RateLimit-Limit), within the configured ceiling. A lower
        one mid-run takes effect for the next `acquire`: requests already counted keep counting."""
        with self._lock:
            if announced != self.announced:
                log.info(
                    "Bitbucket announces %d requests per hour; pacing to %d", announced, min(self.ceiling, announced)
                )
            self.announced = announced
            self.per_hour = min(self.ceiling, announced)

    def release(self) -> None:
        with self._lock:
            self._in_flight -= 1
            self._done.append(max(self.clock.now(), self._done[-1]) if self._done else self.clock.now())

    def preload(self, timestamps: list[str]) -> None:
        """Count requests an earlier run made in the last hour (ISO timestamps)."""
        cutoff = self.clock.now() - timedelta(hours=1)
        with self._lock:
            earlier = [t for t in (parse_when(x) for x in timestamps) if t and t > cutoff]
            self._done = deque(sorted([*earlier, *self._done]))

    def export(self) -> list[str]:
        cutoff = self.clock.now() - timedelta(hours=1)
        with self._lock:
            return [isoformat(t) for t in self._done if t > cutoff]

    @property
    def used(self) -> int:
        with self._lock:
            return len(self._done) + self._in_flight


def _item_key(item: dict):
    for field in ("uuid", "id", "hash", "path"):
        if field in item and item[field] is not None:
            return (field, item[field] if not isinstance(item[field], (dict, list)) else json.dumps(item[field]))
    return ("json", json.dumps(item, sort_keys=True))


class BitbucketClient:
    """REST access for one connection. Counts every request it sends (`requests_sent`)."""

    def __init__(
        self,
        connection,
        *,
        auth=None,
        clock: Clock | None = None,
        sleep: Callable[[float], None] = time.sleep,
        budget: RequestBudget | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.connection = connection
        self.name = connection.name
        self.clock = clock or SystemClock()
        self.auth = auth or auth_for(connection, self.clock)
        self.sleep = sleep
        self.budget = budget or RequestBudget(connection.requests_per_hour, self.clock, sleep)
        self.rng = rng or random.Random()
        self.timeout = (connection.timeouts.connect, connection.timeouts.read)
        self.max_retries = connection.max_retries
        self.base_url = connection.host_url
        self._origin = urlsplit(self.base_url)[:2]
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"Accept": "application/json", "User-Agent": "ox-bb-pipeline"})
        self.requests_sent = 0
        self.near_limit_seen = 0
        self.rate_limit_resource = ""
        self.retries = Counter()
        self._count_lock = threading.Lock()

    # -- public API ----------------------------------------------------------------------------
    def get_json(self, path: str, params: dict | list | None = None) -> dict:
        return self._send("GET", path, params=params).json()

    def send_json(self, method: str, path: str, body) -> dict | list:
        return self._send(method, path, json_body=body).json()

    def get_raw(self, path: str, params: dict | None = None) -> bytes:
        return self._send("GET", path, params=params, expect_json=False).content

    def paginate(
        self,
        path: str,
        params: dict | list | None = None,
        *,
        pagelen: int | None = None,
        key: Callable[[dict], object] = _item_key,
    ) -> Iterator[dict]:
        """Every item of a paginated collection. Follows `next` verbatim; stops on a repeated or
        foreign `next`, and drops items already seen (some endpoints repeat items across pages)."""
        query = list(params.items()) if isinstance(params, dict) else list(params or [])
        if pagelen:
            query.append(("pagelen", pagelen))
        url: str | None = path
        visited: set[str] = set()
        seen: set = set()
        first = True
        while url:
            response = self._send("GET", url, params=query if first else None)
            visited.add(response.url)
            page = response.json()
            if not isinstance(page, dict) or not isinstance(page.get("values"), list):
                raise InvalidResponseError(
                    f"connection '{self.name}': {self._endpoint(url)} did not answer a paginated list",
                    connection=self.name,
                    endpoint=self._endpoint(url),
                )
            for item in page["values"]:
                k = key(item)
                if k in seen:
                    continue
                seen.add(k)
                yield item
            next_url = page.get("next")
            first = False
            if not next_url or next_url in visited or not page["values"]:
                break
            if urlsplit(next_url)[:2] != self._origin:
                raise InvalidResponseError(
                    f"connection '{self.name}': refusing to follow a `next` link to another "
                    f"host ({urlsplit(next_url).netloc})",
                    connection=self.name,
                    endpoint=self._endpoint(url),
                )
            url = next_url

    # -- plumbing ------------------------------------------------------------------------------
    def _full(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return f"{self.base_url}{path_or_url}"

    def _endpoint(self, path_or_url: str) -> str:
        path = urlsplit(self._full(path_or_url)).path
        return path.removeprefix(urlsplit(self.base_url).path) or "/"

    def _backoff(self, attempt: int) -> float:
        return self.rng.uniform(0, min(MAX_BACKOFF, 2.0**attempt))  # exponential, full jitter

    def _send(self, method: str, path: str, *, params=None, json_body=None, expect_json: bool = True):
        url, endpoint = self._full(path), self._endpoint(path)
        attempt, refreshed, unreachable, waited = 0, False, 0, 0.0
        while True:
            self.budget.acquire()
            with self._count_lock:
                self.requests_sent += 1
            problem: str
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    auth=self.auth,
                    timeout=self.timeout,
                    allow_redirects=True,
                )
            except TRANSIENT as exc:
                response = None
                problem = type(exc).__name__
                reason = unreachable_reason(exc)
                if reason:
                    unreachable += 1
                    if unreachable > 1:
                        raise unreachable_error(self.name, url, reason, endpoint) from None
                    log.info("%s %s: %s, one retry in %.0fs", method, endpoint, reason, UNREACHABLE_RETRY)
                    self.sleep(UNREACHABLE_RETRY)
                    continue
            finally:
                self.budget.release()
            if response is not None:
                self._learn_limit(response)
                status = response.status_code
                if status == 401 and not refreshed and self.auth.can_refresh():
                    refreshed = True
                    self.auth.invalidate()
                    continue
                if status == 429:
                    problem = "429 rate limited"
                elif status >= 500:
                    problem = f"HTTP {status}"
                elif status >= 400:
                    raise self._error(response, endpoint)
                elif expect_json:
                    if "json" not in response.headers.get("Content-Type", "json"):
                        raise NotBitbucketError(
                            f"connection '{self.name}': {endpoint} answered {response.headers['Content-Type']}, "
                            f"not JSON: {self.base_url} does not look like a Bitbucket API; check host_url "
                            "(https://api.bitbucket.org/2.0 for Bitbucket Cloud)",
                            connection=self.name,
                            endpoint=endpoint,
                            status=status,
                        )
                    try:
                        response.json()
                        return response
                    except ValueError:
                        problem = "truncated or invalid JSON"
                else:
                    return response
            if attempt >= self.max_retries:
                raise self._exhausted(method, endpoint, problem, attempt + 1, waited)
            self.retries[problem] += 1
            delay = self._backoff(attempt)
            log.warning(
                "%s %s: %s, retry %d of %d in %.0fs", method, endpoint, problem, attempt + 1, self.max_retries, delay
            )
            self.sleep(delay)
            waited += delay
            attempt += 1

    def _learn_limit(self, response: requests.Response) -> None:
        """Scaled rate limits: Bitbucket announces the hourly limit of access tokens on /2.0/repositories/*
        in X-RateLimit-Limit (the limit, not what remains); X-RateLimit-NearLimit says under 20% remain."""
        announced = response.headers.get(LIMIT_HEADER)
        if announced is None:
            return
        try:
            limit = int(announced)
        except ValueError:
            log.warning("%s: ignoring an unreadable %s header", self.name, LIMIT_HEADER)
            return
        if limit > 0:
            self.budget.follow(limit)
            self.rate_limit_resource = response.headers.get(RESOURCE_HEADER, "")
        if response.headers.get(NEAR_LIMIT_HEADER, "").lower() == "true":
            self.near_limit_seen += 1

    @property
    def effective_limit(self) -> int:
        """Requests per hour this client paces to: the announced limit within the configured budget."""
        return self.budget.per_hour

    def _exhausted(self, method: str, endpoint: str, problem: str, attempts: int, waited: float) -> BitbucketError:
        """Retries spent: say what kept failing, how long we waited and when another run may work."""
        limited = problem.startswith("429")
        cls = RateLimitedError if limited else InvalidResponseError if "JSON" in problem else ServerError
        # Bitbucket's limit is a rolling hour; a degraded service usually recovers within minutes.
        later = self.clock.now() + (timedelta(hours=1) if limited else timedelta(minutes=15))
        cause = "the hourly request limit is reached" if limited else "Bitbucket is degraded"
        return cls(
            f"connection '{self.name}': {method} {endpoint} failed after {attempts} attempts over "
            f"{waited:.0f}s of waiting ({problem}); {cause} — retry after {later:%H:%M} UTC",
            connection=self.name,
            endpoint=endpoint,
        )

    def _error(self, response: requests.Response, endpoint: str) -> BitbucketError:
        status = response.status_code
        try:
            error = response.json().get("error", {})
        except (ValueError, AttributeError):
            error = {}
        message = error.get("message") or response.text[:200]
        detail = error.get("detail")
        who = f"connection '{self.name}' ({self.connection.method})"
        kw = {"connection": self.name, "endpoint": endpoint, "status": status}
        if status == 401:
            return AuthenticationError(
                f"{who}: Bitbucket refused the credential on {endpoint} ({message})"
                + ("; an OAuth refresh was tried once" if self.auth.can_refresh() else "")
                + " — check that it is valid, not expired, and (for API tokens) sent with the account email",
                **kw,
            )
        if status == 403 and isinstance(detail, dict) and "required" in detail:
            granted, required = list(detail.get("granted", [])), list(detail.get("required", []))
            return MissingScopeError(
                f"{who}: {endpoint} needs scope {', '.join(required)} which the credential lacks "
                f"(granted: {', '.join(granted) or 'none'}); add it to the token or consumer",
                granted=granted,
                required=required,
                **kw,
            )
        if status == 403:
            return PermissionDeniedError(
                f"{who}: {endpoint} is not allowed for this account ({message}); it needs "
                "admin rights on the repository or workspace, or a plan with the feature",
                **kw,
            )
        if status == 404:
            return NotFoundError(f"{who}: {endpoint} not found, or private and not visible to this account", **kw)
        if status == 410:
            replacement = next((new for old, new in REPLACEMENTS.items() if endpoint.rstrip("/") == old), None)
            return EndpointGoneError(
                f"{who}: {endpoint} was removed by Bitbucket ({message})"
                + (f"; use {replacement} instead" if replacement else ""),
                replacement=replacement,
                **kw,
            )
        return BitbucketError(
            f"{who}: {endpoint} answered {status}: {message}" + (f" ({detail})" if isinstance(detail, str) else ""),
            **kw,
        )
