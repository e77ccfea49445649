"""Typed Bitbucket errors whose messages say which connection, which endpoint and what to do.

Messages never contain a secret: only the connection name, its method and the endpoint path.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
import urllib3

REPLACEMENTS = {
    "/workspaces": "/user/workspaces",
    "/user/permissions/workspaces": "/user/workspaces",
    "/user/permissions/repositories": "/user/workspaces/{workspace}/permissions/repositories",
    "/repositories": "/repositories/{workspace}",
}


class BitbucketError(Exception):
    def __init__(self, message: str, *, connection: str = "", endpoint: str = "", status: int | None = None):
        super().__init__(message)
        self.connection = connection
        self.endpoint = endpoint
        self.status = status


class AuthenticationError(BitbucketError):
    """401: the credential was refused (after one OAuth refresh where that applies)."""


class MissingScopeError(BitbucketError):
    """403 with Bitbucket's granted/required scope detail."""

    def __init__(self, message: str, *, granted: list[str], required: list[str], **kw):
        super().__init__(message, **kw)
        self.granted = granted
        self.required = required


class PermissionDeniedError(BitbucketError):
    """403 without a scope problem: the account lacks admin rights (or the plan lacks the feature)."""


class NotFoundError(BitbucketError):
    """404: unknown, or private and invisible to this account."""


class EndpointGoneError(BitbucketError):
    """410: the endpoint was removed (CHANGE-2770)."""

    def __init__(self, message: str, *, replacement: str | None, **kw):
        super().__init__(message, **kw)
        self.replacement = replacement


class RateLimitedError(BitbucketError):
    """429 still answered after every retry."""


class ServerError(BitbucketError):
    """5xx, dropped connections or timeouts still failing after every retry."""


class InvalidResponseError(BitbucketError):
    """An answer that is not the JSON Bitbucket documents (truncated, wrong shape)."""


class NotBitbucketError(InvalidResponseError):
    """A host that answers, but not as a Bitbucket API (an HTML page, plain text): host_url is wrong.
    Another attempt gets the same answer."""


class UnreachableError(BitbucketError):
    """The host cannot be reached at all: connection refused, a name that does not resolve, a TLS
    handshake that fails. Not Bitbucket being degraded: a wrong host_url, a proxy, a certificate."""

    def __init__(self, message: str, *, reason: str, **kw):
        super().__init__(message, **kw)
        self.reason = reason


class BudgetExhaustedError(BitbucketError):
    """The connection's hourly request budget is spent and the caller asked not to wait."""


def unreachable_reason(exc: Exception) -> str | None:
    """Why a host cannot be reached at all (refused, DNS, TLS), or None for a transient failure
    (a dropped or timed-out connection) that retries with backoff may get past."""
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed"
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        return "host name does not resolve (DNS)"
    if isinstance(reason, urllib3.exceptions.NewConnectionError) and not isinstance(exc, requests.Timeout):
        return "connection refused"
    return None


def unreachable_error(connection: str, url: str, reason: str, endpoint: str = "") -> UnreachableError:
    host = urlsplit(url).netloc
    return UnreachableError(
        f"connection '{connection}': cannot reach {host}: {reason}; check host_url in the "
        "connections file, the network or proxy, and that the server is up (not retried)",
        reason=reason,
        connection=connection,
        endpoint=endpoint,
    )
