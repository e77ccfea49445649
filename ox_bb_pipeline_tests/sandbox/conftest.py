"""Fixtures shared by the sandbox REST tests: the session sandbox's world and its seeded callers."""

from __future__ import annotations

import pytest

from .rest_helpers import Api, first_workspace


@pytest.fixture(scope="module")
def world(sandbox):
    return sandbox.world


@pytest.fixture(scope="module")
def ws(world):
    """The first workspace: every seeded account is a member of it."""
    return world.workspaces[first_workspace(world)]


@pytest.fixture(scope="module")
def alice(sandbox, creds):
    """The workspace owner (API token with every scope)."""
    return Api(sandbox, creds.token("alice-admin"))


@pytest.fixture(scope="module")
def bob(sandbox, creds):
    """A member without administrator rights."""
    return Api(sandbox, creds.token("bob-member"))


@pytest.fixture(scope="module")
def carol(sandbox, creds):
    """A member whose token lacks most scopes."""
    return Api(sandbox, creds.token("carol-limited"))
