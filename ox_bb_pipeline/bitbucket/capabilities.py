"""VERIFY CONNECTIVITY: authenticate a connection, list its workspaces and probe every capability
the pipeline uses, naming the missing scope (Bitbucket's name) and what stops working without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import catalog
from .errors import (
    AuthenticationError,
    BitbucketError,
    MissingScopeError,
    NotFoundError,
    PermissionDeniedError,
)


@dataclass(frozen=True)
class Capability:
    """A permission the pipeline uses, probed by reading one endpoint of the catalog (catalog.py), which
    says its path and the scope it needs."""

    name: str
    endpoint: str  # a name in catalog.ENDPOINTS; {ws} and {repo} are the first visible workspace and repository
    required: bool  # without it nothing useful runs; otherwise the connection is degraded
    loses: str  # what stops working without it

    @property
    def path(self) -> str:
        return catalog.endpoint(self.endpoint).path

    @property
    def scope(self) -> str:
        """API-token scope name, as the connector's setup page lists them."""
        return catalog.endpoint(self.endpoint).api_token_scope

    @property
    def legacy_scope(self) -> str:
        """OAuth consumer / access-token scope name."""
        return catalog.endpoint(self.endpoint).legacy_scope

    @property
    def admin(self) -> bool:
        return catalog.endpoint(self.endpoint).access in ("admin", "ws_admin")

    @property
    def single(self) -> bool:
        """An object, not a paginated list."""
        return catalog.endpoint(self.endpoint).paging == "single"

    @property
    def params(self) -> dict | None:
        return None if self.single else {"pagelen": 1}


CAPABILITIES: tuple[Capability, ...] = (
    Capability("read repositories", "repositories", True, "everything: repositories cannot be listed or scanned"),
    Capability(
        "read projects", "projects", False, "projects table; include/exclude globs on PROJECT_KEY see no project names"
    ),
    Capability(
        "read pull requests",
        "pull_requests",
        False,
        "pull_requests, default_reviewers; BB-012 and BB-014 (merged without approval)",
    ),
    Capability(
        "read pipelines", "pipeline_runs", False, "pipeline_runs, environments, pipeline_variables; BB-025, BB-030"
    ),
    Capability("read webhooks", "repository_hooks", False, "webhooks; BB-023, BB-024"),
    Capability(
        "admin: branch restrictions",
        "branch_restrictions",
        False,
        "branch_restrictions; BB-001…BB-013 become not_evaluable",
    ),
    Capability("admin: deploy keys", "deploy_keys", False, "deploy_keys; BB-022"),
    Capability("admin: pipeline configuration", "pipelines_config", False, "pipeline_configs.enabled"),
)


@dataclass(frozen=True)
class WriteCapability:
    """A write that pull-request scans make, probed without writing anything: the request names an object that
    does not exist, so Bitbucket refuses it for a missing scope or right (403) before it finds nothing (404)."""

    name: str
    method: str
    path: str  # {ws} and {repo} as for Capability
    scope: str  # API-token scope
    legacy_scope: str  # OAuth consumer / access-token scope
    loses: str


NO_COMMIT = "0" * 40
# Probed only for connections with pull_request_scans.enabled (nothing else writes to Bitbucket but workflows).
WRITE_CAPABILITIES: tuple[WriteCapability, ...] = (
    WriteCapability(
        "write: Code Insights reports",
        "PUT",
        "/repositories/{ws}/{repo}/commit/" + NO_COMMIT + "/reports/ox-bb-verify",
        "write:repository:bitbucket",
        "repository:write",
        "pull-request scans write no report or annotations (scan-pr, pull_request_scan_sensor)",
    ),
    WriteCapability(
        "write: pull-request comments",
        "POST",
        "/repositories/{ws}/{repo}/pullrequests/0/comments",
        "write:pullrequest:bitbucket",
        "pullrequest:write",
        "pull-request scans write no comment",
    ),
)


@dataclass
class Probe:
    capability: str
    ok: bool
    required: bool
    missing: str = ""  # the missing scope or permission, by Bitbucket's name
    loses: str = ""
    detail: str = ""


@dataclass
class Verification:
    connection: str
    method: str
    authenticated: bool = False
    account: str = ""
    workspaces: list[str] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    error: str = ""
    requests_per_hour: int = 0  # the pace the client settled on: the announced limit within the budget
    announced_limit: int | None = None  # X-RateLimit-Limit (scaled limits: access tokens only)

    def limit_line(self) -> str:
        if self.announced_limit is None:
            return (
                f"rate limit: {self.requests_per_hour} requests/hour (the configured budget; Bitbucket "
                "announced none: scaled limits need an access token on a Standard/Premium workspace)"
            )
        capped = " (capped by the configured budget)" if self.requests_per_hour < self.announced_limit else ""
        return f"rate limit: {self.requests_per_hour} requests/hour; Bitbucket announces {self.announced_limit}{capped}"

    @property
    def status(self) -> str:
        """ok | degraded | failed"""
        if not self.authenticated or self.error or any(not p.ok and p.required for p in self.probes):
            return "failed"
        return "degraded" if any(not p.ok for p in self.probes) else "ok"


def verify(client, git=None, workspaces: list[str] | None = None) -> Verification:
    """Probe one connection. Never raises for Bitbucket answers: they become rows of the result."""
    result = _verify(client, git, workspaces)
    result.requests_per_hour, result.announced_limit = client.effective_limit, client.budget.announced
    return result


def _verify(client, git, workspaces: list[str] | None) -> Verification:
    conn = client.connection
    result = Verification(connection=conn.name, method=conn.method)
    legacy = conn.method != "token"
    try:
        if conn.method == "access_token":
            result.workspaces = list(conn.workspaces or [])
            if not result.workspaces:
                result.error = "access tokens cannot list workspaces: set `workspaces: [<slug>]` on this connection"
                return result
            client.get_json(catalog.endpoint("repositories").url(ws=result.workspaces[0]), {"pagelen": 1})
            result.account = f"access token for {result.workspaces[0]}"
            try:  # the workspaces table needs the workspace record too
                client.get_json(catalog.endpoint("workspace").url(ws=result.workspaces[0]))
            except MissingScopeError as exc:
                result.probes.append(
                    Probe(
                        "read workspace",
                        False,
                        False,
                        ", ".join(exc.required) or "account",
                        "workspaces table (name, privacy, forking mode)",
                    )
                )
        else:
            user = client.get_json(catalog.endpoint("user").url())
            result.account = user.get("display_name") or user.get("nickname") or ""
            listing = catalog.endpoint("user_workspaces")
            listed = [w["workspace"]["slug"] for w in client.paginate(listing.url(), pagelen=listing.pagelen)]
            result.workspaces = [
                w for w in listed if not workspaces and not conn.workspaces or w in (workspaces or conn.workspaces)
            ]
        result.authenticated = True
    except AuthenticationError as exc:
        result.error = str(exc)
        return result
    except BitbucketError as exc:
        result.authenticated = not isinstance(exc, AuthenticationError)
        result.error = str(exc)
        return result
    if not result.workspaces:
        result.error = "the credential sees no workspace (or none of the configured ones)"
        return result
    ws = result.workspaces[0]
    repo = _first_repository(client, ws)
    for cap in CAPABILITIES:
        if "{repo}" in cap.path and repo is None:
            result.probes.append(
                Probe(cap.name, False, cap.required, "", cap.loses, "no repository visible to probe with")
            )
            continue
        scope = cap.legacy_scope if legacy else cap.scope
        try:
            client.get_json(cap.path.format(ws=ws, repo=repo), cap.params)
            result.probes.append(Probe(cap.name, True, cap.required))
        except MissingScopeError as exc:
            result.probes.append(Probe(cap.name, False, cap.required, ", ".join(exc.required) or scope, cap.loses))
        except PermissionDeniedError:
            result.probes.append(Probe(cap.name, False, cap.required, f"admin rights on {ws}/{repo}", cap.loses))
        except NotFoundError as exc:
            result.probes.append(Probe(cap.name, False, cap.required, scope, cap.loses, str(exc)))
        except BitbucketError as exc:
            result.probes.append(Probe(cap.name, False, cap.required, "", cap.loses, str(exc)))
    if repo is not None and getattr(getattr(conn, "pull_request_scans", None), "enabled", False):
        result.probes += [_probe_write(client, cap, ws, repo, legacy) for cap in WRITE_CAPABILITIES]
    if git is not None and repo is not None:
        try:
            git.ls_remote(ws, repo)
            result.probes.append(Probe("git clone (read code)", True, True))
        except BitbucketError as exc:
            result.probes.append(
                Probe(
                    "git clone (read code)",
                    False,
                    True,
                    "read:repository:bitbucket",
                    "every code scanner (secrets, SAST, IaC, SCA)",
                    str(exc),
                )
            )
    return result


def _first_repository(client, ws: str) -> str | None:
    try:
        page = client.get_json(catalog.endpoint("repositories").url(ws=ws), {"pagelen": 1, "sort": "slug"})
    except BitbucketError:
        return None
    values = page.get("values") or []
    return values[0]["slug"] if values else None


def _probe_write(client, cap: WriteCapability, ws: str, repo: str, legacy: bool) -> Probe:
    try:
        client.send_json(cap.method, cap.path.format(ws=ws, repo=repo), {})
    except NotFoundError:  # past the scope and permission checks: only the probe's object is missing
        return Probe(cap.name, True, False)
    except MissingScopeError as exc:
        return Probe(
            cap.name, False, False, ", ".join(exc.required) or (cap.legacy_scope if legacy else cap.scope), cap.loses
        )
    except PermissionDeniedError:
        return Probe(cap.name, False, False, f"write rights on {ws}/{repo}", cap.loses)
    except BitbucketError as exc:
        return Probe(cap.name, False, False, "", cap.loses, str(exc))
    return Probe(cap.name, True, False)  # never expected: nothing can have been written for a missing object
