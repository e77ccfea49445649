"""REST: admin-only repository settings — deploy keys, webhooks, explicit user and group permissions."""

from __future__ import annotations

from . import serializers as s
from .app import Page, RequestContext, route


@route("/repositories/{workspace}/{repo_slug}/deploy-keys", scope="repository:admin", access="admin")
def deploy_keys(ctx: RequestContext, workspace: str, repo_slug: str) -> Page:
    repo = ctx.repository(workspace, repo_slug)
    return Page([s.deploy_key_json(ctx.urls, ctx.world, repo, k) for k in repo.deploy_keys])


@route("/repositories/{workspace}/{repo_slug}/hooks", scope="webhook", access="admin")
def repository_hooks(ctx: RequestContext, workspace: str, repo_slug: str) -> Page:
    repo = ctx.repository(workspace, repo_slug)
    subject = s.repository_summary(ctx.urls, repo)
    path = f"/repositories/{repo.full_name}/hooks"
    return Page([s.hook_json(ctx.urls, h, "repository", subject, path) for h in repo.hooks])


@route("/repositories/{workspace}/{repo_slug}/permissions-config/users", scope="repository:admin", access="admin")
def permissions_users(ctx: RequestContext, workspace: str, repo_slug: str) -> Page:
    """Explicit grants only (no BBQL on this endpoint, as on bitbucket.org)."""
    repo = ctx.repository(workspace, repo_slug)
    return Page(
        [
            {
                "type": "repository_user_permission",
                "permission": level,
                "user": s.user_summary(ctx.urls, ctx.world.users[username]),
                "repository": s.repository_summary(ctx.urls, repo),
                "links": {
                    "self": ctx.urls.link(
                        f"/repositories/{repo.full_name}/permissions-config/users/"
                        f"{ctx.world.users[username].account_id}"
                    )
                },
            }
            for username, level in sorted(repo.user_permissions.items())
        ]
    )


@route("/repositories/{workspace}/{repo_slug}/permissions-config/groups", scope="repository:admin", access="admin")
def permissions_groups(ctx: RequestContext, workspace: str, repo_slug: str) -> Page:
    repo = ctx.repository(workspace, repo_slug)
    ws = ctx.world.workspaces[repo.workspace]
    return Page(
        [
            {
                "type": "repository_group_permission",
                "permission": level,
                "group": s.group_json(ctx.urls, ws, ws.groups[slug]),
                "repository": s.repository_summary(ctx.urls, repo),
                "links": {"self": ctx.urls.link(f"/repositories/{repo.full_name}/permissions-config/groups/{slug}")},
            }
            for slug, level in sorted(repo.group_permissions.items())
            if slug in ws.groups
        ]
    )
