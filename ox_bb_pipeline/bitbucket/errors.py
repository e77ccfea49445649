"""Typed Bitbucket errors whose messages say which connection, which endpoint and what to do.

Messages never contain a secret: only the connection name, its method and the endpoint path.
"""

from __future__ import annotations

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


class BudgetExhaustedError(BitbucketError):
    """The connection's hourly request budget is spent and the caller asked not to wait."""
