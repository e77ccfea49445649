"""REST: pull requests, their activity, the pull requests of a commit, and PR comments (add, edit)."""

from __future__ import annotations

from . import serializers as s
from .app import ApiError, Page, RequestContext, not_found, route

PR_STATES = ("OPEN", "MERGED", "DECLINED", "SUPERSEDED")
PR_FILTERABLE = (
    "id",
    "title",
    "description",
    "state",
    "created_on",
    "updated_on",
    "draft",
    "source.branch.name",
    "destination.branch.name",
    "source.commit.hash",
    "destination.commit.hash",
    "merge_commit.hash",
    "author.uuid",
    "author.nickname",
    "author.display_name",
    "closed_by.uuid",
    "reviewers.uuid",
    "participants.user.uuid",
)
PR_SORTABLE = ("id", "created_on", "updated_on", "title", "state")
PR_HIDDEN = ("values.participants", "values.reviewers")


def _pull_request(repo, pull_request_id: str):
    pr = next((p for p in repo.pull_requests if str(p.id) == pull_request_id), None)
    if pr is None:
        raise not_found(f"Pull request {pull_request_id} not found")
    return pr


@route(
    "/repositories/{workspace}/{repo_slug}/pullrequests",
    scope="pullrequest",
    max_pagelen=50,
    filterable=PR_FILTERABLE,
    sortable=PR_SORTABLE,
    hidden=PR_HIDDEN,
)
def pull_requests(ctx: RequestContext, workspace: str, repo_slug: str) -> Page:
    """`state` is repeatable and defaults to OPEN; a `q` mentioning state replaces that default."""
    repo = ctx.repository(workspace, repo_slug)
    states = [st.upper() for st in ctx.request.args.getlist("state")]
    for state in states:
        if state not in PR_STATES:
            raise ApiError(400, f"Invalid state: {state}", detail=f"state must be one of {', '.join(PR_STATES)}")
    if not states:
        states = list(PR_STATES) if "state" in (ctx.request.args.get("q") or "") else ["OPEN"]
    ordered = sorted(repo.pull_requests, key=lambda p: p.id, reverse=True)
    return Page([s.pull_request_json(ctx.urls, ctx.world, repo, pr) for pr in ordered if pr.state in states])


@route("/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}", scope="pullrequest")
def pull_request(ctx: RequestContext, workspace: str, repo_slug: str, pull_request_id: str) -> dict:
    repo = ctx.repository(workspace, repo_slug)
    return s.pull_request_json(ctx.urls, ctx.world, repo, _pull_request(repo, pull_request_id))


@route(
    "/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}/activity",
    scope="pullrequest",
    max_pagelen=50,
    cursor=True,
)
def pull_request_activity(ctx: RequestContext, workspace: str, repo_slug: str, pull_request_id: str) -> Page:
    repo = ctx.repository(workspace, repo_slug)
    return Page(s.pull_request_activity(ctx.urls, ctx.world, repo, _pull_request(repo, pull_request_id)))


@route(
    "/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}/comments",
    scope="pullrequest",
    max_pagelen=100,
)
def pull_request_comments(ctx: RequestContext, workspace: str, repo_slug: str, pull_request_id: str) -> Page:
    repo = ctx.repository(workspace, repo_slug)
    pr = _pull_request(repo, pull_request_id)
    return Page([s.comment_json(ctx.urls, ctx.world, repo, pr, c) for c in pr.comments])


@route(
    "/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}/comments",
    methods=("POST",),
    scope="pullrequest:write",
)
def add_pull_request_comment(ctx: RequestContext, workspace: str, repo_slug: str, pull_request_id: str) -> dict:
    repo = ctx.repository(workspace, repo_slug)
    pr = _pull_request(repo, pull_request_id)
    body = ctx.json_body()
    raw = (body.get("content") or {}).get("raw")
    if not isinstance(raw, str) or not raw.strip():
        raise ApiError(400, "Comment content is required", detail="content.raw must be a non-empty string")
    with ctx.world.lock:
        comment = {
            "id": 1000 + sum(len(p.comments) for p in repo.pull_requests) + 1,
            "raw": raw,
            "user": ctx.identity.username or _token_user(ctx),
            "_created": ctx.clock.now(),
            "inline": body.get("inline"),
        }
        pr.comments.append(comment)
    return s.comment_json(ctx.urls, ctx.world, repo, pr, comment)


def _comment(pr, comment_id: str) -> dict:
    comment = next((c for c in pr.comments if str(c["id"]) == comment_id), None)
    if comment is None:
        raise not_found(f"Comment {comment_id} not found")
    return comment


@route(
    "/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}/comments/{comment_id}",
    scope="pullrequest",
)
def pull_request_comment(
    ctx: RequestContext, workspace: str, repo_slug: str, pull_request_id: str, comment_id: str
) -> dict:
    repo = ctx.repository(workspace, repo_slug)
    pr = _pull_request(repo, pull_request_id)
    return s.comment_json(ctx.urls, ctx.world, repo, pr, _comment(pr, comment_id))


@route(
    "/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}/comments/{comment_id}",
    methods=("PUT",),
    scope="pullrequest:write",
)
def update_pull_request_comment(
    ctx: RequestContext, workspace: str, repo_slug: str, pull_request_id: str, comment_id: str
) -> dict:
    """Edit a comment's content; as on Bitbucket, only its author may."""
    repo = ctx.repository(workspace, repo_slug)
    pr = _pull_request(repo, pull_request_id)
    body = ctx.json_body()
    raw = (body.get("content") or {}).get("raw")
    if not isinstance(raw, str) or not raw.strip():
        raise ApiError(400, "Comment content is required", detail="content.raw must be a non-empty string")
    with ctx.world.lock:
        comment = _comment(pr, comment_id)
        if comment.get("user") != (ctx.identity.username or _token_user(ctx)):
            raise ApiError(403, "You can only edit your own comments")
        comment["raw"] = raw
        comment["_updated"] = ctx.clock.now()
    return s.comment_json(ctx.urls, ctx.world, repo, pr, comment)


def _token_user(ctx: RequestContext) -> str:
    # Access tokens act as a bot account; the sandbox attributes their comments to the workspace owner.
    ws = ctx.world.workspaces[ctx.identity.workspace]
    return next(u for u, role in ws.members.items() if role == "owner")


@route(
    "/repositories/{workspace}/{repo_slug}/commit/{commit}/pullrequests",
    scope="pullrequest",
    max_pagelen=50,
    hidden=PR_HIDDEN,
)
def commit_pull_requests(ctx: RequestContext, workspace: str, repo_slug: str, commit: str) -> Page:
    """Pull requests that contain the commit or merged it."""
    repo = ctx.repository(workspace, repo_slug)
    sha = repo.git.resolve(commit)
    if sha is None:
        raise not_found(f"Commit not found: {commit}")
    found = []
    for pr in sorted(repo.pull_requests, key=lambda p: p.id):
        if pr.merge_commit == sha or sha in repo.git.rev_list([pr.source_commit], [pr.destination_commit]):
            found.append(s.pull_request_json(ctx.urls, ctx.world, repo, pr))
    return Page(found)
