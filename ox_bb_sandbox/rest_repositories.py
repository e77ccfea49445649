"""REST: repositories, refs, branch restrictions, branching model, default reviewers, commits, src."""

from __future__ import annotations

import mimetypes
from urllib.parse import quote

from werkzeug.wrappers import Response

from . import serializers as s
from .app import ApiError, Page, RequestContext, not_found, route

REPO_FILTERABLE = (
    "name",
    "slug",
    "full_name",
    "uuid",
    "is_private",
    "language",
    "project.key",
    "project.name",
    "project.uuid",
    "updated_on",
    "created_on",
    "fork_policy",
    "mainbranch.name",
    "has_issues",
    "has_wiki",
    "description",
    "parent.full_name",
)
REPO_SORTABLE = ("name", "slug", "full_name", "updated_on", "created_on", "size", "language")
ROLE_LEVEL = {"member": "read", "contributor": "write", "admin": "admin", "owner": "admin"}


@route(
    "/repositories/{workspace}",
    scope="repository",
    access="ws_member",
    filterable=REPO_FILTERABLE,
    sortable=REPO_SORTABLE,
)
def repositories(ctx: RequestContext, workspace: str) -> Page:
    ws = ctx.workspace(workspace)
    role = ctx.request.args.get("role")
    if role is not None and role not in ROLE_LEVEL:
        raise ApiError(400, f"Invalid role: {role}", detail="role must be one of member, contributor, admin, owner")
    order = {"none": 0, "read": 1, "write": 2, "admin": 3}
    items = []
    for repo in sorted(ws.repositories.values(), key=lambda r: r.slug):
        level = ctx.permission(repo)
        if level == "none" or (role and order[level] < order[ROLE_LEVEL[role]]):
            continue
        items.append(s.repository_full(ctx.urls, ctx.world, repo, ctx.identity.username))
    return Page(items)


@route("/repositories/{workspace}/{repo_slug}", scope="repository")
def repository(ctx: RequestContext, workspace: str, repo_slug: str) -> dict:
    return s.repository_full(ctx.urls, ctx.world, ctx.repository(workspace, repo_slug), ctx.identity.username)


def _refs(ctx: RequestContext, repo, kinds: tuple[str, ...]) -> list[dict]:
    items = []
    if "branch" in kinds:
        items += [s.branch_json(ctx.urls, ctx.world, repo, n, sha) for n, sha in repo.git.branches()]
    if "tag" in kinds:
        items += [s.branch_json(ctx.urls, ctx.world, repo, n, sha, kind="tag") for n, sha in repo.git.tags()]
    return items


REF_FILTERABLE = ("name", "target.hash", "target.date", "target.author.raw", "target.message")
REF_SORTABLE = ("name", "target.date")


@route(
    "/repositories/{workspace}/{repo_slug}/refs", scope="repository", filterable=REF_FILTERABLE, sortable=REF_SORTABLE
)
def refs(ctx: RequestContext, workspace: str, repo_slug: str) -> Page:
    return Page(_refs(ctx, ctx.repository(workspace, repo_slug), ("branch", "tag")))


@route(
    "/repositories/{workspace}/{repo_slug}/refs/branches",
    scope="repository",
    filterable=REF_FILTERABLE,
    sortable=REF_SORTABLE,
)
def branches(ctx: RequestContext, workspace: str, repo_slug: str) -> Page:
    return Page(_refs(ctx, ctx.repository(workspace, repo_slug), ("branch",)))


@route("/repositories/{workspace}/{repo_slug}/refs/branches/{name:path}", scope="repository")
def branch(ctx: RequestContext, workspace: str, repo_slug: str, name: str) -> dict:
    repo = ctx.repository(workspace, repo_slug)
    sha = dict(repo.git.branches()).get(name)
    if sha is None:
        raise not_found(f'Branch "{name}" does not exist.')
    return s.branch_json(ctx.urls, ctx.world, repo, name, sha)


@route(
    "/repositories/{workspace}/{repo_slug}/refs/tags",
    scope="repository",
    filterable=REF_FILTERABLE,
    sortable=REF_SORTABLE,
)
def tags(ctx: RequestContext, workspace: str, repo_slug: str) -> Page:
    return Page(_refs(ctx, ctx.repository(workspace, repo_slug), ("tag",)))


@route(
    "/repositories/{workspace}/{repo_slug}/branch-restrictions",
    scope="repository:admin",
    access="admin",
    filterable=("kind", "pattern", "branch_match_kind"),
)
def branch_restrictions(ctx: RequestContext, workspace: str, repo_slug: str) -> Page:
    repo = ctx.repository(workspace, repo_slug)
    kind, pattern = ctx.request.args.get("kind"), ctx.request.args.get("pattern")
    items = [
        s.branch_restriction_json(ctx.urls, ctx.world, repo, r)
        for r in repo.branch_restrictions
        if (kind is None or r["kind"] == kind) and (pattern is None or r.get("pattern") == pattern)
    ]
    return Page(items)


@route(
    "/repositories/{workspace}/{repo_slug}/branch-restrictions/{restriction_id}",
    scope="repository:admin",
    access="admin",
)
def branch_restriction(ctx: RequestContext, workspace: str, repo_slug: str, restriction_id: str) -> dict:
    repo = ctx.repository(workspace, repo_slug)
    rule = next((r for r in repo.branch_restrictions if str(r["id"]) == restriction_id), None)
    if rule is None:
        raise not_found(f"No branch restriction with id {restriction_id}")
    return s.branch_restriction_json(ctx.urls, ctx.world, repo, rule)


@route("/repositories/{workspace}/{repo_slug}/branching-model", scope="repository")
def branching_model(ctx: RequestContext, workspace: str, repo_slug: str) -> dict:
    return s.branching_model_json(ctx.urls, ctx.repository(workspace, repo_slug))


@route("/repositories/{workspace}/{repo_slug}/default-reviewers", scope="pullrequest")
def default_reviewers(ctx: RequestContext, workspace: str, repo_slug: str) -> Page:
    repo = ctx.repository(workspace, repo_slug)
    return Page([s.user_summary(ctx.urls, ctx.world.users[u]) for u in repo.default_reviewers])


# -- commits ------------------------------------------------------------------------------------
def _commit_page(ctx: RequestContext, repo, include: list[str]) -> Page:
    args = ctx.request.args
    include = include + args.getlist("include")
    exclude = args.getlist("exclude")
    for rev in include + exclude:
        if repo.git.resolve(rev) is None:
            raise not_found(f"Commit not found: {rev}")
    hashes = repo.git.rev_list(include, exclude, args.get("path"))
    commits = repo.git.all_commits()
    return Page([s.commit_json(ctx.urls, ctx.world, repo, commits[h]) for h in hashes if h in commits])


@route("/repositories/{workspace}/{repo_slug}/commits", scope="repository", cursor=True)
def commits(ctx: RequestContext, workspace: str, repo_slug: str) -> Page:
    return _commit_page(ctx, ctx.repository(workspace, repo_slug), [])


@route("/repositories/{workspace}/{repo_slug}/commits/{revision:path}", scope="repository", cursor=True)
def commits_of(ctx: RequestContext, workspace: str, repo_slug: str, revision: str) -> Page:
    return _commit_page(ctx, ctx.repository(workspace, repo_slug), [revision])


@route("/repositories/{workspace}/{repo_slug}/commit/{commit}", scope="repository")
def commit(ctx: RequestContext, workspace: str, repo_slug: str, commit: str) -> dict:
    repo = ctx.repository(workspace, repo_slug)
    found = repo.git.commit(commit)
    if found is None:
        raise not_found(f"Commit not found: {commit}")
    return s.commit_json(ctx.urls, ctx.world, repo, found)


# -- src ----------------------------------------------------------------------------------------
@route("/repositories/{workspace}/{repo_slug}/src", scope="repository")
def src_root_redirect(ctx: RequestContext, workspace: str, repo_slug: str) -> Response:
    repo = ctx.repository(workspace, repo_slug)
    sha = dict(repo.git.branches()).get(repo.mainbranch)
    if sha is None:
        raise not_found("Repository is empty")
    location = f"{ctx.urls.api}/repositories/{repo.full_name}/src/{sha}/"
    return Response(status=302, headers={"Location": location})


@route(
    "/repositories/{workspace}/{repo_slug}/src/{commit}/",
    scope="repository",
    filterable=("path", "size", "type"),
    sortable=("path", "size"),
)
def src_root(ctx: RequestContext, workspace: str, repo_slug: str, commit: str):
    return _src(ctx, ctx.repository(workspace, repo_slug), commit, "")


@route(
    "/repositories/{workspace}/{repo_slug}/src/{commit}/{path:path}",
    scope="repository",
    filterable=("path", "size", "type"),
    sortable=("path", "size"),
)
def src_path(ctx: RequestContext, workspace: str, repo_slug: str, commit: str, path: str):
    return _src(ctx, ctx.repository(workspace, repo_slug), commit, path.rstrip("/"))


def _src(ctx: RequestContext, repo, commit: str, path: str):
    sha = repo.git.resolve(commit)
    if sha is None:
        raise not_found(f"Commit not found: {commit}")
    kind = repo.git.object_kind(sha, path)
    if kind is None:
        raise not_found(f"No such file or directory: {path}")
    meta = ctx.request.args.get("format") == "meta"
    if kind == "tree":
        if meta:
            return _directory_entry(ctx, repo, sha, path)
        try:
            depth = int(ctx.request.args.get("max_depth", "1"))
        except ValueError as exc:
            raise ApiError(400, "Invalid max_depth") from exc
        return Page(_list_directory(ctx, repo, sha, path, max(depth, 1)))
    entry = repo.git.blob_mode(sha, path)
    if meta:
        return _file_entry(ctx, repo, sha, entry)
    data = repo.git.read_blob(sha, path)
    mimetype = mimetypes.guess_type(path)[0] or ("text/plain" if _is_text(data) else "application/octet-stream")
    return Response(data, status=200, mimetype=mimetype)


def _is_text(data: bytes) -> bool:
    return b"\0" not in data[:8000]


def _commit_stub(ctx: RequestContext, repo, sha: str) -> dict:
    return {
        "type": "commit",
        "hash": sha,
        "links": {"self": ctx.urls.link(f"/repositories/{repo.full_name}/commit/{sha}")},
    }


def _file_entry(ctx: RequestContext, repo, sha: str, entry) -> dict:
    attributes = []
    if entry.mode == "100755":
        attributes.append("executable")
    if entry.mode == "120000":
        attributes.append("link")
    if entry.kind == "commit":
        attributes.append("subrepository")
    base = f"/repositories/{repo.full_name}/src/{sha}/{quote(entry.path)}"
    return {
        "type": "commit_file",
        "path": entry.path,
        "escaped_path": quote(entry.path),
        "commit": _commit_stub(ctx, repo, sha),
        "size": entry.size or 0,
        "mimetype": mimetypes.guess_type(entry.path)[0],
        "attributes": attributes,
        "links": {
            "self": ctx.urls.link(base),
            "meta": ctx.urls.link(f"{base}?format=meta"),
            "history": ctx.urls.link(f"/repositories/{repo.full_name}/filehistory/{sha}/{quote(entry.path)}"),
        },
    }


def _directory_entry(ctx: RequestContext, repo, sha: str, path: str) -> dict:
    base = f"/repositories/{repo.full_name}/src/{sha}/{quote(path)}"
    return {
        "type": "commit_directory",
        "path": path,
        "escaped_path": quote(path),
        "commit": _commit_stub(ctx, repo, sha),
        "links": {"self": ctx.urls.link(f"{base}/" if path else base), "meta": ctx.urls.link(f"{base}?format=meta")},
    }


def _list_directory(ctx: RequestContext, repo, sha: str, path: str, depth: int) -> list[dict]:
    """Breadth-first listing down to `max_depth` levels, as Bitbucket does."""
    items, frontier = [], [path]
    for _ in range(depth):
        next_frontier = []
        for directory in frontier:
            for entry in repo.git.list_tree(sha, directory):
                if entry.kind == "tree":
                    items.append(_directory_entry(ctx, repo, sha, entry.path))
                    next_frontier.append(entry.path)
                else:
                    items.append(_file_entry(ctx, repo, sha, entry))
        frontier = next_frontier
    return items
