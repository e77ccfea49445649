"""Step retries for the extract and scan stages: transient failures only, with backoff and jitter.

The Bitbucket client already retries every HTTP request (5xx, 429, dropped connections) with
backoff inside the step, so a step only fails on Bitbucket once those retries are spent, i.e. when
it has been degraded for a while. The step then waits minutes (1, 2, 4 ± jitter, so the
connections of one night do not retry in lockstep) before reading the connection again, and says so.
Errors another attempt cannot fix (a refused credential, a missing scope, an unknown connection, a
broken connections.yaml or repository glob, a host that refuses connections or is not Bitbucket)
fail at once instead: retrying them would only spend the connection's hourly request budget three
more times, or keep an operator waiting for minutes on a typo.
"""

import logging
import random
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from ..bitbucket.errors import (
    AuthenticationError,
    BitbucketError,
    EndpointGoneError,
    MissingScopeError,
    NotBitbucketError,
    NotFoundError,
    PermissionDeniedError,
    UnreachableError,
)

log = logging.getLogger(__name__)
STEP_RETRIES = 3
STEP_RETRY_DELAY = 60  # seconds before the first step retry; doubles each time
STEP_RETRY_POLICY = dg.RetryPolicy(
    max_retries=STEP_RETRIES, delay=STEP_RETRY_DELAY, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)  # for failures outside the Bitbucket client (a full disk, a bug); Bitbucket's own are handled below
# ConfigError is a ValueError; a KeyError: a partition whose connection left connections.yaml.
PERMANENT_ERRORS = (
    AuthenticationError,
    MissingScopeError,
    PermissionDeniedError,
    NotFoundError,
    EndpointGoneError,
    UnreachableError,
    NotBitbucketError,
    ValueError,
    KeyError,
)


def retry_delay(retry: int, rng: random.Random | None = None) -> int:
    """Seconds before step retry `retry` (1-based): 1, 2, 4 minutes ± 25 %."""
    return round(STEP_RETRY_DELAY * 2 ** (retry - 1) * (rng or random).uniform(0.75, 1.25))


@contextmanager
def no_retry_for_permanent_errors(context=None, delay=retry_delay) -> Iterator[None]:
    """Turn errors that would fail again into a `dg.Failure` that bypasses the retry policy; with the
    step's context, retry a transient Bitbucket error with a line saying when and which attempt."""
    try:
        yield
    except PERMANENT_ERRORS as exc:
        raise dg.Failure(description=f"{type(exc).__name__}: {exc}", allow_retries=False) from exc
    except BitbucketError as exc:
        retry = (context.retry_number if context is not None else STEP_RETRIES) + 1
        if retry > STEP_RETRIES:
            raise
        seconds = delay(retry)
        message = f"{exc}; retrying in {max(seconds / 60, 1):.0f} min (attempt {retry} of {STEP_RETRIES})"
        log.warning(message)  # `ox-bb run` shows this line; the Dagster UI shows the step log's
        context.log.warning(message)
        raise dg.RetryRequested(max_retries=STEP_RETRIES, seconds_to_wait=seconds) from exc
