"""Bitbucket Cloud client: auth methods, paging, retries, a request budget, git access (no Dagster)."""

from .client import BitbucketClient, RequestBudget
from .errors import (
    AuthenticationError,
    BitbucketError,
    EndpointGoneError,
    InvalidResponseError,
    MissingScopeError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
)

__all__ = [
    "BitbucketClient",
    "RequestBudget",
    "BitbucketError",
    "AuthenticationError",
    "MissingScopeError",
    "PermissionDeniedError",
    "NotFoundError",
    "EndpointGoneError",
    "RateLimitedError",
    "ServerError",
    "InvalidResponseError",
]
