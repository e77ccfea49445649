"""Every Bitbucket Cloud REST endpoint the extractor and `verify` call, declared once: its path, how it
pages, the partial-response `fields` selector it is read with, the fields of each answer the extractor
relies on, the permission it needs (API-token scope, legacy OAuth / access-token scope, admin rights)
and the raw table it feeds (bitbucket/tables.py).

The extractor (extract.py) builds its requests from here, `verify` (capabilities.py) probes the
scopes named here, and a contract test calls every endpoint on the sandbox and checks that each answer
has the declared fields. A changed Bitbucket answer then fails one test naming the endpoint and field.

Paths use `{ws}`, `{repo}` and `{environment}` (a deployment environment's uuid, URL-quoted by the caller).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Bitbucket's permission names: scope key -> (API-token scope, legacy OAuth consumer / access-token scope)
SCOPES: dict[str, tuple[str, str]] = {
    "account": ("read:user:bitbucket", "account"),
    "workspace": ("read:workspace:bitbucket", "account"),
    "project": ("read:project:bitbucket", "project"),
    "repository": ("read:repository:bitbucket", "repository"),
    "repository:admin": ("admin:repository:bitbucket", "repository:admin"),
    "pullrequest": ("read:pullrequest:bitbucket", "pullrequest"),
    "pipeline": ("read:pipeline:bitbucket", "pipeline"),
    "webhook": ("read:webhook:bitbucket", "webhook"),
}

REPO_FIELDS = (
    "next,values.uuid,values.slug,values.full_name,values.name,values.project.key,values.project.name,"
    "values.mainbranch.name,values.is_private,values.fork_policy,values.language,values.size,"
    "values.created_on,values.updated_on,values.links.clone,values.parent.full_name"
)
PR_FIELDS = (
    "next,values.id,values.title,values.state,values.author.nickname,values.source.branch.name,"
    "values.source.commit.hash,values.destination.branch.name,values.destination.commit.hash,"
    "values.merge_commit.hash,values.closed_by.nickname,values.comment_count,values.task_count,"
    "values.created_on,values.updated_on,+values.participants,+values.reviewers"
)
BRANCH_FIELDS = "next,values.name,values.target.hash,values.target.date"


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str  # under /2.0, with {ws}, {repo}, {environment}
    table: str | None  # the raw table it feeds (None: verify only)
    scope: str  # key of SCOPES
    paging: Literal["pages", "first_page", "single"] = "pages"  # every page | the newest page only | one object
    pagelen: int | None = 100  # page size asked for (Bitbucket's maximum for the endpoint)
    fields: str | None = None  # partial-response selector sent as `fields`
    answer: tuple[str, ...] = ()  # dotted keys every value (or the object) has; the extractor reads them
    access: Literal["read", "admin", "ws_member", "ws_admin"] = "read"  # the caller's rights it needs
    needs_pipelines: bool = False  # called only for repositories with a bitbucket-pipelines.yml

    def url(self, **values: str) -> str:
        return self.path.format(**values)

    @property
    def api_token_scope(self) -> str:
        return SCOPES[self.scope][0]

    @property
    def legacy_scope(self) -> str:
        return SCOPES[self.scope][1]

    @property
    def params(self) -> dict:
        """The query parameters it is always read with (paging aside)."""
        return {"fields": self.fields} if self.fields else {}


REPO = "/repositories/{ws}/{repo}"
# fmt: off
ENDPOINTS: dict[str, Endpoint] = {e.name: e for e in (
    # -- the caller and its workspaces
    Endpoint("user", "/user", None, "account", "single", None, answer=("uuid", "nickname", "display_name")),
    Endpoint("user_workspaces", "/user/workspaces", "workspaces", "workspace",
             answer=("workspace.slug", "administrator")),
    Endpoint("workspace", "/workspaces/{ws}", "workspaces", "workspace", "single", None, access="ws_member",
             answer=("uuid", "name", "is_private", "forking_mode", "created_on")),
    # -- workspace listings (one paged read for all repositories)
    Endpoint("projects", "/workspaces/{ws}/projects", "projects", "project", access="ws_member",
             answer=("uuid", "key", "name", "is_private", "has_publicly_visible_repos", "created_on",
                     "updated_on")),
    Endpoint("repositories", "/repositories/{ws}", "repositories", "repository", fields=REPO_FIELDS,
             access="ws_member",
             answer=("uuid", "slug", "full_name", "name", "project.key", "project.name", "mainbranch.name",
                     "is_private", "fork_policy", "language", "size", "created_on", "updated_on", "links.clone")),
    Endpoint("workspace_hooks", "/workspaces/{ws}/hooks", "webhooks", "webhook", access="ws_admin",
             answer=("uuid", "url", "description", "events", "active", "created_at")),
    Endpoint("workspace_variables", "/workspaces/{ws}/pipelines-config/variables", "pipeline_variables",
             "pipeline", access="ws_admin", answer=("uuid", "key", "secured")),
    Endpoint("repository_permissions", "/workspaces/{ws}/permissions/repositories", "repository_permissions",
             "workspace", access="ws_admin",
             answer=("repository.full_name", "user.uuid", "user.nickname", "permission")),
    # -- per repository, when it changed
    Endpoint("branches", REPO + "/refs/branches", "branches", "repository", fields=BRANCH_FIELDS,
             answer=("name", "target.hash", "target.date")),
    Endpoint("pull_requests", REPO + "/pullrequests", "pull_requests", "pullrequest", pagelen=50,
             fields=PR_FIELDS,
             answer=("id", "title", "state", "author.nickname", "source.branch.name", "destination.branch.name",
                     "comment_count", "task_count", "created_on", "updated_on", "participants", "reviewers")),
    Endpoint("pipelines_config", REPO + "/pipelines_config", "pipeline_configs", "repository:admin", "single",
             None, access="admin", needs_pipelines=True, answer=("enabled",)),
    Endpoint("pipeline_runs", REPO + "/pipelines", "pipeline_runs", "pipeline", "first_page", None,
             needs_pipelines=True, answer=("uuid", "build_number", "target.type", "state.name", "created_on")),
    Endpoint("environments", REPO + "/environments", "environments", "pipeline", needs_pipelines=True,
             answer=("uuid", "name", "environment_type.name", "rank")),
    # -- per repository settings, on a cadence
    Endpoint("branch_restrictions", REPO + "/branch-restrictions", "branch_restrictions", "repository:admin",
             access="admin", answer=("id", "kind", "branch_match_kind", "users", "groups")),
    Endpoint("branching_model", REPO + "/branching-model", "branching_models", "repository", "single", None,
             answer=("development", "branch_types")),
    Endpoint("default_reviewers", REPO + "/default-reviewers", "default_reviewers", "pullrequest",
             answer=("uuid", "nickname", "display_name")),
    Endpoint("deploy_keys", REPO + "/deploy-keys", "deploy_keys", "repository:admin", access="admin",
             answer=("id", "label", "key")),
    Endpoint("repository_hooks", REPO + "/hooks", "webhooks", "webhook", access="admin",
             answer=("uuid", "url", "events", "active")),
    Endpoint("repository_variables", REPO + "/pipelines_config/variables", "pipeline_variables", "pipeline",
             access="admin", needs_pipelines=True, answer=("uuid", "key", "secured")),
    Endpoint("deployment_variables", REPO + "/deployments_config/environments/{environment}/variables",
             "pipeline_variables", "pipeline", access="admin", needs_pipelines=True,
             answer=("uuid", "key", "secured")),
)}
# fmt: on


def endpoint(name: str) -> Endpoint:
    if name not in ENDPOINTS:
        raise KeyError(f"no Bitbucket endpoint {name!r} in bitbucket/catalog.py; known: {', '.join(ENDPOINTS)}")
    return ENDPOINTS[name]


def missing_fields(answer: dict, declared: tuple[str, ...]) -> list[str]:
    """The declared dotted keys absent from one answer object (a null value counts as present; a null
    parent object hides its children, which then count as absent)."""
    missing = []
    for key in declared:
        node = answer
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                missing.append(key)
                break
            node = node[part]
    return missing
