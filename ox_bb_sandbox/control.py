"""The sandbox's operating knobs: request counters, the rolling-hour rate limit, fault injection."""

from __future__ import annotations

import fnmatch
import threading
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from datetime import timedelta

from ox_bb_pipeline.clock import Clock

# Bitbucket's scaled rate limits (support.atlassian.com/bitbucket-cloud/docs/api-request-limits and the
# "Introducing scaled rate limits" announcement): requests made with an access token (repository, project or
# workspace) to the `api` resource group, /2.0/repositories and /2.0/repositories/*, are allowed 1,000 per
# rolling hour plus 10 per paid seat above 100 on Standard and Premium workspaces, at most 10,000. Only those
# requests carry the three headers below; NearLimit is "true" once less than 20% of the limit remains.
SCALED_PLANS = ("standard", "premium")
SCALED_FREE_SEATS, SCALED_PER_SEAT, SCALED_CAP = 100, 10, 10_000
SCALED_RESOURCE = "api"
NEAR_LIMIT_SHARE = 0.2
LIMIT_HEADER, RESOURCE_HEADER, NEAR_LIMIT_HEADER = "X-RateLimit-Limit", "X-RateLimit-Resource", "X-RateLimit-NearLimit"


def scaled_limit(plan: str, paid_seats: int, base: int = 1000) -> int:
    """Requests per hour an access token gets on the `api` resource group of a workspace."""
    if plan not in SCALED_PLANS or paid_seats <= SCALED_FREE_SEATS:
        return base
    return min(SCALED_CAP, base + SCALED_PER_SEAT * (paid_seats - SCALED_FREE_SEATS))


def is_scaled_path(path: str) -> bool:
    return path.rstrip("/") == "/2.0/repositories" or path.startswith("/2.0/repositories/")


def scaled_headers(limit: int, remaining: int) -> dict[str, str]:
    return {
        LIMIT_HEADER: str(limit),
        RESOURCE_HEADER: SCALED_RESOURCE,
        NEAR_LIMIT_HEADER: "true" if remaining < NEAR_LIMIT_SHARE * limit else "false",
    }


FAULT_KINDS = ("500", "502", "503", "slow", "drop", "truncate", "repeat", "next_on_last", "401")
# Faults that replace or damage one answer whatever the route (REST, git smart HTTP, the mirror); `401`
# refuses the credential as an expired or revoked token would be refused.
TRANSPORT_FAULTS = ("500", "502", "503", "slow", "drop", "truncate", "401")


class Stats:
    """Counters served at /_sandbox/stats (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.rest_total = 0
            self.git_total = 0
            self.rate_limited = 0
            self.oauth_total = 0
            self.mirror_total = 0  # the OSV / KEV / EPSS mirror
            self.per_route: Counter[str] = Counter()
            self.per_credential: Counter[str] = Counter()
            self.per_status: Counter[str] = Counter()
            self.faults_injected: Counter[str] = Counter()

    def record(self, *, channel: str, route: str | None, credential: str | None, status: int) -> None:
        with self._lock:
            if channel == "git":
                self.git_total += 1
            elif channel == "oauth":
                self.oauth_total += 1
            elif channel == "mirror":
                self.mirror_total += 1
            else:
                self.rest_total += 1
            if status == 429:
                self.rate_limited += 1
            if route:
                self.per_route[route] += 1
            if credential:
                self.per_credential[credential] += 1
            self.per_status[str(status)] += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self.faults_injected[kind] += 1

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "rest_total": self.rest_total,
                "git_total": self.git_total,
                "oauth_total": self.oauth_total,
                "mirror_total": self.mirror_total,
                "rate_limited": self.rate_limited,
                "per_route": dict(self.per_route),
                "per_credential": dict(self.per_credential),
                "per_status": dict(self.per_status),
                "faults_injected": dict(self.faults_injected),
            }


class RateLimiter:
    """Bitbucket's rolling one-hour window, counted per credential bucket."""

    def __init__(
        self, clock: Clock, limit: int = 1000, window: timedelta = timedelta(hours=1), git_limit: int = 60_000
    ) -> None:
        self.clock = clock
        self.limit = limit
        self.git_limit = git_limit  # git over HTTPS has its own, much larger bucket
        self.window = window
        self.overrides: dict[str, int] = {}
        self._hits: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def allow(self, bucket: str) -> bool:
        return self.admit(bucket)[0]

    def admit(self, bucket: str, limit: int | None = None) -> tuple[bool, int, int]:
        """Count one request of `bucket` if its window has room: (allowed, limit, remaining after it).
        An override (set through /_sandbox/rate-limit) wins over `limit`: it is how tests lower a limit."""
        now = self.clock.now()
        default = self.git_limit if bucket.startswith("git:") else self.limit if limit is None else limit
        limit = self.overrides.get(bucket, default)
        with self._lock:
            hits = self._hits[bucket]
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            if len(hits) >= limit:
                return False, limit, 0
            hits.append(now)
            return True, limit, limit - len(hits)

    def configure(self, limit: int | None = None, overrides: dict[str, int] | None = None) -> None:
        with self._lock:
            if limit is not None:
                self.limit = limit
            if overrides is not None:
                self.overrides = dict(overrides)

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()

    def describe(self) -> dict:
        with self._lock:
            return {"limit": self.limit, "git_limit": self.git_limit, "overrides": dict(self.overrides)}


@dataclass
class FaultRule:
    """Inject `kind` into requests whose path matches `route` (a glob such as
    `/2.0/repositories/*/*/pullrequests`, or `/*/*.git/git-upload-pack` for git smart HTTP).
    `times` = how many matching requests get the fault (0 = every one); `after` = how many matching
    requests pass untouched first."""

    route: str
    kind: str
    times: int = 1
    after: int = 0
    delay: float = 2.0
    seen: int = field(default=0, compare=False)
    fired: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        self.kind = str(self.kind)
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {', '.join(FAULT_KINDS)}")
        if not isinstance(self.route, str) or not self.route:
            raise ValueError("route must be a non-empty path glob such as /2.0/repositories/*")
        # Checked here, not when a request matches (a bad value there would turn every match into a 500).
        for name, cast in (("times", int), ("after", int), ("delay", float)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or cast(value) != value:
                raise ValueError(
                    f"{name} must be a non-negative {'integer' if cast is int else 'number'}, not {value!r}"
                )
            setattr(self, name, cast(value))

    @classmethod
    def parse(cls, spec: str) -> FaultRule:
        """`ROUTE=KIND[:TIMES]`, e.g. `/2.0/repositories/*=503:2` (the CLI's --fault)."""
        route, sep, rest = spec.rpartition("=")
        if not sep or not route:
            raise ValueError(f"fault {spec!r}: expected ROUTE=KIND[:TIMES]")
        kind, _, times = rest.partition(":")
        if times and not times.isdigit():
            raise ValueError(f"fault {spec!r}: TIMES must be a whole number, not {times!r}")
        return cls(route=route, kind=kind, times=int(times) if times else 1)

    def as_dict(self) -> dict:
        return {
            "route": self.route,
            "kind": self.kind,
            "times": self.times,
            "after": self.after,
            "delay": self.delay,
            "seen": self.seen,
            "fired": self.fired,
        }


class Faults:
    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def set(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self._rules = list(rules)

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        self.set([])

    def take(self, path: str, kinds: tuple[str, ...] = FAULT_KINDS) -> FaultRule | None:
        """The first rule that fires for this request path (counting it), or None."""
        with self._lock:
            for rule in self._rules:
                if rule.kind not in kinds or not fnmatch.fnmatchcase(path, rule.route):
                    continue
                rule.seen += 1
                if rule.seen <= rule.after:
                    continue
                if rule.times and rule.fired >= rule.times:
                    continue
                rule.fired += 1
                return rule
        return None

    def describe(self) -> list[dict]:
        with self._lock:
            return [r.as_dict() for r in self._rules]
