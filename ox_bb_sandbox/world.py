"""The sandbox's state: accounts, credentials, workspaces, repositories and their settings.

Plain dataclasses; the generator and the importer fill them, the REST app reads and writes them.
Git content (branches, commits, files) lives in bare repositories on disk and is read through
`gitrepo.GitRepository`, so REST and git clones always agree.
"""

from __future__ import annotations

import secrets
import threading
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .gitrepo import GitRepository

PERMISSION_ORDER = {"none": 0, "read": 1, "write": 2, "admin": 3}


def braced_uuid(namespace: str, name: str) -> str:
    """A stable `{uuid}` (Bitbucket keeps the braces) derived from a name."""
    return "{" + str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"ox-bb-sandbox:{namespace}:{name}")) + "}"


@dataclass
class User:
    username: str
    display_name: str
    email: str
    created_on: datetime
    uuid: str = ""
    account_id: str = ""

    def __post_init__(self) -> None:
        self.uuid = self.uuid or braced_uuid("user", self.username)
        self.account_id = self.account_id or "712020:" + self.uuid.strip("{}")


@dataclass
class ApiToken:
    """Atlassian API token with scopes: Basic `email:token`; git user `x-bitbucket-api-token-auth`."""

    name: str
    username: str
    secret: str
    scopes: frozenset[str]  # new-style names, e.g. read:repository:bitbucket


@dataclass
class OAuthConsumer:
    """An OAuth 2.0 consumer; client-credentials tokens act as its owner."""

    name: str
    key: str
    secret: str
    owner: str
    scopes: frozenset[str]  # legacy names, e.g. repository, pullrequest, repository:admin
    callback_url: str = "http://127.0.0.1/callback"
    private: bool = True
    # Who approves the authorization-code flow in the sandbox (no browser to click "Grant access").
    authorizing_user: str | None = None


@dataclass
class AccessToken:
    """Repository/project/workspace access token: Bearer, bound to one workspace, legacy scopes."""

    name: str
    secret: str
    workspace: str
    scopes: frozenset[str]
    kind: str = "workspace_access_token"  # or repo_access_token / project_access_token
    repository: str | None = None  # for repo_access_token


@dataclass
class IssuedToken:
    """An OAuth access token or refresh token handed out by /site/oauth2/access_token."""

    consumer_key: str
    username: str
    scopes: frozenset[str]
    expires_at: datetime | None  # None for refresh tokens


@dataclass
class Group:
    slug: str
    name: str
    members: list[str]


@dataclass
class Project:
    key: str
    name: str
    description: str
    is_private: bool
    created_on: datetime
    updated_on: datetime
    uuid: str = ""

    def __post_init__(self) -> None:
        self.uuid = self.uuid or braced_uuid("project", self.key + self.name)


@dataclass
class Webhook:
    url: str
    description: str
    events: list[str]
    active: bool
    secret_set: bool
    skip_cert_verification: bool
    created_at: datetime
    uuid: str = ""

    def __post_init__(self) -> None:
        self.uuid = self.uuid or braced_uuid("hook", self.url + self.description)


@dataclass
class Variable:
    key: str
    value: str
    secured: bool
    uuid: str = ""

    def __post_init__(self) -> None:
        self.uuid = self.uuid or braced_uuid("variable", self.key + self.value)


@dataclass
class Participant:
    username: str
    role: str  # PARTICIPANT | REVIEWER
    approved: bool
    state: str | None  # approved | changes_requested | None
    participated_on: datetime | None


@dataclass
class PullRequest:
    id: int
    title: str
    description: str
    state: str  # OPEN | MERGED | DECLINED | SUPERSEDED
    author: str
    source_branch: str
    source_commit: str
    destination_branch: str
    destination_commit: str
    created_on: datetime
    updated_on: datetime
    merge_commit: str | None = None
    closed_by: str | None = None
    reason: str = ""
    participants: list[Participant] = field(default_factory=list)
    reviewers: list[str] = field(default_factory=list)
    comments: list[dict] = field(default_factory=list)
    task_count: int = 0
    close_source_branch: bool = True
    draft: bool = False


@dataclass
class DeployKey:
    id: int
    key: str
    label: str
    comment: str
    added_on: datetime
    last_used: datetime | None


@dataclass
class Environment:
    name: str
    environment_type: str  # Test | Staging | Production
    rank: int
    admin_only: bool = False
    uuid: str = ""
    variables: list[Variable] = field(default_factory=list)  # deployment variables

    def __post_init__(self) -> None:
        self.uuid = self.uuid or braced_uuid("environment", self.name + str(self.rank))


@dataclass
class PipelineRun:
    build_number: int
    created_on: datetime
    completed_on: datetime | None
    state: str  # COMPLETED | IN_PROGRESS | PENDING
    result: str | None  # SUCCESSFUL | FAILED | ERROR | STOPPED
    ref_name: str
    commit: str
    trigger: str  # push | manual | schedule
    creator: str
    selector_type: str = "branches"
    uuid: str = ""

    def __post_init__(self) -> None:
        self.uuid = self.uuid or braced_uuid("pipeline", f"{self.ref_name}:{self.build_number}:{self.commit}")


@dataclass
class Repository:
    workspace: str
    slug: str
    name: str
    project_key: str
    description: str
    is_private: bool
    fork_policy: str
    language: str
    created_on: datetime
    updated_on: datetime
    git: GitRepository
    mainbranch: str = "main"
    has_issues: bool = False
    has_wiki: bool = False
    parent: str | None = None  # "ws/slug" of the fork parent
    uuid: str = ""
    branch_restrictions: list[dict] = field(default_factory=list)
    branching_model: dict = field(default_factory=dict)
    default_reviewers: list[str] = field(default_factory=list)
    pull_requests: list[PullRequest] = field(default_factory=list)
    pipelines_enabled: bool = False
    variables: list[Variable] = field(default_factory=list)
    pipelines: list[PipelineRun] = field(default_factory=list)
    environments: list[Environment] = field(default_factory=list)
    deploy_keys: list[DeployKey] = field(default_factory=list)
    hooks: list[Webhook] = field(default_factory=list)
    user_permissions: dict[str, str] = field(default_factory=dict)  # explicit grants: username -> level
    group_permissions: dict[str, str] = field(default_factory=dict)  # group slug -> level
    reports: dict[str, dict[str, dict]] = field(default_factory=dict)  # commit -> report id -> report
    annotations: dict[tuple[str, str], dict[str, dict]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.uuid = self.uuid or braced_uuid("repository", f"{self.workspace}/{self.slug}")

    @property
    def full_name(self) -> str:
        return f"{self.workspace}/{self.slug}"

    def follow_branches(self, now: datetime) -> list[PullRequest]:
        """After a push, open pull requests follow their branches, as Bitbucket's do: the source (and
        destination) commit becomes the branch's new head and the pull request is updated. Returns those moved."""
        heads = dict(self.git.branches())
        moved = []
        for pr in self.pull_requests:
            if pr.state != "OPEN":
                continue
            source, destination = heads.get(pr.source_branch), heads.get(pr.destination_branch)
            if (source or pr.source_commit, destination or pr.destination_commit) != (
                pr.source_commit,
                pr.destination_commit,
            ):
                pr.source_commit = source or pr.source_commit
                pr.destination_commit = destination or pr.destination_commit
                pr.updated_on = now
                moved.append(pr)
        return moved

    def open_pull_request(self, source: str, destination: str, title: str, author: str, now: datetime) -> PullRequest:
        """A new OPEN pull request from branch `source` into `destination` at their current heads."""
        heads = dict(self.git.branches())
        for branch in (source, destination):
            if branch not in heads:
                raise ValueError(f"repository {self.full_name} has no branch {branch!r}; push it first")
        pr = PullRequest(
            id=max((p.id for p in self.pull_requests), default=0) + 1,
            title=title,
            description="",
            state="OPEN",
            author=author,
            source_branch=source,
            source_commit=heads[source],
            destination_branch=destination,
            destination_commit=heads[destination],
            created_on=now,
            updated_on=now,
        )
        self.pull_requests.append(pr)
        return pr


@dataclass
class Workspace:
    slug: str
    name: str
    is_private: bool
    created_on: datetime
    members: dict[str, str]  # username -> owner | collaborator | member
    forking_mode: str = "allow_forks"
    uuid: str = ""
    plan: str = "free"  # free | standard | premium: decides the scaled rate limit of its access tokens
    paid_seats: int = 0
    projects: dict[str, Project] = field(default_factory=dict)
    repositories: dict[str, Repository] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    hooks: list[Webhook] = field(default_factory=list)
    variables: list[Variable] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.uuid = self.uuid or braced_uuid("workspace", self.slug)

    def is_admin(self, username: str | None) -> bool:
        return username is not None and self.members.get(username) in ("owner", "collaborator")


@dataclass
class World:
    """Everything the sandbox serves; `lock` guards writes made over HTTP."""

    root: Path
    users: dict[str, User] = field(default_factory=dict)
    workspaces: dict[str, Workspace] = field(default_factory=dict)
    api_tokens: list[ApiToken] = field(default_factory=list)
    consumers: list[OAuthConsumer] = field(default_factory=list)
    access_tokens: list[AccessToken] = field(default_factory=list)
    revoked_tokens: list[AccessToken] = field(default_factory=list)  # planted in code; the server answers 401
    issued_tokens: dict[str, IssuedToken] = field(default_factory=dict)
    refresh_tokens: dict[str, IssuedToken] = field(default_factory=dict)
    authorization_codes: dict[str, IssuedToken] = field(default_factory=dict)
    planted: list[dict] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def plant_access_token(self, workspace: str, repository: str, *, live: bool) -> str:
        """A repository access token shaped as Bitbucket's (ATCTT3…), to plant in code or history: live (the
        server accepts it) or revoked (it answers 401, as for a token deleted in the settings). Listed in the
        planted manifest with its liveness, for the live-check tests; the pipeline never reads the manifest."""
        value = "ATCTT3xFfGF0" + secrets.token_urlsafe(96).replace("-", "A").replace("_", "b")[:120] + "=1A2B3C4D"
        name = f"planted-{'live' if live else 'revoked'}-{len(self.access_tokens) + len(self.revoked_tokens)}"
        token = AccessToken(name, value, workspace, frozenset({"repository"}), "repo_access_token", repository)
        with self.lock:
            (self.access_tokens if live else self.revoked_tokens).append(token)
            self.planted.append(
                {
                    "kind": "live_credential",
                    "rule": "bitbucket-access-token",
                    "workspace": workspace,
                    "repository": repository,
                    "live": live,
                    "value": value,
                }
            )
        return value

    # -- look-ups by slug or {uuid}, as Bitbucket allows both in paths ------------------------
    def workspace(self, ref: str) -> Workspace | None:
        if ref in self.workspaces:
            return self.workspaces[ref]
        return next((w for w in self.workspaces.values() if w.uuid == ref), None)

    def repository(self, ws_ref: str, repo_ref: str) -> Repository | None:
        ws = self.workspace(ws_ref)
        if ws is None:
            return None
        if repo_ref in ws.repositories:
            return ws.repositories[repo_ref]
        return next((r for r in ws.repositories.values() if r.uuid == repo_ref), None)

    def user_by_ref(self, ref: str) -> User | None:
        if ref in self.users:
            return self.users[ref]
        return next((u for u in self.users.values() if ref in (u.uuid, u.account_id)), None)

    def permission(self, username: str | None, repo: Repository) -> str:
        """Effective permission of a user on a repository (none/read/write/admin)."""
        if username is None:
            return "none"
        ws = self.workspaces[repo.workspace]
        if ws.is_admin(username):
            return "admin"
        levels = [repo.user_permissions.get(username, "none")]
        for slug, level in repo.group_permissions.items():
            group = ws.groups.get(slug)
            if group and username in group.members:
                levels.append(level)
        best = max(levels, key=PERMISSION_ORDER.__getitem__)
        if best == "none" and not repo.is_private:
            return "read"
        return best
