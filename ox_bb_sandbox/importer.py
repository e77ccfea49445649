"""Import a local git repository into the sandbox (`--import-repo PATH[=workspace/slug]`)."""

from __future__ import annotations

import re
from pathlib import Path

from .gitrepo import GitError, GitRepository, replace_bare_repository, run_git
from .world import Project, Repository, Workspace, World

SLUG = re.compile(r"[^a-z0-9._-]+")


class RepositoryImportError(ValueError):
    """A repository that cannot be imported; the message names it and says what to do."""


def import_repository(world: World, source: Path, target: str | None = None) -> Repository:
    source = Path(source).expanduser().resolve()
    if not source.exists():
        raise RepositoryImportError(f"--import-repo {source}: no such directory")
    try:
        prefix = run_git(["-C", str(source), "rev-parse", "--show-prefix"]).decode().strip()
    except GitError as exc:
        raise RepositoryImportError(f"--import-repo {source}: not a git repository ({exc})") from exc
    if prefix:  # a folder inside a work tree: cloning it would import the enclosing repository
        raise RepositoryImportError(
            f"--import-repo {source}: not the top of a git repository (it is {prefix.rstrip('/')!r} inside one)"
        )
    if target:
        if target.count("/") != 1:
            raise RepositoryImportError(f"--import-repo {source}={target}: the target must look like workspace/slug")
        ws_slug, slug = target.split("/")
    else:
        ws_slug, slug = sorted(world.workspaces)[0] if world.workspaces else "imported", source.name
    slug = SLUG.sub("-", slug.lower()).strip("-") or "imported"
    ws = world.workspaces.get(ws_slug) or _new_workspace(world, ws_slug)
    if slug in ws.repositories:
        raise RepositoryImportError(
            f"--import-repo {source}: {ws_slug}/{slug} already exists; choose another =workspace/slug"
        )
    git_dir = world.root / "git" / ws_slug / f"{slug}.git"
    git_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        replace_bare_repository(git_dir)
    except ValueError as exc:
        raise RepositoryImportError(f"--import-repo {source}: {exc}") from None
    run_git(["clone", "--quiet", "--bare", "--no-local", str(source), str(git_dir)])
    git = GitRepository(git_dir)
    branches = dict(git.branches())
    if not branches:
        raise RepositoryImportError(f"--import-repo {source}: the repository has no branches (nothing committed)")
    head = run_git(["--git-dir", str(git_dir), "symbolic-ref", "--short", "HEAD"]).decode().strip()
    mainbranch = head if head in branches else sorted(branches)[0]
    commits = git.all_commits().values()
    first = min(c.date for c in commits)
    last = max(c.date for c in commits)
    project = ws.projects.get("IMPORTED") or Project(
        "IMPORTED", "Imported", "Repositories imported from disk", True, first, last
    )
    ws.projects.setdefault("IMPORTED", project)
    repo = Repository(
        workspace=ws_slug,
        slug=slug,
        name=source.name,
        project_key="IMPORTED",
        description=f"Imported from {source.name}",
        is_private=True,
        fork_policy="no_public_forks",
        language="",
        created_on=first,
        updated_on=last,
        git=git,
        mainbranch=mainbranch,
    )
    repo.group_permissions = {"administrators": "admin"} if "administrators" in ws.groups else {}
    repo.user_permissions = {"bob": "read"} if "bob" in ws.members else {}
    ws.repositories[slug] = repo
    return repo


def _new_workspace(world: World, slug: str) -> Workspace:
    owner = "alice" if "alice" in world.users else next(iter(world.users))
    created = min((u.created_on for u in world.users.values()), default=None)
    ws = Workspace(
        slug=slug, name=slug.replace("-", " ").title(), is_private=True, created_on=created, members={owner: "owner"}
    )
    world.workspaces[slug] = ws
    return ws
