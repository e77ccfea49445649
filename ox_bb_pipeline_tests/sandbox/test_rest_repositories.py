"""The sandbox's REST 2.0 read endpoints over real HTTP, as an administrator sees them: identity
and workspaces, repositories, refs, settings, commits, source, pipelines, and their schemas.

Expected answers come from `sandbox.world` (the generated state) and from git itself, never
from hard-coded values. Pull requests and write routes are in test_rest_pullrequests.py;
paging, `fields` and BBQL in test_rest_paging.py; errors and who may see what in
test_rest_access.py.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

import pytest
import yaml

from . import openapi
from .rest_helpers import Api, find_repo, git, git_lines, repo_path


@pytest.fixture(scope="module")
def repo(world, ws):
    """A repository of the first workspace with pipelines, an unsecured variable, hooks and a deploy key."""
    return find_repo(
        world,
        lambda r: (
            r.pipelines
            and any(not v.secured for v in r.variables)
            and any(v.secured for v in r.variables)
            and r.hooks
            and r.deploy_keys
        ),
        ws.slug,
    )


@pytest.fixture(scope="module")
def main_head(repo):
    return dict(repo.git.branches())[repo.mainbranch]


SCHEMAS = [
    "account",
    "branch",
    "branching_model",
    "branchrestriction",
    "commit",
    "commit_file",
    "deploy_key",
    "error",
    "paginated_branches",
    "paginated_branchrestrictions",
    "paginated_deploy_keys",
    "paginated_environments",
    "paginated_pipeline_variables",
    "paginated_pipelines",
    "paginated_projects",
    "paginated_pullrequests",
    "paginated_repositories",
    "paginated_repository_permissions",
    "paginated_tags",
    "paginated_treeentries",
    "paginated_users",
    "participant",
    "pipeline_variable",
    "pipelines_config",
    "project",
    "pullrequest",
    "repository",
    "webhook_subscription",
]


def test_the_schemas_these_tests_use_are_in_the_stored_spec():
    stored = yaml.safe_load(openapi.SPEC.read_text())["components"]["schemas"]
    assert [name for name in SCHEMAS if name not in stored] == []


# -- identity and workspaces ------------------------------------------------------------------
def test_user_is_the_account_behind_the_api_token(alice, world):
    body = alice.json("/user")
    user = world.users["alice"]
    assert (body["username"], body["nickname"], body["display_name"]) == ("alice", "alice", user.display_name)
    assert (body["uuid"], body["account_id"]) == (user.uuid, user.account_id)
    assert body["account_status"] == "active" and body["is_staff"] is False
    assert "has_2fa_enabled" in body and datetime.fromisoformat(body["created_on"]) == user.created_on
    openapi.validate(body, "account")


def test_user_workspaces_lists_workspace_access_items_without_names(alice, world):
    values = alice.json("/user/workspaces")["values"]
    assert [v["workspace"]["slug"] for v in values] == sorted(
        w for w, x in world.workspaces.items() if "alice" in x.members
    )
    for item in values:
        assert item["type"] == "workspace_access" and item["administrator"] is True
        workspace = item["workspace"]
        assert workspace["type"] == "workspace_base" and "name" not in workspace
        assert workspace["uuid"] == world.workspaces[workspace["slug"]].uuid
        assert workspace["links"]["self"]["href"].endswith(f"/2.0/workspaces/{workspace['slug']}")


@pytest.mark.parametrize(("sort", "reverse"), [("slug", False), ("-slug", True)])
def test_user_workspaces_sorts_by_slug(alice, world, sort, reverse):
    slugs = [v["workspace"]["slug"] for v in alice.json("/user/workspaces", {"sort": sort})["values"]]
    assert slugs == sorted(world.workspaces, reverse=reverse)


@pytest.mark.parametrize(
    ("who", "administrator"), [("alice", "true"), ("alice", "false"), ("bob", "true"), ("bob", "false")]
)
def test_user_workspaces_filters_on_administrator(sandbox, creds, world, who, administrator):
    api = Api(sandbox, creds.token({"alice": "alice-admin", "bob": "bob-member"}[who]))
    values = api.json("/user/workspaces", {"administrator": administrator})["values"]
    wanted = administrator == "true"
    assert [v["workspace"]["slug"] for v in values] == sorted(
        slug for slug, w in world.workspaces.items() if who in w.members and w.is_admin(who) == wanted
    )
    assert all(v["administrator"] is wanted for v in values)


def test_user_workspaces_rejects_sorting_on_workspace_slug(alice):
    assert "workspace.slug" in alice.error("/user/workspaces", {"sort": "workspace.slug"}, status=400)


def test_workspace_detail_carries_the_name_the_listing_lacks(alice, ws):
    body = alice.json(f"/workspaces/{ws.slug}")
    assert (body["type"], body["slug"], body["uuid"], body["name"]) == ("workspace", ws.slug, ws.uuid, ws.name)
    assert body["is_private"] is ws.is_private and isinstance(body["is_privacy_enforced"], bool)
    assert body["forking_mode"] in ("allow_forks", "internal_only")
    assert datetime.fromisoformat(body["created_on"]) == ws.created_on


def test_workspace_answers_to_its_uuid_too(alice, ws):
    assert alice.json(f"/workspaces/{quote(ws.uuid)}")["slug"] == ws.slug


def test_projects_list_every_project_with_visibility_flags(alice, ws):
    page = alice.json(f"/workspaces/{ws.slug}/projects")
    openapi.validate(page, "paginated_projects")
    assert [p["key"] for p in page["values"]] == sorted(ws.projects)
    for item in page["values"]:
        project = ws.projects[item["key"]]
        assert (item["uuid"], item["name"], item["is_private"]) == (project.uuid, project.name, project.is_private)
        assert item["has_publicly_visible_repos"] == any(
            not r.is_private for r in ws.repositories.values() if r.project_key == project.key
        )
        assert datetime.fromisoformat(item["updated_on"]) == project.updated_on
    detail = alice.json(f"/workspaces/{ws.slug}/projects/{page['values'][0]['key']}")
    openapi.validate(detail, "project")


def test_members_are_workspace_memberships(alice, ws):
    values = alice.values(f"/workspaces/{ws.slug}/members")
    assert [v["user"]["nickname"] for v in values] == sorted(ws.members)
    assert {v["type"] for v in values} == {"workspace_membership"}
    assert {v["workspace"]["slug"] for v in values} == {ws.slug}


def test_repository_permissions_give_each_users_effective_level(alice, world, ws):
    values = alice.values(f"/workspaces/{ws.slug}/permissions/repositories")
    openapi.validate({"values": values}, "paginated_repository_permissions")
    seen = {(v["repository"]["full_name"], v["user"]["nickname"]): v["permission"] for v in values}
    for r in ws.repositories.values():
        for username in ws.members:
            level = world.permission(username, r)
            assert seen.get((r.full_name, username)) == (None if level == "none" else level)
    assert {v["type"] for v in values} == {"repository_permission"}


def test_workspace_variables_hide_secured_values(alice, ws):
    values = alice.values(f"/workspaces/{ws.slug}/pipelines-config/variables")
    assert [v["key"] for v in values] == [v.key for v in ws.variables]
    for item, variable in zip(values, ws.variables):
        openapi.validate(item, "pipeline_variable")
        assert item["secured"] is variable.secured
        assert item.get("value") == (None if variable.secured else variable.value)


def test_workspace_hooks_never_return_the_secret(alice, ws):
    values = alice.values(f"/workspaces/{ws.slug}/hooks")
    assert [(v["url"], v["events"], v["secret_set"]) for v in values] == [
        (h.url, h.events, h.secret_set) for h in ws.hooks
    ]
    assert all(v["subject_type"] == "workspace" and "secret" not in v for v in values)


# -- repositories --------------------------------------------------------------------------------
def test_repository_list_has_every_repository_of_the_workspace(alice, ws):
    page = alice.json(f"/repositories/{ws.slug}", {"pagelen": 100})
    openapi.validate(page, "paginated_repositories")
    assert [r["slug"] for r in page["values"]] == sorted(ws.repositories)
    assert page["size"] == len(ws.repositories)


@pytest.mark.parametrize(
    ("role", "at_least"), [("member", "read"), ("contributor", "write"), ("admin", "admin"), ("owner", "admin")]
)
def test_repository_list_role_keeps_repositories_where_the_caller_has_that_access(bob, world, ws, role, at_least):
    order = ["none", "read", "write", "admin"]
    slugs = [r["slug"] for r in bob.values(f"/repositories/{ws.slug}", {"role": role})]
    assert slugs == sorted(
        r.slug for r in ws.repositories.values() if order.index(world.permission("bob", r)) >= order.index(at_least)
    )


def test_repository_detail(alice, world, repo):
    body = alice.json(repo_path(repo))
    openapi.validate(body, "repository")
    assert (body["full_name"], body["slug"], body["uuid"]) == (repo.full_name, repo.slug, repo.uuid)
    assert (body["is_private"], body["fork_policy"], body["scm"]) == (repo.is_private, repo.fork_policy, "git")
    assert body["mainbranch"] == {"type": "branch", "name": repo.mainbranch}
    assert body["project"]["key"] == repo.project_key and body["workspace"]["slug"] == repo.workspace
    clone = {c["name"]: c["href"] for c in body["links"]["clone"]}
    assert clone["https"].endswith(f"@127.0.0.1:{alice.server.port}/{repo.full_name}.git")
    assert clone["ssh"] == f"git@127.0.0.1:{repo.full_name}.git"


def test_repository_answers_to_percent_encoded_uuids(alice, world, repo):
    ws_uuid = world.workspaces[repo.workspace].uuid
    assert alice.json(f"/repositories/{quote(ws_uuid)}/{quote(repo.uuid)}")["full_name"] == repo.full_name


# -- refs -----------------------------------------------------------------------------------------
def test_branches_list_every_branch_with_its_head_commit(alice, repo):
    page = alice.json(f"{repo_path(repo)}/refs/branches", {"pagelen": 100})
    openapi.validate(page, "paginated_branches")
    assert {b["name"]: b["target"]["hash"] for b in page["values"]} == dict(repo.git.branches())
    for branch in page["values"]:
        assert branch["type"] == "branch" and branch["default_merge_strategy"] in branch["merge_strategies"]
        assert {"hash", "date", "author", "message", "parents"} <= set(branch["target"])


@pytest.mark.parametrize("encode", [False, True], ids=["raw-slash", "percent-encoded-slash"])
def test_a_branch_whose_name_has_a_slash(alice, repo, encode):
    name = next(n for n, _ in repo.git.branches() if "/" in n)
    body = alice.json(f"{repo_path(repo)}/refs/branches/{quote(name, safe='' if encode else '/')}")
    openapi.validate(body, "branch")
    assert (body["name"], body["target"]["hash"]) == (name, dict(repo.git.branches())[name])


def test_an_unknown_branch_is_404(alice, repo):
    alice.error(f"{repo_path(repo)}/refs/branches/no-such-branch", status=404)


def test_tags_are_listed_like_branches(alice, repo):
    page = alice.json(f"{repo_path(repo)}/refs/tags")
    openapi.validate(page, "paginated_tags")
    assert {t["name"]: t["target"]["hash"] for t in page["values"]} == dict(repo.git.tags())


# -- repository settings ----------------------------------------------------------------------------
def test_branch_restrictions_list_every_rule(alice, ws):
    """Every posture variant of the first workspace: none, weak, branching-model and strong."""
    for target in ws.repositories.values():
        page = alice.json(f"{repo_path(target)}/branch-restrictions", {"pagelen": 100})
        openapi.validate(page, "paginated_branchrestrictions")
        assert [(r["id"], r["kind"], r["value"]) for r in page["values"]] == [
            (r["id"], r["kind"], r.get("value")) for r in target.branch_restrictions
        ]
        for rule in page["values"]:
            openapi.validate(rule, "branchrestriction")
            assert rule["type"] == "branchrestriction"
            assert isinstance(rule["users"], list) and isinstance(rule["groups"], list)


@pytest.mark.parametrize("kind", ["push", "require_approvals_to_merge", "force"])
def test_branch_restrictions_filter_on_kind(alice, world, kind):
    target = find_repo(world, lambda r: any(x["kind"] == kind for x in r.branch_restrictions))
    values = alice.values(f"{repo_path(target)}/branch-restrictions", {"kind": kind})
    assert [v["id"] for v in values] == [r["id"] for r in target.branch_restrictions if r["kind"] == kind]
    assert values


def test_branching_model_rules_name_a_branch_type_instead_of_a_pattern(alice, world):
    target = find_repo(
        world, lambda r: any(x.get("branch_match_kind") == "branching_model" for x in r.branch_restrictions)
    )
    for rule in alice.values(f"{repo_path(target)}/branch-restrictions"):
        assert rule["branch_match_kind"] == "branching_model"
        assert rule["branch_type"] == "production" and not rule["pattern"]


def test_branching_model(alice, repo, main_head):
    body = alice.json(f"{repo_path(repo)}/branching-model")
    openapi.validate(body, "branching_model")
    assert body["development"]["use_mainbranch"] is True
    assert body["development"]["branch"]["name"] == repo.mainbranch
    assert body["development"]["branch"]["target"]["hash"] == main_head
    assert {(t["kind"], t["prefix"]) for t in body["branch_types"]} == set(repo.branching_model["branch_types"].items())


def test_branching_model_names_the_production_branch_when_set(alice, world):
    target = find_repo(world, lambda r: r.branching_model.get("production"))
    body = alice.json(f"{repo_path(target)}/branching-model")
    assert body["production"]["name"] == target.branching_model["production"]
    assert body["production"]["use_mainbranch"] is False


def test_default_reviewers_are_paginated_users(alice, world):
    target = find_repo(world, lambda r: r.default_reviewers)
    page = alice.json(f"{repo_path(target)}/default-reviewers")
    openapi.validate(page, "paginated_users")
    assert [u["nickname"] for u in page["values"]] == target.default_reviewers


def test_deploy_keys(alice, repo):
    page = alice.json(f"{repo_path(repo)}/deploy-keys")
    openapi.validate(page, "paginated_deploy_keys")
    assert [(k["id"], k["key"], k["label"]) for k in page["values"]] == [
        (k.id, k.key, k.label) for k in repo.deploy_keys
    ]
    for item, key in zip(page["values"], repo.deploy_keys):
        openapi.validate(item, "deploy_key")
        assert datetime.fromisoformat(item["last_used"]) == key.last_used
        assert item["repository"]["full_name"] == repo.full_name


def test_repository_hooks_never_return_the_secret(alice, repo):
    values = alice.values(f"{repo_path(repo)}/hooks")
    assert [(v["url"], v["events"], v["active"], v["secret_set"], v["skip_cert_verification"]) for v in values] == [
        (h.url, h.events, h.active, h.secret_set, h.skip_cert_verification) for h in repo.hooks
    ]
    for item in values:
        openapi.validate(item, "webhook_subscription")
        assert item["subject_type"] == "repository" and "secret" not in item


def test_permissions_config_lists_explicit_grants_only(alice, world, repo):
    users = alice.values(f"{repo_path(repo)}/permissions-config/users")
    assert {u["user"]["nickname"]: u["permission"] for u in users} == repo.user_permissions
    assert {u["type"] for u in users} == {"repository_user_permission"}
    groups = alice.values(f"{repo_path(repo)}/permissions-config/groups")
    assert {g["group"]["slug"]: g["permission"] for g in groups} == repo.group_permissions
    assert {g["type"] for g in groups} == {"repository_group_permission"}


# -- commits ----------------------------------------------------------------------------------------
def test_commits_of_a_branch_come_newest_first(alice, repo, main_head):
    values = alice.values(f"{repo_path(repo)}/commits/{repo.mainbranch}")
    hashes = [c["hash"] for c in values]
    assert hashes[0] == main_head
    assert sorted(hashes) == sorted(git_lines(repo, "rev-list", repo.mainbranch))
    position = {h: i for i, h in enumerate(hashes)}
    assert all(position[p["hash"]] > position[c["hash"]] for c in values for p in c["parents"])
    dates = [datetime.fromisoformat(c["date"]) for c in values]
    assert dates == sorted(dates, reverse=True)


def test_commits_without_a_revision_cover_every_branch(alice, repo):
    hashes = [c["hash"] for c in alice.values(f"{repo_path(repo)}/commits")]
    assert len(hashes) == len(set(hashes))
    assert set(hashes) == set(git_lines(repo, "rev-list", "--all"))


@pytest.mark.parametrize("style", ["include-param", "revision-path"])
def test_commits_include_and_exclude(alice, repo, style):
    feature = next(pr.source_branch for pr in repo.pull_requests if pr.state == "OPEN")
    if style == "include-param":
        values = alice.values(f"{repo_path(repo)}/commits", {"include": feature, "exclude": repo.mainbranch})
    else:
        values = alice.values(f"{repo_path(repo)}/commits/{feature}", {"exclude": repo.mainbranch})
    assert [c["hash"] for c in values] == git_lines(repo, "rev-list", feature, f"^{repo.mainbranch}")
    assert values


def test_commit_detail_matches_git(alice, repo, main_head):
    body = alice.json(f"{repo_path(repo)}/commit/{main_head}")
    openapi.validate(body, "commit")
    sha, parents, author, date, message = (
        git(repo, "show", "-s", "--format=%H%x00%P%x00%an <%ae>%x00%aI%x00%B", main_head).decode().split("\0")
    )
    assert body["hash"] == sha and [p["hash"] for p in body["parents"]] == parents.split()
    assert body["author"]["raw"] == author and body["author"]["user"]["type"] == "user"
    assert datetime.fromisoformat(body["date"]) == datetime.fromisoformat(date)
    assert body["message"].strip() == message.strip()


def test_an_unknown_commit_is_404(alice, repo):
    alice.error(f"{repo_path(repo)}/commit/{'0' * 40}", status=404)


# -- source ---------------------------------------------------------------------------------------------
def test_src_file_is_the_raw_bytes_git_has(alice, repo, main_head):
    nested = next(p for p in git(repo, "ls-tree", "-r", "--name-only", main_head).decode().splitlines() if "/" in p)
    for path in ("README.md", nested):
        response = alice.get(f"{repo_path(repo)}/src/{main_head}/{path}")
        assert response.status_code == 200
        assert response.content == git(repo, "show", f"{main_head}:{path}")
    assert alice.get(f"{repo_path(repo)}/src/{main_head}/README.md").headers["Content-Type"].startswith("text/markdown")


def test_src_file_meta_describes_the_file(alice, repo, main_head):
    body = alice.json(f"{repo_path(repo)}/src/{main_head}/README.md", {"format": "meta"})
    assert (body["type"], body["path"], body["commit"]["hash"]) == ("commit_file", "README.md", main_head)
    assert body["size"] == len(git(repo, "show", f"{main_head}:README.md"))
    assert isinstance(body["attributes"], list) and body["links"]["meta"]["href"].endswith("?format=meta")
    # The stored spec types `attributes` as one string; Bitbucket (and the reference) send a list.
    openapi.validate({k: v for k, v in body.items() if k != "attributes"}, "commit_file")


def _tree(repo, sha: str, path: str = "") -> dict[str, str]:
    """{path: "commit_file" | "commit_directory"} of one directory level, from git ls-tree."""
    out = git(repo, "ls-tree", f"{sha}:{path}" if path else sha).decode().splitlines()
    prefix = f"{path}/" if path else ""
    return {
        prefix + line.split("\t", 1)[1]: "commit_directory" if line.split()[1] == "tree" else "commit_file"
        for line in out
    }


def test_src_root_lists_the_top_level_entries(alice, repo, main_head):
    page = alice.json(f"{repo_path(repo)}/src/{main_head}/", {"pagelen": 100})
    openapi.validate(page, "paginated_treeentries")
    assert {v["path"]: v["type"] for v in page["values"]} == _tree(repo, main_head)
    assert all(v["commit"]["hash"] == main_head for v in page["values"])


def test_src_directory_lists_files_and_directories(alice, repo, main_head):
    directory = next(p for p, kind in _tree(repo, main_head).items() if kind == "commit_directory")
    values = alice.values(f"{repo_path(repo)}/src/{main_head}/{directory}")
    assert {v["path"]: v["type"] for v in values} == _tree(repo, main_head, directory)
    for entry in values:
        href = entry["links"]["self"]["href"]
        assert href.endswith(f"/src/{main_head}/{entry['path']}" + ("/" if entry["type"] == "commit_directory" else ""))
    meta = alice.json(f"{repo_path(repo)}/src/{main_head}/{directory}", {"format": "meta"})
    assert (meta["type"], meta["path"]) == ("commit_directory", directory)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_src_max_depth_recurses_breadth_first(alice, repo, main_head, depth):
    values = alice.values(f"{repo_path(repo)}/src/{main_head}/", {"max_depth": depth})
    everything = git(repo, "ls-tree", "-r", "-t", "--name-only", main_head).decode().splitlines()
    assert sorted(v["path"] for v in values) == sorted(p for p in everything if p.count("/") < depth)
    levels = [v["path"].count("/") for v in values]
    assert levels == sorted(levels)


def test_src_without_a_commit_redirects_to_the_main_branch_root(alice, repo, main_head):
    response = alice.get(f"{repo_path(repo)}/src")
    assert response.status_code in (301, 302)
    location = response.headers["Location"]
    assert location.endswith(f"{repo_path(repo)}/src/{main_head}/")
    assert {v["path"] for v in alice.values(location)} == set(_tree(repo, main_head))


def test_src_of_a_missing_path_is_404(alice, repo, main_head):
    alice.error(f"{repo_path(repo)}/src/{main_head}/no/such/file.txt", status=404)


# -- pipelines ------------------------------------------------------------------------------------------
def test_pipelines_config(alice, repo):
    body = alice.json(f"{repo_path(repo)}/pipelines_config")
    openapi.validate(body, "pipelines_config")
    assert body["type"] == "repository_pipelines_configuration" and body["enabled"] is repo.pipelines_enabled
    assert body["repository"]["full_name"] == repo.full_name


def test_pipeline_variables_have_no_value_when_secured(alice, repo):
    page = alice.json(f"{repo_path(repo)}/pipelines_config/variables")
    openapi.validate(page, "paginated_pipeline_variables")
    assert [(v["key"], v["secured"]) for v in page["values"]] == [(v.key, v.secured) for v in repo.variables]
    for item, variable in zip(page["values"], repo.variables):
        openapi.validate(item, "pipeline_variable")
        if variable.secured:
            assert not item.get("value")
        else:
            assert item["value"] == variable.value


def test_pipelines_sorted_newest_first(alice, repo):
    page = alice.json(f"{repo_path(repo)}/pipelines", {"sort": "-created_on", "pagelen": 100})
    openapi.validate(page, "paginated_pipelines")
    created = [datetime.fromisoformat(p["created_on"]) for p in page["values"]]
    assert created == sorted((r.created_on for r in repo.pipelines), reverse=True)
    for item in page["values"]:
        assert item["state"]["name"] in ("COMPLETED", "IN_PROGRESS", "PENDING")
        assert item["target"]["type"] in ("pipeline_ref_target", "pipeline_pullrequest_target")
        assert item["trigger"]["type"].startswith("pipeline_trigger_")
        if item["state"]["name"] == "COMPLETED":
            result = item["state"]["result"]
            assert result["type"] == f"pipeline_state_completed_{result['name'].lower()}"


def test_environments(alice, repo):
    page = alice.json(f"{repo_path(repo)}/environments")
    openapi.validate(page, "paginated_environments")
    assert [(e["name"], e["environment_type"]["name"], e["uuid"]) for e in page["values"]] == [
        (e.name, e.environment_type, e.uuid) for e in repo.environments
    ]
