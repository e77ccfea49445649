"""Deterministic world generator: accounts, credentials, workspaces, real git history, settings.

Same seed and anchor date give the same world (commit hashes included). Repository content comes
from `content.render_profile`; this module adds the history (direct pushes, feature branches,
merged / open / declined pull requests) and the Bitbucket settings that posture checks read,
and records every planted issue in `world.planted` (for tests only; the pipeline never reads it).
"""

from __future__ import annotations

import random
import string
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from . import content
from .gitrepo import GIT_ENV, GitRepository, replace_bare_repository, run_git
from .world import (
    AccessToken,
    ApiToken,
    DeployKey,
    Environment,
    Group,
    IssuedToken,
    OAuthConsumer,
    Participant,
    PipelineRun,
    Project,
    PullRequest,
    Repository,
    User,
    Variable,
    Webhook,
    Workspace,
    World,
    braced_uuid,
)

WORKSPACE_NAMES = [
    "acme-payments",
    "acme-platform",
    "globex-retail",
    "initech-data",
    "umbrella-labs",
    "hooli-cloud",
    "stark-devices",
    "wayne-finance",
]
PROJECT_KEYS = ["CORE", "WEB", "DATA", "INFRA", "MOBILE", "ML", "OPS", "SEC"]
LANGUAGE = {
    "python-service": "python",
    "clean-python": "python",
    "node-web": "javascript",
    "clean-node": "javascript",
    "java-api": "java",
    "go-worker": "go",
    "infra": "hcl",
    "docs": "",
    "ruby-rust": "ruby",
}
# Posture variants cycle with the repository index; clean profiles always get the strong one.
RESTRICTION_VARIANTS = ("none", "weak", "branching_model", "strong")
ALL_API_TOKEN_SCOPES = frozenset(
    {
        "read:user:bitbucket",
        "read:workspace:bitbucket",
        "read:project:bitbucket",
        "admin:project:bitbucket",
        "read:repository:bitbucket",
        "write:repository:bitbucket",
        "admin:repository:bitbucket",
        "read:pullrequest:bitbucket",
        "write:pullrequest:bitbucket",
        "read:pipeline:bitbucket",
        "read:runner:bitbucket",
        "read:webhook:bitbucket",
        "write:webhook:bitbucket",
    }
)
LIMITED_API_TOKEN_SCOPES = frozenset(
    {"read:user:bitbucket", "read:workspace:bitbucket", "read:project:bitbucket", "read:repository:bitbucket"}
)
APP_SCOPES = frozenset(
    {
        "account",
        "project",
        "repository",
        "repository:write",
        "repository:admin",
        "pullrequest",
        "pullrequest:write",
        "pipeline",
        "webhook",
    }
)
IDP_SCOPES = frozenset({"account", "project", "repository", "pullrequest", "pipeline", "webhook"})
TOKEN_SCOPES = frozenset({"account", "project", "repository", "repository:admin", "pullrequest", "pipeline", "webhook"})


@dataclass(frozen=True)
class SandboxSpec:
    """How big a world to generate. Small defaults for the demo; flags scale it for benchmarks."""

    seed: int = 7
    workspaces: int = 2
    projects: int = 2  # per workspace
    repos: int = 6  # per workspace
    branches: int = 2  # long-lived branches per repository besides main
    pull_requests: int = 4  # per repository
    commits: int = 6  # direct commits on main per repository
    anchor: datetime | None = None  # "today" of the generated timeline; default: today 00:00 UTC
    plan: str = "free"  # every workspace's plan and paid seats: they set access tokens' scaled rate limit
    paid_seats: int = 5

    def anchor_date(self) -> datetime:
        if self.anchor is not None:
            return self.anchor.astimezone(UTC)
        return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass
class Credentials:
    """Seeded secrets, for the connections file the sandbox writes."""

    values: dict[str, str] = field(default_factory=dict)


def _secret(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def generate(spec: SandboxSpec, root: Path) -> World:
    """Build a world under `root` (bare repositories in root/git/<ws>/<repo>.git)."""
    rng = random.Random(spec.seed)
    anchor = spec.anchor_date()
    world = World(root=root)
    _accounts(world, rng, anchor)
    _credentials(world, rng)
    for w in range(spec.workspaces):
        ws = _workspace(world, spec, w, anchor)
        for r in range(spec.repos):
            _repository(world, ws, spec, w, r, random.Random(f"{spec.seed}:{w}:{r}"), anchor)
    return world


# -- accounts and credentials ---------------------------------------------------------------------
def _accounts(world: World, rng: random.Random, anchor: datetime) -> None:
    people = [
        ("alice", "Alice Admin"),
        ("bob", "Bob Builder"),
        ("carol", "Carol Contractor"),
        ("dave", "Dave Developer"),
        ("erin", "Erin Engineer"),
    ]
    for i, (username, name) in enumerate(people):
        world.users[username] = User(
            username=username,
            display_name=name,
            email=f"{username}@example.com",
            created_on=anchor - timedelta(days=1500 - 30 * i),
        )


def _credentials(world: World, rng: random.Random) -> None:
    world.api_tokens += [
        ApiToken("alice-admin", "alice", "ATATT3x" + _secret(rng, 40), ALL_API_TOKEN_SCOPES),
        ApiToken("bob-member", "bob", "ATATT3x" + _secret(rng, 40), ALL_API_TOKEN_SCOPES),
        ApiToken("carol-limited", "carol", "ATATT3x" + _secret(rng, 40), LIMITED_API_TOKEN_SCOPES),
    ]
    world.consumers += [
        OAuthConsumer("ox-app", key=_secret(rng, 18), secret=_secret(rng, 32), owner="alice", scopes=APP_SCOPES),
        OAuthConsumer(
            "ox-idp",
            key=_secret(rng, 18),
            secret=_secret(rng, 32),
            owner="alice",
            scopes=IDP_SCOPES,
            private=False,
            authorizing_user="bob",
        ),
    ]
    # The identity-provider connection starts from a refresh token, as after a completed consent.
    world.refresh_tokens[_secret(rng, 24)] = IssuedToken(world.consumers[1].key, "bob", IDP_SCOPES, None)


def seeded_secrets(world: World) -> dict[str, str]:
    """Environment variables holding the seeded credentials (names used by the connections file)."""
    idp = world.consumers[1]
    refresh = next(t for t, v in world.refresh_tokens.items() if v.consumer_key == idp.key and v.username == "bob")
    values = {
        "OX_BB_SANDBOX_APP_KEY": world.consumers[0].key,
        "OX_BB_SANDBOX_APP_SECRET": world.consumers[0].secret,
        "OX_BB_SANDBOX_IDP_KEY": idp.key,
        "OX_BB_SANDBOX_IDP_SECRET": idp.secret,
        "OX_BB_SANDBOX_IDP_REFRESH_TOKEN": refresh,
    }
    for token in world.api_tokens:
        values[f"OX_BB_SANDBOX_TOKEN_{token.name.upper().replace('-', '_')}"] = token.secret
    for token in world.access_tokens:
        values[f"OX_BB_SANDBOX_ACCESS_TOKEN_{token.name.upper().replace('-', '_')}"] = token.secret
    return values


# -- workspaces -----------------------------------------------------------------------------------
def _workspace(world: World, spec: SandboxSpec, index: int, anchor: datetime) -> Workspace:
    rng = random.Random(f"{spec.seed}:ws:{index}")
    slug = WORKSPACE_NAMES[index] if index < len(WORKSPACE_NAMES) else f"workspace-{index + 1}"
    members = {"alice": "owner", "bob": "member", "dave": "member"}
    if index == 0:
        members |= {"carol": "member", "erin": "collaborator"}
    ws = Workspace(
        slug=slug,
        name=slug.replace("-", " ").title(),
        is_private=True,
        created_on=anchor - timedelta(days=1400 - index),
        members=members,
        plan=spec.plan,
        paid_seats=spec.paid_seats,
    )
    ws.groups = {
        "administrators": Group("administrators", "Administrators", [u for u, r in members.items() if r != "member"]),
        "developers": Group("developers", "Developers", [u for u, r in members.items() if r == "member"]),
        "everyone": Group("everyone", "Everyone", sorted(members)),
    }
    for p in range(spec.projects):
        key = PROJECT_KEYS[p] if p < len(PROJECT_KEYS) else f"P{p + 1}"
        created = anchor - timedelta(days=1300 - p)
        ws.projects[key] = Project(
            key=key,
            name=key.title() + " Services",
            description=f"{key} repositories",
            is_private=True,
            created_on=created,
            updated_on=created + timedelta(days=30),
        )
    # Workspace-level settings: one unsecured secret-looking variable (BB-025), one hook without secret.
    npm_token = "npm_" + _secret(rng, 36)
    ws.variables = [
        Variable("NPM_TOKEN", npm_token, secured=False),
        Variable("SONAR_TOKEN", "", secured=True),
        Variable("DEFAULT_REGION", "eu-west-1", secured=False),
    ]
    ws.hooks = [
        Webhook(
            "https://hooks.example.com/bitbucket/audit",
            "audit log",
            ["repo:push"],
            True,
            secret_set=False,
            skip_cert_verification=False,
            created_at=anchor - timedelta(days=300),
        )
    ]
    world.planted += [
        _plant(
            "pipeline_variable",
            "BB-025",
            ws.slug,
            None,
            detail="Workspace variable NPM_TOKEN is not secured",
            value=npm_token,
            setting="workspace:pipelines-config/variables/NPM_TOKEN",
        ),
        _plant(
            "webhook",
            "BB-023",
            ws.slug,
            None,
            detail="Workspace webhook without a secret",
            setting="workspace:hooks/audit log",
        ),
    ]
    world.workspaces[slug] = ws
    if index == 0:
        world.access_tokens.append(AccessToken("workspace-token", "ATCTT3x" + _secret(rng, 40), slug, TOKEN_SCOPES))
    return ws


def _plant(kind: str, rule: str, workspace: str, repository: str | None, **extra) -> dict:
    return {"kind": kind, "rule": rule, "workspace": workspace, "repository": repository, **extra}


# -- repositories ---------------------------------------------------------------------------------
def _profile_for(ws_index: int, repo_index: int) -> str:
    profiles = list(content.PROFILES)
    return profiles[(repo_index + 3 * ws_index) % len(profiles)]


def _repository(
    world: World, ws: Workspace, spec: SandboxSpec, w: int, r: int, rng: random.Random, anchor: datetime
) -> Repository:
    profile = _profile_for(w, r)
    slug = profile if profile not in ws.repositories else f"{profile}-{r + 1}"
    clean = profile in content.CLEAN_PROFILES
    project_key = list(ws.projects)[r % len(ws.projects)]
    inactive = not clean and r % 7 == 5  # no push for over a year (BB-017)
    created = anchor - timedelta(days=rng.randint(500, 900))
    last_activity = anchor - (timedelta(days=400) if inactive else timedelta(days=rng.randint(1, 10)))
    files, plants = content.render_profile(profile, rng, repo_slug=slug)
    git_dir = world.root / "git" / ws.slug / f"{slug}.git"
    history = _build_history(git_dir, files, spec, rng, world, ws, created, last_activity)
    repo = Repository(
        workspace=ws.slug,
        slug=slug,
        name=slug,
        project_key=project_key,
        description=f"{profile} service generated by the ox-bb sandbox",
        is_private=True,
        fork_policy="no_public_forks",
        language=LANGUAGE.get(profile, ""),
        created_on=created,
        updated_on=last_activity,
        git=GitRepository(git_dir),
    )
    repo.pull_requests = history.pull_requests
    for p in plants:
        world.planted.append(
            _plant(
                p.kind,
                p.rule,
                ws.slug,
                slug,
                path=p.path,
                line=p.line,
                detail=p.detail,
                value=p.value,
                package=p.package,
                version=p.version,
                ecosystem=p.ecosystem,
                in_test_path=p.in_test_path,
                dev_only=p.dev_only,
            )
        )
    _settings(world, ws, repo, rng, anchor, r, clean, files, history)
    if inactive:
        world.planted.append(
            _plant("repository", "BB-017", ws.slug, slug, detail="No push for 400 days", setting="updated_on")
        )
    ws.repositories[slug] = repo
    return repo


@dataclass
class History:
    pull_requests: list[PullRequest]
    direct_commits: list[str]  # commits pushed straight to main (no pull request)
    stale_branches: list[str]
    main_head: str


class _FastImport:
    """Writes a git fast-import stream; marks resolve to commit hashes after the import."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.mark = 0

    def next_mark(self) -> int:
        self.mark += 1
        return self.mark

    def blob(self, data: bytes) -> int:
        mark = self.next_mark()
        self.chunks.append(b"blob\nmark :%d\ndata %d\n%s\n" % (mark, len(data), data))
        return mark

    def commit(
        self,
        ref: str,
        who: User,
        when: datetime,
        message: str,
        changes: dict[str, int],
        parent: int | None,
        merge: int | None = None,
        deletes: tuple[str, ...] = (),
    ) -> int:
        mark = self.next_mark()
        stamp = f"{who.display_name} <{who.email}> {int(when.timestamp())} +0000"
        msg = message.encode()
        out = [
            b"commit %s\nmark :%d\n" % (ref.encode(), mark),
            f"author {stamp}\ncommitter {stamp}\n".encode(),
            b"data %d\n%s\n" % (len(msg), msg),
        ]
        if parent is not None:
            out.append(b"from :%d\n" % parent)
        if merge is not None:
            out.append(b"merge :%d\n" % merge)
        for path in deletes:
            out.append(f"D {path}\n".encode())
        for path, blob_mark in sorted(changes.items()):
            out.append(f"M 100644 :{blob_mark} {path}\n".encode())
        self.chunks.append(b"".join(out) + b"\n")
        return mark

    def run(self, git_dir: Path) -> dict[int, str]:
        git_dir.parent.mkdir(parents=True, exist_ok=True)
        replace_bare_repository(git_dir)
        run_git(["init", "--quiet", "--bare", "--initial-branch=main", str(git_dir)])
        marks = git_dir / "ox-marks"
        subprocess.run(
            ["git", "--git-dir", str(git_dir), "fast-import", "--quiet", f"--export-marks={marks}"],
            input=b"".join(self.chunks),
            check=True,
            env=GIT_ENV,
            capture_output=True,
        )
        result = {}
        for line in marks.read_text().splitlines():
            mark, sha = line.split()
            result[int(mark[1:])] = sha
        marks.unlink()
        return result


def _build_history(
    git_dir: Path,
    files: dict[str, bytes],
    spec: SandboxSpec,
    rng: random.Random,
    world: World,
    ws: Workspace,
    created: datetime,
    last: datetime,
) -> History:
    fi = _FastImport()
    # carol is a contractor with write access who never works here (posture check BB-021).
    authors = [world.users[u] for u in sorted(ws.members) if u != "carol"]
    owner = world.users["alice"]
    blobs = {path: fi.blob(data) for path, data in files.items()}
    main = initial = fi.commit("refs/heads/main", owner, created, "Initial commit\n", blobs, None)
    span = (last - created).total_seconds()
    # Events spread over the repository's life, in order: direct pushes and pull requests.
    events = ["push"] * spec.commits + ["pr"] * spec.pull_requests
    rng.shuffle(events)
    times = sorted(created + timedelta(seconds=span * (i + 1) / (len(events) + 1)) for i in range(len(events)))
    if events:
        times[-1] = last
    changelog = [b"# Changelog\n"]
    direct: list[int] = []
    prs: list[dict] = []
    pr_states = ["MERGED", "MERGED_UNAPPROVED", "OPEN", "DECLINED", "MERGED", "SUPERSEDED"]
    for i, (event, when) in enumerate(zip(events, times)):
        who = authors[i % len(authors)]
        if event == "push":
            changelog.append(f"- {when.date()} maintenance change {i}\n".encode())
            main = fi.commit(
                "refs/heads/main",
                who,
                when,
                f"Maintenance change {i}\n",
                {"CHANGELOG.md": fi.blob(b"".join(changelog))},
                main,
            )
            direct.append(main)
            continue
        n = len(prs) + 1
        state = pr_states[(n - 1) % len(pr_states)]
        branch = f"feature/change-{n}"
        note = f"notes/change-{n}.md"
        when = when.replace(microsecond=0)
        opened = when - timedelta(hours=rng.randint(4, 72))
        base = main
        tip = fi.commit(
            f"refs/heads/{branch}",
            who,
            opened,
            f"Change {n}: implement\n",
            {note: fi.blob(f"# Change {n}\n\nWhat changed and why.\n".encode())},
            base,
        )
        merged = None
        if state.startswith("MERGED"):
            merged = fi.commit(
                "refs/heads/main",
                owner,
                when,
                f"Merged in {branch} (pull request #{n})\n",
                {note: fi.blob(f"# Change {n}\n\nWhat changed and why.\n".encode())},
                main,
                tip,
            )
            main = merged
            # The merged branch is deleted (close_source_branch), as teams usually do.
            fi.chunks.append(f"reset refs/heads/{branch}\n\n".encode())
        prs.append(
            {
                "n": n,
                "state": state,
                "branch": branch,
                "base": base,
                "tip": tip,
                "merged": merged,
                "author": who.username,
                "opened": opened,
                "closed": when,
            }
        )
    # Long-lived branches; every other one is stale (last commit long ago, BB-018).
    stale_names = []
    for b in range(spec.branches):
        name = ["develop", "release/1.x", "experiment/old-idea", "hotfix/legacy"][b % 4] + ("" if b < 4 else f"-{b}")
        stale = b % 2 == 1
        when = created + timedelta(days=5) if stale else last - timedelta(hours=2)
        fi.commit(
            f"refs/heads/{name}",
            authors[b % len(authors)],
            when,
            f"Work on {name}\n",
            {f"notes/{name.replace('/', '-')}.md": fi.blob(f"# {name}\n".encode())},
            initial if stale else main,
        )
        if stale:
            stale_names.append(name)
    marks = fi.run(git_dir)
    pull_requests = [_pull_request(world, ws, rng, pr, marks) for pr in prs]
    return History(
        pull_requests=pull_requests,
        direct_commits=[marks[m] for m in direct],
        stale_branches=stale_names,
        main_head=marks[main],
    )


def _pull_request(world: World, ws: Workspace, rng: random.Random, pr: dict, marks: dict[int, str]) -> PullRequest:
    reviewers = [u for u in sorted(ws.members) if u != pr["author"]][:2]
    state = pr["state"]
    approved = state in ("MERGED",)
    participants = [
        Participant(
            u,
            "REVIEWER",
            approved=approved and i == 0,
            state="approved"
            if approved and i == 0
            else ("changes_requested" if state == "DECLINED" and i == 0 else None),
            participated_on=pr["closed"] - timedelta(hours=1) if (approved and i == 0) or state == "DECLINED" else None,
        )
        for i, u in enumerate(reviewers)
    ]
    real_state = "MERGED" if state.startswith("MERGED") else state
    closed = real_state != "OPEN"
    return PullRequest(
        id=pr["n"],
        title=f"Change {pr['n']}: implement",
        description=f"Implements change {pr['n']}.",
        state=real_state,
        author=pr["author"],
        source_branch=pr["branch"],
        source_commit=marks[pr["tip"]],
        destination_branch="main",
        destination_commit=marks[pr["base"]],
        created_on=pr["opened"],
        updated_on=pr["closed"] if closed else pr["opened"] + timedelta(hours=1),
        merge_commit=marks[pr["merged"]] if pr["merged"] else None,
        closed_by=("alice" if closed else None),
        reason="Superseded by a later change"
        if state == "SUPERSEDED"
        else ("Not needed" if state == "DECLINED" else ""),
        participants=participants,
        reviewers=reviewers,
    )


# -- Bitbucket settings: the posture that checks BB-001…BB-025 read ---------------------------------
STRONG_RESTRICTIONS = [
    ("push", None, {"groups": ["administrators"]}),
    ("force", None, {}),
    ("delete", None, {}),
    ("require_approvals_to_merge", 2, {}),
    ("require_default_reviewer_approvals_to_merge", 1, {}),
    ("reset_pullrequest_approvals_on_change", None, {}),
    ("require_passing_builds_to_merge", 1, {}),
    ("enforce_merge_checks", None, {}),
    ("require_tasks_to_be_completed", None, {}),
    ("require_all_comments_resolved", None, {}),
    ("require_commits_behind", None, {}),
    ("require_no_changes_requested", None, {}),
]


def _restrictions(variant: str, mainbranch: str) -> tuple[list[dict], list[tuple[str, str]]]:
    """Branch restrictions of a posture variant, and the (check, detail) findings it plants."""
    if variant == "none":
        return [], [("BB-001", "Main branch has no restrictions")]
    if variant == "weak":
        rules = [
            {"kind": "require_approvals_to_merge", "pattern": mainbranch, "value": 1},
            {"kind": "push", "pattern": mainbranch, "groups": ["everyone"]},
        ]
        return rules, [
            ("BB-002", "Push to main is open to the 'everyone' group"),
            ("BB-003", "Force push to main is allowed"),
            ("BB-004", "Main can be deleted"),
            ("BB-006", "Only 1 approval required"),
            ("BB-007", "Approvals are not reset on change"),
            ("BB-008", "Passing builds not required"),
            ("BB-013", "'everyone' is exempt from push rules"),
        ]
    match = (
        {"branch_match_kind": "branching_model", "branch_type": "production"}
        if variant == "branching_model"
        else {"branch_match_kind": "glob", "pattern": mainbranch}
    )
    rules = [{"kind": kind, "value": value, **match, **extra} for kind, value, extra in STRONG_RESTRICTIONS]
    return rules, []


def _settings(
    world: World,
    ws: Workspace,
    repo: Repository,
    rng: random.Random,
    anchor: datetime,
    r: int,
    clean: bool,
    files: dict[str, bytes],
    history: History,
) -> None:
    plant = lambda rule, detail, **kw: world.planted.append(  # noqa: E731
        _plant("setting", rule, ws.slug, repo.slug, detail=detail, **kw)
    )
    variant = "strong" if clean else RESTRICTION_VARIANTS[r % len(RESTRICTION_VARIANTS)]
    rules, planted = _restrictions(variant, repo.mainbranch)
    repo.branch_restrictions = [{"id": 1000 * (r + 1) + i, **rule} for i, rule in enumerate(rules)]
    for rule_id, detail in planted:
        plant(rule_id, detail, setting="branch-restrictions")
    repo.branching_model = {
        "production": repo.mainbranch if variant == "branching_model" else None,
        "branch_types": {"feature": "feature/", "bugfix": "bugfix/", "release": "release/", "hotfix": "hotfix/"},
    }
    if clean:
        repo.default_reviewers = [u for u in ("erin", "dave") if u in ws.members]
    else:
        plant("BB-012", "No default reviewers", setting="default-reviewers")
    # Visibility and forking: one public repository without SECURITY.md, one private that allows forks.
    if r % 6 == 1:
        repo.is_private = False
        repo.fork_policy = "allow_forks"
        plant("BB-015", "Repository is public", setting="is_private")
        if "SECURITY.md" not in files:
            plant("BB-019", "Public repository has no SECURITY.md", setting="src/SECURITY.md")
    elif r % 6 == 2:
        repo.fork_policy = "allow_forks"
        plant("BB-016", "Private repository allows forks", setting="fork_policy")
    # Merged without approval, and pushed straight to main (evidence for BB-014).
    for pr in history.pull_requests:
        if pr.state == "MERGED" and not any(p.approved for p in pr.participants):
            plant("BB-014", f"Pull request #{pr.id} merged without approval", commit=pr.merge_commit)
    for sha in history.direct_commits:
        plant("BB-014", "Commit pushed straight to main without a pull request", commit=sha)
    for name in history.stale_branches:
        plant("BB-018", f"Branch {name} has had no commit for over 90 days", setting=f"refs/branches/{name}")
    # Explicit permissions: varied admin counts (BB-020) and an inactive writer (BB-021).
    repo.user_permissions = {"bob": "write" if r % 2 == 0 else "read"}
    if "carol" in ws.members and r % 3 == 0:
        repo.user_permissions["carol"] = "write"
        plant("BB-021", "carol has write access and no activity", setting="permissions-config/users/carol")
    if r % 5 == 4:
        repo.user_permissions["dave"] = "admin"
    repo.group_permissions = {"developers": "write" if r % 2 == 0 else "read", "administrators": "admin"}
    if r % 4 == 3:
        repo.user_permissions.pop("bob")  # a private repository bob cannot see (404 for him)
        repo.group_permissions = {"administrators": "admin"}
    admins = [u for u in world.users if world.permission(u, repo) == "admin"]
    if not 2 <= len(admins) <= 3:
        plant("BB-020", f"{len(admins)} administrators", setting="permissions/repositories")
    # Webhooks and deploy keys.
    if clean:
        repo.hooks = [
            Webhook(
                "https://ci.example.com/hooks/bitbucket",
                "CI trigger",
                ["repo:push"],
                True,
                secret_set=True,
                skip_cert_verification=False,
                created_at=anchor - timedelta(days=90),
            )
        ]
        repo.deploy_keys = [
            DeployKey(
                1,
                _ssh_key(rng),
                "ci-deploy",
                "ci@example.com",
                anchor - timedelta(days=100),
                anchor - timedelta(days=2),
            )
        ]
    else:
        repo.hooks = [
            Webhook(
                "https://chat.example.com/webhook/bitbucket",
                "chat notifications",
                ["repo:push", "pullrequest:fulfilled"],
                True,
                secret_set=False,
                skip_cert_verification=False,
                created_at=anchor - timedelta(days=200),
            ),
            Webhook(
                "http://legacy-ci.example.com:8080/bitbucket",
                "legacy CI",
                ["repo:push"],
                True,
                secret_set=True,
                skip_cert_verification=True,
                created_at=anchor - timedelta(days=700),
            ),
        ]
        plant("BB-023", "Webhook 'chat notifications' has no secret", setting="hooks/chat notifications")
        plant("BB-024", "Webhook 'legacy CI' uses http:// and skips TLS verification", setting="hooks/legacy CI")
        repo.deploy_keys = [
            DeployKey(
                7, _ssh_key(rng), "", "old-build-server", anchor - timedelta(days=800), anchor - timedelta(days=400)
            )
        ]
        plant("BB-022", "Deploy key unused for 400 days and unlabeled", setting="deploy-keys/7")
    _pipelines(world, ws, repo, rng, anchor, clean, files, history, plant)


def _pipelines(world, ws, repo, rng, anchor, clean, files, history, plant) -> None:
    if "bitbucket-pipelines.yml" not in files:
        return
    repo.pipelines_enabled = True
    if clean:
        repo.variables = [Variable("DEPLOY_TOKEN", "", secured=True), Variable("APP_ENV", "production", False)]
    else:
        secret = "wJalrXUtnFEMI/" + _secret(rng, 26)
        repo.variables = [
            Variable("AWS_SECRET_ACCESS_KEY", secret, secured=False),
            Variable("DB_PASSWORD", "", secured=True),
            Variable("APP_ENV", "staging", False),
        ]
        plant(
            "BB-025",
            "Repository variable AWS_SECRET_ACCESS_KEY is not secured",
            value=secret,
            setting="pipelines_config/variables/AWS_SECRET_ACCESS_KEY",
        )
    repo.environments = [
        Environment(
            name,
            name,
            rank,
            admin_only=clean and name == "Production",
            uuid=braced_uuid("environment", f"{repo.full_name}:{name}"),
        )
        for rank, name in enumerate(("Test", "Staging", "Production"))
    ]
    production = repo.environments[-1]
    if clean:
        production.variables = [Variable("DEPLOY_TOKEN", "", secured=True)]
    else:
        secret = "prod-" + _secret(rng, 28)
        production.variables = [
            Variable("PROD_DB_PASSWORD", secret, secured=False),
            Variable("REGION", "eu-west-1", secured=False),
        ]
        plant(
            "BB-025",
            "Deployment variable PROD_DB_PASSWORD (Production) is not secured",
            value=secret,
            setting="deployments_config/environments/Production/variables/PROD_DB_PASSWORD",
        )
    results = ["SUCCESSFUL", "SUCCESSFUL", "FAILED", "SUCCESSFUL", "ERROR"]
    head = history.main_head
    for n in range(1, 6):
        created = anchor - timedelta(days=6 - n, hours=rng.randint(0, 12))
        pr_run = n == 3 and history.pull_requests
        repo.pipelines.append(
            PipelineRun(
                build_number=n,
                created_on=created,
                completed_on=created + timedelta(minutes=rng.randint(2, 15)),
                state="COMPLETED",
                result=results[n - 1],
                ref_name=history.pull_requests[0].source_branch if pr_run else repo.mainbranch,
                commit=history.pull_requests[0].source_commit if pr_run else head,
                trigger="push",
                creator=repo_owner(ws),
                selector_type="pull-requests" if pr_run else "branches",
            )
        )


def repo_owner(ws: Workspace) -> str:
    return next(u for u, role in ws.members.items() if role == "owner")


def _ssh_key(rng: random.Random) -> str:
    return "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + _secret(rng, 43)
