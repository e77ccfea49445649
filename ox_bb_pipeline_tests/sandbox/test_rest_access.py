"""Errors and visibility over real HTTP: removed endpoints, missing credentials or scopes, and
what a non-admin member (bob) and a member of one workspace only (carol) may see.

Which repositories each account can reach is read from `sandbox.world.permission`.
"""

from __future__ import annotations

import pytest

from . import openapi
from .rest_helpers import NO_REPO_MESSAGE, Api, find_repo, first_workspace, repo_path

CHANGE_2770 = {
    "type": "error",
    "error": {
        "message": "CHANGE-2770 - Functionality has been deprecated",
        "detail": "Please read the changelog entry for more details.",
        "data": {"announcement_url": "https://developer.atlassian.com/cloud/bitbucket/changelog/#CHANGE-2770"},
    },
}


@pytest.mark.parametrize(
    "path", ["/workspaces", "/user/permissions/workspaces", "/user/permissions/repositories", "/repositories"]
)
def test_removed_cross_workspace_endpoints_answer_410(alice, path):
    body = alice.json(path, status=410)
    assert body == CHANGE_2770
    openapi.validate(body, "error")


@pytest.mark.parametrize(
    "suffix",
    [
        "branch-restrictions",
        "deploy-keys",
        "hooks",
        "pipelines_config",
        "permissions-config/users",
        "permissions-config/groups",
    ],
)
def test_a_member_without_admin_rights_gets_403_on_repository_settings(bob, world, ws, suffix):
    target = find_repo(world, lambda r: world.permission("bob", r) == "write", ws.slug)
    body = bob.json(f"{repo_path(target)}/{suffix}", status=403)
    openapi.validate(body, "error")
    assert body["error"]["message"] == "Access denied. You must have write or admin access."


@pytest.mark.parametrize("suffix", ["permissions/repositories", "hooks", "pipelines-config/variables"])
def test_a_member_without_admin_rights_gets_403_on_workspace_settings(bob, ws, suffix):
    message = bob.error(f"/workspaces/{ws.slug}/{suffix}", status=403)
    assert "administrator" in message


@pytest.mark.parametrize("suffix", ["", "/refs/branches", "/pullrequests", "/commits", "/src"])
def test_a_private_repository_without_a_grant_is_404(bob, world, suffix):
    hidden = find_repo(world, lambda r: r.is_private and world.permission("bob", r) == "none")
    body = bob.json(f"{repo_path(hidden)}{suffix}", status=404)
    openapi.validate(body, "error")
    assert body["error"]["message"] == NO_REPO_MESSAGE
    assert hidden.slug not in {r["slug"] for r in bob.values(f"/repositories/{hidden.workspace}")}


def test_a_member_reads_repositories_it_has_access_to(bob, world, ws):
    visible = find_repo(world, lambda r: world.permission("bob", r) != "none", ws.slug)
    assert bob.json(repo_path(visible))["full_name"] == visible.full_name


def test_carol_only_sees_the_first_workspace(carol, world):
    first = first_workspace(world)
    assert [v["workspace"]["slug"] for v in carol.values("/user/workspaces")] == [first]
    for other in sorted(world.workspaces)[1:]:
        carol.error(f"/workspaces/{other}", status=404)
        carol.error(f"/repositories/{other}", status=404)
    assert {r["slug"] for r in carol.values(f"/repositories/{first}")} == {
        r.slug for r in world.workspaces[first].repositories.values() if world.permission("carol", r) != "none"
    }


def test_missing_scopes_are_403_with_granted_and_required(carol, world, ws):
    target = find_repo(world, lambda r: world.permission("carol", r) != "none", ws.slug)
    body = carol.json(f"{repo_path(target)}/pullrequests", status=403)
    openapi.validate(body, "error")
    assert body["error"]["message"] == "Your credentials lack one or more required privilege scopes."
    assert body["error"]["detail"]["required"] == ["read:pullrequest:bitbucket"]
    assert "read:repository:bitbucket" in body["error"]["detail"]["granted"]


@pytest.mark.parametrize("auth", [("alice@example.com", "not-the-token"), None], ids=["bad-token", "anonymous"])
def test_bad_or_missing_credentials_are_401_with_a_basic_challenge(sandbox, auth):
    response = Api(sandbox, auth).get("/user")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="Bitbucket.org HTTP"'
    openapi.validate(response.json(), "error")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/repositories/{ws}", {"pagelen": 101}),
        ("/repositories/{ws}", {"q": "slug =="}),
        ("/repositories/{ws}", {"fields": "values.bad name"}),
    ],
)
def test_bad_requests_are_400_error_bodies(alice, ws, path, params):
    body = alice.json(path.format(ws=ws.slug), params, status=400)
    openapi.validate(body, "error")
    assert body["error"]["message"]
