"""Step retries for the extract and scan stages: transient failures only, with backoff and jitter.

The Bitbucket client already retries every HTTP request (5xx, 429, dropped connections) with
backoff inside the step, so a step only fails on Bitbucket once those retries are spent, i.e. when
it has been degraded for a while. The step policy then waits minutes (1, 2, 4 ± jitter, so the
connections of one night do not retry in lockstep) before reading the connection again. Errors
another attempt cannot fix (a refused credential, a missing scope, an unknown connection, a
broken connections.yaml or repository glob) fail at once instead: retrying them would only spend
the connection's hourly request budget three more times.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from ...bitbucket.errors import (
    AuthenticationError,
    EndpointGoneError,
    MissingScopeError,
    NotFoundError,
    PermissionDeniedError,
)

STEP_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=60, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
# ConfigError is a ValueError; a KeyError: a partition whose connection left connections.yaml.
PERMANENT_ERRORS = (
    AuthenticationError,
    MissingScopeError,
    PermissionDeniedError,
    NotFoundError,
    EndpointGoneError,
    ValueError,
    KeyError,
)


@contextmanager
def no_retry_for_permanent_errors() -> Iterator[None]:
    """Turn errors that would fail again into a `dg.Failure` that bypasses the retry policy."""
    try:
        yield
    except PERMANENT_ERRORS as exc:
        raise dg.Failure(description=f"{type(exc).__name__}: {exc}", allow_retries=False) from exc
