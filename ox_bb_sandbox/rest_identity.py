"""REST: the caller, workspaces, projects, members, workspace permissions, hooks and variables."""

from __future__ import annotations

from urllib.parse import quote

from . import serializers as s
from .app import ApiError, Page, RequestContext, route

CHANGE_2770 = {
    "message": "CHANGE-2770 - Functionality has been deprecated",
    "detail": "Please read the changelog entry for more details.",
    "data": {"announcement_url": "https://developer.atlassian.com/cloud/bitbucket/changelog/#CHANGE-2770"},
}


def _gone(ctx: RequestContext, **_) -> None:
    raise ApiError(410, CHANGE_2770["message"], detail=CHANGE_2770["detail"], data=CHANGE_2770["data"])


# The cross-workspace listings removed in 2026 (CHANGE-2770); /user/workspaces replaces them.
for _template in ("/workspaces", "/user/permissions/workspaces", "/user/permissions/repositories", "/repositories"):
    route(_template, scope=None)(_gone)


@route("/user", scope="account", token_allowed=False)
def current_user(ctx: RequestContext) -> dict:
    return s.user_full(ctx.urls, ctx.world.users[ctx.identity.username])


def _visible_workspaces(ctx: RequestContext):
    ident = ctx.identity
    for ws in sorted(ctx.world.workspaces.values(), key=lambda w: w.slug):
        if ident.username in ws.members:
            yield ws


@route("/user/workspaces", scope="workspace", token_allowed=False)
def user_workspaces(ctx: RequestContext) -> Page:
    """The 2026 replacement listing: `workspace_access` items, no names, `sort=slug` only."""
    sort = ctx.request.args.get("sort")
    if sort not in (None, "slug", "-slug"):
        raise ApiError(400, f'Invalid sort field: "{sort}"')
    admin_filter = ctx.request.args.get("administrator")
    items = []
    for ws in _visible_workspaces(ctx):
        admin = ws.is_admin(ctx.identity.username)
        if admin_filter is not None and admin != (admin_filter.lower() == "true"):
            continue
        items.append(
            {
                "type": "workspace_access",
                "administrator": admin,
                "workspace": s.workspace_base(ctx.urls, ws),
                "links": {"self": ctx.urls.link(f"/user/workspaces/{ws.slug}/permission")},
            }
        )
    if sort == "-slug":
        items.reverse()
    return Page(items, presorted=True)


@route("/user/workspaces/{workspace}/permission", scope="workspace", token_allowed=False)
def user_workspace_permission(ctx: RequestContext, workspace: str) -> dict:
    ws = ctx.workspace(workspace)
    role = ws.members[ctx.identity.username]
    return {
        "type": "workspace_membership",
        "permission": "owner" if role == "owner" else "member",
        "user": s.user_summary(ctx.urls, ctx.world.users[ctx.identity.username]),
        "workspace": s.workspace_summary(ctx.urls, ws),
    }


@route("/workspaces/{workspace}", scope="workspace", access="ws_member")
def workspace(ctx: RequestContext, workspace: str) -> dict:
    return s.workspace_full(ctx.urls, ctx.workspace(workspace))


@route(
    "/workspaces/{workspace}/members",
    scope="workspace",
    access="ws_member",
    filterable=("user.nickname", "user.display_name", "user.uuid"),
)
def members(ctx: RequestContext, workspace: str) -> Page:
    ws = ctx.workspace(workspace)
    return Page(
        [
            {
                "type": "workspace_membership",
                "user": s.user_summary(ctx.urls, ctx.world.users[u]),
                "workspace": s.workspace_summary(ctx.urls, ws),
                "links": {"self": ctx.urls.link(f"/workspaces/{ws.slug}/members/{quote(ctx.world.users[u].uuid)}")},
            }
            for u in sorted(ws.members)
        ]
    )


@route("/workspaces/{workspace}/permissions", scope="workspace", access="ws_admin")
def workspace_permissions(ctx: RequestContext, workspace: str) -> Page:
    ws = ctx.workspace(workspace)
    return Page(
        [
            {
                "type": "workspace_membership",
                "permission": role,
                "user": s.user_summary(ctx.urls, ctx.world.users[u]),
                "workspace": s.workspace_summary(ctx.urls, ws),
            }
            for u, role in sorted(ws.members.items())
        ]
    )


@route(
    "/workspaces/{workspace}/projects",
    scope="project",
    access="ws_member",
    filterable=("key", "name", "is_private", "uuid", "updated_on", "created_on"),
    sortable=("key", "name", "updated_on", "created_on"),
)
def projects(ctx: RequestContext, workspace: str) -> Page:
    ws = ctx.workspace(workspace)
    return Page([s.project_full(ctx.urls, ws, p) for p in sorted(ws.projects.values(), key=lambda p: p.key)])


@route("/workspaces/{workspace}/projects/{project_key}", scope="project", access="ws_member")
def project(ctx: RequestContext, workspace: str, project_key: str) -> dict:
    ws = ctx.workspace(workspace)
    found = ws.projects.get(project_key) or next((p for p in ws.projects.values() if p.uuid == project_key), None)
    if found is None:
        raise ApiError(404, f"Project {project_key} not found")
    return s.project_full(ctx.urls, ws, found)


def _repository_permission_items(ctx: RequestContext, ws, repos) -> list[dict]:
    items = []
    for repo in repos:
        for username in sorted(ctx.world.users):
            level = ctx.world.permission(username, repo)
            if level == "none" or (username not in ws.members and level == "read" and not repo.is_private):
                continue
            items.append(
                {
                    "type": "repository_permission",
                    "permission": level,
                    "user": s.user_summary(ctx.urls, ctx.world.users[username]),
                    "repository": s.repository_summary(ctx.urls, repo),
                }
            )
    return items


@route(
    "/workspaces/{workspace}/permissions/repositories",
    scope="workspace",
    access="ws_admin",
    filterable=("permission", "repository.name", "user.uuid", "user.nickname"),
    sortable=("repository.name", "user.display_name"),
)
def workspace_repository_permissions(ctx: RequestContext, workspace: str) -> Page:
    ws = ctx.workspace(workspace, "ws_admin")
    return Page(_repository_permission_items(ctx, ws, sorted(ws.repositories.values(), key=lambda r: r.slug)))


@route(
    "/workspaces/{workspace}/permissions/repositories/{repo_slug}",
    scope="workspace",
    access="ws_admin",
    filterable=("permission", "user.uuid", "user.nickname"),
)
def workspace_repository_permissions_one(ctx: RequestContext, workspace: str, repo_slug: str) -> Page:
    ws = ctx.workspace(workspace, "ws_admin")
    repo = ctx.repository(workspace, repo_slug, access="read")
    return Page(_repository_permission_items(ctx, ws, [repo]))


@route("/workspaces/{workspace}/pipelines-config/variables", scope="pipeline", access="ws_admin")
def workspace_variables(ctx: RequestContext, workspace: str) -> Page:
    ws = ctx.workspace(workspace, "ws_admin")
    return Page([s.variable_json(v) for v in ws.variables])


@route("/workspaces/{workspace}/hooks", scope="webhook", access="ws_admin")
def workspace_hooks(ctx: RequestContext, workspace: str) -> Page:
    ws = ctx.workspace(workspace, "ws_admin")
    subject = s.workspace_summary(ctx.urls, ws)
    path = f"/workspaces/{ws.slug}/hooks"
    return Page([s.hook_json(ctx.urls, h, "workspace", subject, path) for h in ws.hooks])
