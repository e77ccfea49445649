"""Extract one connection into raw table rows, spending as few REST requests as it can.

- Listings per workspace (workspaces, projects, repositories, workspace hooks and variables,
  effective repository permissions) cost a few paged requests for all repositories at once.
- Branch heads and main-branch history come from git (ls-remote, a shallow fetch).
- A repository whose `updated_on` and main head are unchanged since the last run costs no
  per-repository request: its rows are carried forward from the previous partition.
- Settings endpoints (restrictions, branching model, default reviewers, deploy keys, hooks,
  pipeline variables) are refreshed when a repository changes or when older than
  `settings_max_age`, oldest first, within the remaining hourly budget.
- A 403/404/410 on one repository's endpoint becomes an `extraction_status` row; the run goes on.
- An on-demand run re-reads only the repositories its `RepositoryFilter` matches; the other
  selected repositories keep the previous partition's rows, head and state.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from ..clock import Clock, SystemClock, isoformat, parse_when
from ..files import atomic_write_text
from ..locks import private_workdir
from ..redaction import looks_like_secret, redact_url, salted_hash
from .catalog import BRANCH_FIELDS, PR_FIELDS, REPO_FIELDS, endpoint  # noqa: F401 (re-exported)
from .errors import (
    BitbucketError,
    EndpointGoneError,
    MissingScopeError,
    NotFoundError,
    PermissionDeniedError,
)
from .gitcache import GitHistory
from .tables import TABLES

log = logging.getLogger(__name__)
PR_STATES = ("OPEN", "MERGED", "DECLINED", "SUPERSEDED")
# Per-repository settings tables and whether they need the pipelines file to apply.
SETTINGS_TABLES = (
    "branch_restrictions",
    "branching_models",
    "default_reviewers",
    "deploy_keys",
    "webhooks",
    "pipeline_variables",
)
REPO_TABLES = (
    "branches",
    "branch_restrictions",
    "branching_models",
    "default_reviewers",
    "pull_requests",
    "main_branch_commits",
    "pipeline_configs",
    "pipeline_variables",
    "pipeline_runs",
    "environments",
    "deploy_keys",
    "webhooks",
)


class RepositoryFilter:
    """Globs on `workspace/repo_slug` (e.g. `acme/payments-*`) narrowing a run to some repositories,
    for on-demand scans; no globs means every repository. It narrows what is re-read, never what
    the lake keeps: repositories outside it keep their previous rows."""

    def __init__(self, globs: list[str] | tuple[str, ...] = ()) -> None:
        bad = [g for g in globs if not isinstance(g, str) or g.count("/") != 1 or not all(g.split("/"))]
        if bad:
            raise ValueError(
                f"repository glob {bad[0]!r} must look like workspace/repo_slug "
                "(globs allowed on either side, e.g. acme/payments-* or */api)"
            )
        self.globs = tuple(globs)

    def __bool__(self) -> bool:
        return bool(self.globs)

    def matches(self, workspace: str, slug: str) -> bool:
        return not self.globs or any(fnmatch.fnmatchcase(f"{workspace}/{slug}", g) for g in self.globs)


@dataclass
class ExtractOptions:
    full_refresh: bool = False
    repositories: RepositoryFilter = field(default_factory=RepositoryFilter)  # re-read only these
    settings_max_age: timedelta = timedelta(hours=24)
    history_depth: int = 200  # main-branch commits kept per repository
    pipeline_runs: int = 20  # recent runs per repository
    workers: int = 4  # repositories read at the same time


@dataclass
class ExtractReport:
    rows: dict[str, list[dict]] = field(default_factory=dict)
    rest_requests: int = 0
    git_operations: int = 0
    repositories_seen: int = 0
    repositories_selected: int = 0
    repositories_changed: int = 0
    settings_refreshed: int = 0
    problems: list[str] = field(default_factory=list)


class StateStore:
    """Durable per-connection extraction state (watermarks, what each repository looked like)."""

    def __init__(self, connection: str, home: Path) -> None:
        self.path = home / "cache" / "state" / f"extract-{connection}.json"

    def load(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return {"repositories": {}}

    def save(self, state: dict) -> None:
        atomic_write_text(self.path, json.dumps(state, indent=1, sort_keys=True))


def _ts(value) -> datetime | None:
    return parse_when(value) if isinstance(value, str) and value else None


class Extractor:
    def __init__(
        self,
        client,
        git,
        *,
        previous: dict[str, list[dict]],
        state: dict,
        redact_yml: Callable[[str], tuple[str, int]],
        clock: Clock | None = None,
        options: ExtractOptions | None = None,
        home: Path,
    ) -> None:
        """`redact_yml` replaces every secret in a pipeline file's text (the secrets scanner's `redact_text`,
        passed in by the caller: the scanners sit above this layer) before it is kept."""
        self.client = client
        self.git = git
        self.conn = client.connection
        # Rows carried forward are looked up per repository: index them once, not per repository.
        self._previous_by_repository: dict[str, dict[str, list[dict]]] = {}
        for table, rows in previous.items():
            by_repository = self._previous_by_repository[table] = {}
            for row in rows:
                by_repository.setdefault(row.get("repository_uuid"), []).append(row)
        self.state = state
        self.redact_yml = redact_yml
        self.clock = clock or SystemClock()
        self.options = options or ExtractOptions()
        self.home = home
        self._git_root = home / "cache" / "git"
        self.history = GitHistory(git, self._git_root / self.conn.name)
        self.now = self.clock.now()
        self.report = ExtractReport(
            rows={
                t: []
                for t in (
                    "workspaces",
                    "projects",
                    "repositories",
                    "repository_permissions",
                    "extraction_status",
                    *REPO_TABLES,
                )
            }
        )

    # -- entry ---------------------------------------------------------------------------------
    def run(self) -> ExtractReport:
        rest_before, git_before = self.client.requests_sent, self.git.operations
        # Requests of earlier runs in this hour count against the budget too.
        self.client.budget.preload(self.state.get("request_log", []))
        workspaces = self._workspaces()
        refresh_queue: list[tuple[str, dict]] = []
        selected = []
        for ws in workspaces:
            self._projects(ws)
            repos = self._repositories(ws)
            self._workspace_settings(ws)
            self._repository_permissions(ws, repos)
            for repo in repos:
                if repo["selected"] and not self.options.repositories.matches(ws, repo["repository"]):
                    self._keep_previous(repo)
                elif repo["selected"]:
                    selected.append((ws, repo))
                else:
                    # Its rows leave the lake, so a later re-selection must read it afresh.
                    self.state["repositories"].pop(repo["repository_uuid"], None)
        # Per-repository reads are latency-bound: a few at a time (the budget still paces them). History is
        # fetched into scratch repositories (raw content) in a directory of this run alone; those a killed
        # run left behind are removed first.
        with private_workdir(self._git_root) as scratch, ThreadPoolExecutor(max_workers=self.options.workers) as pool:
            self.history.root = scratch / self.conn.name
            list(pool.map(lambda item: self._repository(*item, refresh_queue), selected))
            self._refresh_settings(refresh_queue, pool)
        for table, rows in self.report.rows.items():
            rows.sort(key=_row_order(table))
        self.state["request_log"] = self.client.budget.export()
        self.report.rest_requests = self.client.requests_sent - rest_before
        self.report.git_operations = self.git.operations - git_before
        return self.report

    def _guard(self, table: str, ws: str, repo: dict | None, fn, default=None):
        """Run one endpoint read; Bitbucket refusals become extraction_status rows."""
        try:
            return fn()
        except (PermissionDeniedError, MissingScopeError, NotFoundError, EndpointGoneError) as exc:
            status = {
                PermissionDeniedError: "forbidden",
                MissingScopeError: "missing_scope",
                NotFoundError: "not_found",
                EndpointGoneError: "gone",
            }[type(exc)]
            self.report.rows["extraction_status"].append(
                {
                    "connection": self.conn.name,
                    "workspace": ws,
                    "repository_uuid": repo and repo["repository_uuid"],
                    "repository": repo and repo["repository"],
                    "table_name": table,
                    "endpoint": exc.endpoint,
                    "status": status,
                    "detail": str(exc),
                    "checked_at": self.now,
                }
            )
            return default

    # -- workspace level -----------------------------------------------------------------------
    def _workspaces(self) -> list[str]:
        wanted = self.conn.workspaces
        if self.conn.method == "access_token":
            listed = [(w, None) for w in wanted or []]
        else:
            listed = [(w["workspace"]["slug"], w.get("administrator")) for w in self._paginate("user_workspaces")]
            if wanted:
                listed = [(w, admin) for w, admin in listed if w in wanted]
                missing = set(wanted) - {w for w, _ in listed}
                for name in sorted(missing):
                    self.report.problems.append(f"workspace '{name}' is configured but not visible to the credential")
        slugs = []
        for slug, admin in listed:
            # An unreadable workspace record (an access token without the account scope) is recorded
            # as a status row; its repositories may still be readable, so the workspace stays.
            detail = self._guard("workspaces", slug, None, lambda s=slug: self._get("workspace", ws=s), {})
            slugs.append(slug)
            self.report.rows["workspaces"].append(
                {
                    "connection": self.conn.name,
                    "workspace": slug,
                    "workspace_uuid": detail.get("uuid"),
                    "name": detail.get("name"),
                    "is_private": detail.get("is_private"),
                    "forking_mode": detail.get("forking_mode"),
                    "administrator": admin,
                    "created_on": _ts(detail.get("created_on")),
                    "extracted_at": self.now,
                }
            )
        return slugs

    def _projects(self, ws: str) -> None:
        items = self._guard("projects", ws, None, lambda: list(self._paginate("projects", ws=ws)), [])
        for p in items:
            self.report.rows["projects"].append(
                {
                    "connection": self.conn.name,
                    "workspace": ws,
                    "project_uuid": p.get("uuid"),
                    "project_key": p.get("key"),
                    "name": p.get("name"),
                    "is_private": p.get("is_private"),
                    "has_publicly_visible_repos": p.get("has_publicly_visible_repos"),
                    "created_on": _ts(p.get("created_on")),
                    "updated_on": _ts(p.get("updated_on")),
                }
            )

    def _repositories(self, ws: str) -> list[dict]:
        rows = []
        for r in self._paginate("repositories", ws=ws):
            clone = next((c["href"] for c in (r.get("links") or {}).get("clone", []) if c.get("name") == "https"), "")
            project = r.get("project") or {}
            row = {
                "connection": self.conn.name,
                "workspace": ws,
                "repository_uuid": r["uuid"],
                "repository": r["slug"],
                "full_name": r.get("full_name"),
                "name": r.get("name"),
                "project_key": project.get("key"),
                "project_name": project.get("name"),
                "mainbranch": (r.get("mainbranch") or {}).get("name"),
                "main_head": None,
                "is_private": r.get("is_private"),
                "fork_policy": r.get("fork_policy"),
                "language": r.get("language"),
                "size": r.get("size"),
                "created_on": _ts(r.get("created_on")),
                "updated_on": _ts(r.get("updated_on")),
                "clone_url": _strip_userinfo(clone),
                "parent": (r.get("parent") or {}).get("full_name"),
                "has_pipelines_yml": None,
                "selected": self.conn.selects(ws, project.get("key") or "", r["slug"]),
                "extracted_at": self.now,
            }
            rows.append(row)
        self.report.repositories_seen += len(rows)
        self.report.repositories_selected += sum(r["selected"] for r in rows)
        self.report.rows["repositories"].extend(rows)
        return rows

    def _workspace_settings(self, ws: str) -> None:
        hooks = self._guard("webhooks", ws, None, lambda: list(self._paginate("workspace_hooks", ws=ws)), [])
        for h in hooks:
            self.report.rows["webhooks"].append(self._hook_row(ws, None, "workspace", h))
        variables = self._guard(
            "pipeline_variables", ws, None, lambda: list(self._paginate("workspace_variables", ws=ws)), []
        )
        for v in variables:
            self.report.rows["pipeline_variables"].append(self._variable_row(ws, None, "workspace", None, v))

    def _repository_permissions(self, ws: str, repos: list[dict]) -> None:
        by_slug = {r["repository"]: r for r in repos}
        items = self._guard(
            "repository_permissions", ws, None, lambda: list(self._paginate("repository_permissions", ws=ws)), []
        )
        for p in items:
            repo = by_slug.get(((p.get("repository") or {}).get("full_name") or "/").split("/", 1)[1]) or by_slug.get(
                (p.get("repository") or {}).get("name")
            )
            if repo is None or not repo["selected"]:
                continue
            user = p.get("user") or {}
            self.report.rows["repository_permissions"].append(
                {
                    **self._repo_keys(repo),
                    "user_uuid": user.get("uuid"),
                    "nickname": user.get("nickname"),
                    "permission": p.get("permission"),
                }
            )

    # -- repository level ----------------------------------------------------------------------
    def _repo_keys(self, repo: dict) -> dict:
        return {
            "connection": self.conn.name,
            "workspace": repo["workspace"],
            "repository_uuid": repo["repository_uuid"],
            "repository": repo["repository"],
        }

    def _carry(self, table: str, repo: dict) -> list[dict]:
        return list(self._previous_by_repository.get(table, {}).get(repo["repository_uuid"], []))

    def _keep_previous(self, repo: dict) -> None:
        """A selected repository outside this run's filter: its rows, head and state stay as the
        last run left them (the partition is per connection, so they are written again unchanged)."""
        before = next(iter(self._carry("repositories", repo)), {})
        repo["main_head"], repo["has_pipelines_yml"] = before.get("main_head"), before.get("has_pipelines_yml")
        for table in (*REPO_TABLES, "extraction_status"):
            self.report.rows[table].extend(self._carry(table, repo))

    def _repository(self, ws: str, repo: dict, refresh_queue: list) -> None:
        uuid = repo["repository_uuid"]
        saved = self.state["repositories"].get(uuid, {})
        try:
            heads = self.git.ls_remote(ws, repo["repository"])
        except BitbucketError as exc:
            # Keep what the last run knew (stale, not lost) and say why it was not refreshed: the head too,
            # or the repository would read as empty (nothing scanned, BB-014 passing on no history).
            for table in ("branches", "main_branch_commits"):
                self._guard_status(ws, repo, table, f"{ws}/{repo['repository']}.git", "error", str(exc))
            self.report.problems.append(str(exc))
            before = next(iter(self._carry("repositories", repo)), {})
            repo["main_head"], repo["has_pipelines_yml"] = before.get("main_head"), before.get("has_pipelines_yml")
            for table in REPO_TABLES:
                self.report.rows[table].extend(self._carry(table, repo))
            if saved:
                self.state["repositories"][uuid] = saved
            return
        main = repo["mainbranch"] or heads.head_branch
        repo["main_head"] = heads.branches.get(main)
        changed = (
            self.options.full_refresh
            or saved.get("updated_on") != isoformat_or_none(repo["updated_on"])
            or saved.get("main_head") != repo["main_head"]
            or not saved
        )
        if not changed:
            repo["has_pipelines_yml"] = saved.get("has_pipelines_yml")
            for table in ("branches", "main_branch_commits", "pipeline_configs", "pipeline_runs", "environments"):
                self.report.rows[table].extend(self._carry(table, repo))
            # Approvals and declines do not move `updated_on`: pull requests of an unchanged repository
            # are re-read incrementally on the settings cadence, else carried forward.
            repo["_prs_pending"] = True
            refresh_queue.append((saved.get("settings_at") or "", repo))
            self.state["repositories"][uuid] = saved
            return
        self.report.repositories_changed += 1
        history, yml, history_failed = [], None, False
        if repo["main_head"]:
            try:
                history, yml = self.history.read(
                    ws,
                    repo["repository"],
                    main,
                    repo["main_head"],
                    self.options.history_depth,
                    "bitbucket-pipelines.yml",
                )
            except BitbucketError as exc:
                history_failed = True
                for table in ("main_branch_commits", "pipeline_configs"):
                    self._guard_status(ws, repo, table, f"{ws}/{repo['repository']}.git", "error", str(exc))
                self.report.problems.append(str(exc))
        self._branches(ws, repo, heads, main)
        watermark = None if self.options.full_refresh else saved.get("pr_watermark")
        prs = self._pull_requests(ws, repo, watermark)
        if history_failed:
            # Unread is not absent: the last run's commits and pipelines rows stay (stale, marked by the
            # status rows), and the state keeps the old head so that the next run reads it again.
            before = next(iter(self._carry("repositories", repo)), {})
            repo["has_pipelines_yml"] = saved.get("has_pipelines_yml", before.get("has_pipelines_yml"))
            for table in ("main_branch_commits", "pipeline_configs", "pipeline_runs", "environments"):
                self.report.rows[table].extend(self._carry(table, repo))
        else:
            repo["has_pipelines_yml"] = yml is not None
            self._main_commits(repo, history, prs)
            self._pipelines(ws, repo, yml)
        self.state["repositories"][uuid] = {
            **saved,
            "updated_on": isoformat_or_none(repo["updated_on"]),
            "main_head": saved.get("main_head") if history_failed else repo["main_head"],
            "has_pipelines_yml": repo["has_pipelines_yml"],
            "pr_watermark": max(
                (isoformat(p["updated_on"]) for p in prs if p["updated_on"]), default=saved.get("pr_watermark")
            ),
        }
        refresh_queue.append(("", repo))  # changed repositories refresh their settings first

    def _guard_status(self, ws, repo, table, endpoint, status, detail) -> None:
        self.report.rows["extraction_status"].append(
            {
                **self._repo_keys(repo),
                "table_name": table,
                "endpoint": endpoint,
                "status": status,
                "detail": detail,
                "checked_at": self.now,
            }
        )

    def _branches(self, ws: str, repo: dict, heads, main: str) -> None:
        dates = {}
        listed = self._guard(
            "branches", ws, repo, lambda: list(self._paginate("branches", ws=ws, repo=repo["repository"])), []
        )
        for b in listed:
            dates[b["name"]] = _ts((b.get("target") or {}).get("date"))
        for name, sha in sorted(heads.branches.items()):
            self.report.rows["branches"].append(
                {
                    **self._repo_keys(repo),
                    "branch": name,
                    "commit": sha,
                    "commit_date": dates.get(name),
                    "is_main": name == main,
                }
            )

    def _pull_requests(self, ws: str, repo: dict, watermark: str | None) -> list[dict]:
        listing = endpoint("pull_requests")
        params = [("state", s) for s in PR_STATES] + [("sort", "updated_on"), ("fields", listing.fields)]
        if watermark:
            params.append(("q", f"updated_on>={watermark}"))
        fetched = self._guard(
            "pull_requests",
            ws,
            repo,
            lambda: list(
                self.client.paginate(listing.url(ws=ws, repo=repo["repository"]), params, pagelen=listing.pagelen)
            ),
            None,
        )
        if fetched is None:
            return self._carry("pull_requests", repo)
        rows = {r["pr_id"]: r for r in (self._carry("pull_requests", repo) if watermark else [])}
        for pr in fetched:
            approvers = sorted(p["user"]["nickname"] for p in pr.get("participants") or [] if p.get("approved"))
            rows[pr["id"]] = {
                **self._repo_keys(repo),
                "pr_id": pr["id"],
                "title": pr.get("title"),
                "state": pr.get("state"),
                "author": (pr.get("author") or {}).get("nickname"),
                "source_branch": pr["source"]["branch"]["name"],
                "source_commit": (pr["source"].get("commit") or {}).get("hash"),
                "destination_branch": pr["destination"]["branch"]["name"],
                "destination_commit": (pr["destination"].get("commit") or {}).get("hash"),
                "merge_commit": (pr.get("merge_commit") or {}).get("hash"),
                "closed_by": (pr.get("closed_by") or {}).get("nickname"),
                "approvals": len(approvers),
                "approvers": approvers,
                "reviewers": sorted(r.get("nickname", "") for r in pr.get("reviewers") or []),
                "comment_count": pr.get("comment_count"),
                "task_count": pr.get("task_count"),
                "created_on": _ts(pr.get("created_on")),
                "updated_on": _ts(pr.get("updated_on")),
            }
        result = sorted(rows.values(), key=lambda r: r["pr_id"])
        self.report.rows["pull_requests"].extend(result)
        return result

    def _main_commits(self, repo: dict, history: list[dict], prs: list[dict]) -> None:
        merged = {p["merge_commit"]: p for p in prs if p["state"] == "MERGED" and p.get("merge_commit")}
        for c in history:
            # Bitbucket reports merge commits by a 12-character prefix.
            pr = next((p for short, p in merged.items() if c["commit"].startswith(short)), None)
            self.report.rows["main_branch_commits"].append(
                {
                    **self._repo_keys(repo),
                    **c,
                    "pr_id": pr["pr_id"] if pr else None,
                    "pr_approvals": pr["approvals"] if pr else None,
                }
            )

    def _pipelines(self, ws: str, repo: dict, yml: str | None) -> None:
        at = {"ws": ws, "repo": repo["repository"]}
        enabled = None
        if yml is not None:
            config = self._guard("pipeline_configs", ws, repo, lambda: self._get("pipelines_config", **at))
            enabled = config.get("enabled") if config else None
        self.report.rows["pipeline_configs"].append(
            {
                **self._repo_keys(repo),
                "enabled": enabled,
                "main_commit": repo["main_head"],
                "yml_present": yml is not None,
                "yml": self.redact_yml(yml)[0] if yml is not None else None,
            }
        )
        if yml is None:
            return  # no pipelines file: runs and environments cannot exist, skip their endpoints
        runs = self._guard(
            "pipeline_runs",
            ws,
            repo,
            lambda: self.client.get_json(
                endpoint("pipeline_runs").url(**at), {"sort": "-created_on", "pagelen": self.options.pipeline_runs}
            ),
            None,
        )
        for run in (runs or {}).get("values", []):
            target = run.get("target") or {}
            state = run.get("state") or {}
            created, completed = _ts(run.get("created_on")), _ts(run.get("completed_on"))
            self.report.rows["pipeline_runs"].append(
                {
                    **self._repo_keys(repo),
                    "pipeline_uuid": run.get("uuid"),
                    "build_number": run.get("build_number"),
                    "target_type": target.get("type"),
                    "ref_name": target.get("ref_name") or target.get("source"),
                    "selector_type": (target.get("selector") or {}).get("type"),
                    "selector_pattern": (target.get("selector") or {}).get("pattern"),
                    "trigger": (run.get("trigger") or {}).get("name"),
                    "state": state.get("name"),
                    "result": (state.get("result") or {}).get("name"),
                    "commit": (target.get("commit") or {}).get("hash"),
                    "created_on": created,
                    "completed_on": completed,
                    "duration_seconds": run.get("build_seconds_used"),
                }
            )
        envs = self._guard("environments", ws, repo, lambda: list(self._paginate("environments", **at)), [])
        for e in envs:
            self.report.rows["environments"].append(
                {
                    **self._repo_keys(repo),
                    "environment_uuid": e.get("uuid"),
                    "name": e.get("name"),
                    "environment_type": (e.get("environment_type") or {}).get("name"),
                    "rank": e.get("rank"),
                    "admin_only": (e.get("restrictions") or {}).get("admin_only"),
                    "deployment_gate_enabled": e.get("deployment_gate_enabled"),
                }
            )

    # -- settings, on a cadence ----------------------------------------------------------------
    def _refresh_settings(self, queue: list[tuple[str, dict]], pool: ThreadPoolExecutor) -> None:
        """Changed and never-read repositories always (the budget paces them); then stale settings,
        oldest first, only while this hour's budget lasts — the rest wait for the next run."""
        budget_left = self.client.budget.per_hour - self.client.budget.used
        cutoff = isoformat(self.now - self.options.settings_max_age)
        chosen = []
        for stamp, repo in sorted(queue, key=lambda item: (item[0], item[1]["repository_uuid"])):
            # restrictions, model, reviewers, keys, hooks (+ variables at repository and deployment level, + PRs)
            cost = 5 + (4 if repo.get("has_pipelines_yml") else 0) + (1 if repo.get("_prs_pending") else 0)
            due = stamp == "" or (stamp <= cutoff and budget_left >= cost)
            if not due:
                for table in (*SETTINGS_TABLES, *(("pull_requests",) if repo.get("_prs_pending") else ())):
                    self.report.rows[table].extend(self._carry(table, repo))
                continue
            budget_left -= cost
            chosen.append(repo)
        list(pool.map(self._refresh_repository, chosen))
        self.report.settings_refreshed += len(chosen)

    def _refresh_repository(self, repo: dict) -> None:
        self._settings(repo)
        saved = self.state["repositories"].setdefault(repo["repository_uuid"], {})
        if repo.pop("_prs_pending", False):
            prs = self._pull_requests(repo["workspace"], repo, saved.get("pr_watermark"))
            saved["pr_watermark"] = max(
                (isoformat(p["updated_on"]) for p in prs if p["updated_on"]), default=saved.get("pr_watermark")
            )
        saved["settings_at"] = isoformat(self.now)

    def _settings(self, repo: dict) -> None:
        ws = repo["workspace"]
        at = {"ws": ws, "repo": repo["repository"]}
        keys = self._repo_keys(repo)

        def paged(table, name, **more):
            return self._guard(table, ws, repo, lambda: list(self._paginate(name, **at, **more)), [])

        for r in paged("branch_restrictions", "branch_restrictions"):
            self.report.rows["branch_restrictions"].append(
                {
                    **keys,
                    "restriction_id": r.get("id"),
                    "kind": r.get("kind"),
                    "branch_match_kind": r.get("branch_match_kind"),
                    "pattern": r.get("pattern") or None,
                    "branch_type": r.get("branch_type"),
                    "value": r.get("value"),
                    "users": sorted(u.get("nickname", "") for u in r.get("users") or []),
                    "groups": sorted(g.get("slug", "") for g in r.get("groups") or []),
                }
            )
        model = self._guard("branching_models", ws, repo, lambda: self._get("branching_model", **at))
        if model:
            self.report.rows["branching_models"].append(
                {
                    **keys,
                    "development_branch": (model.get("development") or {}).get("name"),
                    "production_branch": (model.get("production") or {}).get("name"),
                    "branch_types": json.dumps(model.get("branch_types") or []),
                }
            )
        for u in paged("default_reviewers", "default_reviewers"):
            self.report.rows["default_reviewers"].append(
                {
                    **keys,
                    "user_uuid": u.get("uuid"),
                    "nickname": u.get("nickname"),
                    "display_name": u.get("display_name"),
                }
            )
        for k in paged("deploy_keys", "deploy_keys"):
            self.report.rows["deploy_keys"].append(
                {
                    **keys,
                    "key_id": k.get("id"),
                    "label": k.get("label"),
                    "comment": k.get("comment"),
                    "key_fingerprint": hashlib.sha256((k.get("key") or "").encode()).hexdigest(),
                    "added_on": _ts(k.get("added_on") or k.get("created_on")),
                    "last_used": _ts(k.get("last_used")),
                }
            )
        for h in paged("webhooks", "repository_hooks"):
            self.report.rows["webhooks"].append(self._hook_row(ws, repo, "repository", h))
        if repo.get("has_pipelines_yml"):
            for v in paged("pipeline_variables", "repository_variables"):
                self.report.rows["pipeline_variables"].append(self._variable_row(ws, repo, "repository", None, v))
            environments = [
                e for e in self.report.rows["environments"] if e["repository_uuid"] == repo["repository_uuid"]
            ]
            for env in environments:
                for v in paged(
                    "pipeline_variables", "deployment_variables", environment=quote(env["environment_uuid"])
                ):
                    self.report.rows["pipeline_variables"].append(
                        self._variable_row(ws, repo, "deployment", env["name"], v)
                    )

    # -- requests, as the endpoint catalog declares them ----------------------------------------
    def _paginate(self, name: str, **values: str):
        listing = endpoint(name)
        return self.client.paginate(listing.url(**values), listing.params or None, pagelen=listing.pagelen)

    def _get(self, name: str, **values: str) -> dict:
        return self.client.get_json(endpoint(name).url(**values))

    # -- row builders --------------------------------------------------------------------------
    def _hook_row(self, ws: str, repo: dict | None, level: str, h: dict) -> dict:
        return {
            "connection": self.conn.name,
            "workspace": ws,
            "repository_uuid": repo and repo["repository_uuid"],
            "repository": repo and repo["repository"],
            "level": level,
            "hook_uuid": h.get("uuid"),
            "url": redact_url(h.get("url") or ""),
            "description": h.get("description"),
            "events": list(h.get("events") or []),
            "active": h.get("active"),
            "secret_set": h.get("secret_set"),
            "skip_cert_verification": h.get("skip_cert_verification"),
            "created_at": _ts(h.get("created_at")),
        }

    def _variable_row(self, ws: str, repo: dict | None, level: str, environment: str | None, v: dict) -> dict:
        value = v.get("value") if not v.get("secured") else None
        return {
            "connection": self.conn.name,
            "workspace": ws,
            "repository_uuid": repo and repo["repository_uuid"],
            "repository": repo and repo["repository"],
            "level": level,
            "environment": environment,
            "variable_uuid": v.get("uuid"),
            "key": v.get("key"),
            "secured": bool(v.get("secured")),
            "value_looks_secret": looks_like_secret(v.get("key", ""), value) if value else None,
            "value_hash": salted_hash(value, self.home) if value else None,
            "value_length": len(value) if value else None,
        }


def _row_order(table: str):
    """A stable order for a table's rows: by workspace, repository, then the table's own key."""
    names = [name for name, _, _ in TABLES[table][1]]
    key_columns = [n for n in ("workspace", "repository", "level") if n in names] + [
        n for n in names if n not in ("connection", "workspace", "repository_uuid", "repository", "level")
    ][:2]
    return lambda row: tuple("" if row.get(c) is None else str(row.get(c)) for c in key_columns)


def _strip_userinfo(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.split('@', 1)[-1]}" if sep else url


def isoformat_or_none(value) -> str | None:
    return isoformat(value) if value else None
