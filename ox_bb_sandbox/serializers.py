"""Bitbucket Cloud JSON shapes (the `components/schemas` of the OpenAPI spec) for sandbox objects.

Every function returns the FULL representation; fields Bitbucket hides by default are removed
later by `fields.apply_fields` with the route's hidden list.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from ox_bb_pipeline.clock import isoformat

from .gitrepo import Commit
from .world import (
    DeployKey,
    Environment,
    Group,
    PipelineRun,
    Project,
    PullRequest,
    Repository,
    User,
    Variable,
    Webhook,
    Workspace,
    World,
)


@dataclass(frozen=True)
class Urls:
    """Absolute URLs as seen by the caller (the sandbox may listen on any port)."""

    web: str  # e.g. http://127.0.0.1:8123

    @property
    def api(self) -> str:
        return f"{self.web}/2.0"

    def link(self, path: str) -> dict:
        return {"href": f"{self.api}{path}"}

    def html(self, path: str) -> dict:
        return {"href": f"{self.web}{path}"}


def ts(moment) -> str | None:
    return isoformat(moment) if moment is not None else None


def user_summary(urls: Urls, user: User) -> dict:
    return {
        "type": "user",
        "uuid": user.uuid,
        "account_id": user.account_id,
        "nickname": user.username,
        "display_name": user.display_name,
        "links": {
            "self": urls.link(f"/users/{quote(user.uuid)}"),
            "html": urls.html(f"/{quote(user.uuid)}/"),
            "avatar": {"href": f"{urls.web}/account/{user.username}/avatar/"},
        },
    }


def user_full(urls: Urls, user: User) -> dict:
    return {
        **user_summary(urls, user),
        "username": user.username,
        "account_status": "active",
        "has_2fa_enabled": None,
        "created_on": ts(user.created_on),
        "is_staff": False,
        "location": None,
        "website": None,
    }


def author(urls: Urls, world: World, commit: Commit) -> dict:
    found = next((u for u in world.users.values() if u.email.lower() == commit.author_email.lower()), None)
    result = {"type": "author", "raw": commit.author_raw}
    if found:
        result["user"] = user_summary(urls, found)
    return result


def workspace_base(urls: Urls, ws: Workspace) -> dict:
    return {
        "type": "workspace_base",
        "uuid": ws.uuid,
        "slug": ws.slug,
        "links": {"self": urls.link(f"/workspaces/{ws.slug}"), "html": urls.html(f"/{ws.slug}/")},
    }


def workspace_summary(urls: Urls, ws: Workspace) -> dict:
    return {**workspace_base(urls, ws), "type": "workspace", "name": ws.name}


def workspace_full(urls: Urls, ws: Workspace) -> dict:
    return {
        **workspace_summary(urls, ws),
        "is_private": ws.is_private,
        "is_privacy_enforced": ws.is_private,
        "forking_mode": ws.forking_mode,
        "created_on": ts(ws.created_on),
        "updated_on": ts(ws.created_on),
        "links": {
            **workspace_base(urls, ws)["links"],
            "members": urls.link(f"/workspaces/{ws.slug}/members"),
            "projects": urls.link(f"/workspaces/{ws.slug}/projects"),
            "repositories": urls.link(f"/repositories/{ws.slug}"),
            "hooks": urls.link(f"/workspaces/{ws.slug}/hooks"),
        },
    }


def project_summary(urls: Urls, ws: Workspace, project: Project) -> dict:
    return {
        "type": "project",
        "key": project.key,
        "uuid": project.uuid,
        "name": project.name,
        "links": {
            "self": urls.link(f"/workspaces/{ws.slug}/projects/{project.key}"),
            "html": urls.html(f"/{ws.slug}/workspace/projects/{project.key}"),
        },
    }


def project_full(urls: Urls, ws: Workspace, project: Project) -> dict:
    has_public = any(not r.is_private for r in ws.repositories.values() if r.project_key == project.key)
    return {
        **project_summary(urls, ws, project),
        "description": project.description,
        "is_private": project.is_private,
        "has_publicly_visible_repos": has_public,
        "created_on": ts(project.created_on),
        "updated_on": ts(project.updated_on),
        "owner": {**workspace_summary(urls, ws), "type": "team", "username": ws.slug, "display_name": ws.name},
        "workspace": workspace_summary(urls, ws),
    }


def repository_summary(urls: Urls, repo: Repository) -> dict:
    return {
        "type": "repository",
        "full_name": repo.full_name,
        "name": repo.name,
        "uuid": repo.uuid,
        "links": {
            "self": urls.link(f"/repositories/{repo.full_name}"),
            "html": urls.html(f"/{repo.full_name}"),
            "avatar": {"href": f"{urls.web}/{repo.full_name}/avatar/32/"},
        },
    }


def repository_full(urls: Urls, world: World, repo: Repository, clone_user: str | None = None) -> dict:
    ws = world.workspaces[repo.workspace]
    project = ws.projects[repo.project_key]
    base = f"/repositories/{repo.full_name}"
    userinfo = f"{clone_user}@" if clone_user else ""
    host = urls.web.split("://", 1)[1]
    scheme = urls.web.split("://", 1)[0]
    result = {
        **repository_summary(urls, repo),
        "slug": repo.slug,
        "description": repo.description,
        "scm": "git",
        "website": None,
        "owner": {
            "type": "team",
            "uuid": ws.uuid,
            "username": ws.slug,
            "display_name": ws.name,
            "links": {"self": urls.link(f"/workspaces/{ws.slug}")},
        },
        "workspace": workspace_summary(urls, ws),
        "is_private": repo.is_private,
        "project": project_summary(urls, ws, project),
        "fork_policy": repo.fork_policy,
        "created_on": ts(repo.created_on),
        "updated_on": ts(repo.updated_on),
        "size": repo.git.disk_size() if repo.git.path.exists() else 0,
        "language": repo.language,
        "has_issues": repo.has_issues,
        "has_wiki": repo.has_wiki,
        "mainbranch": {"type": "branch", "name": repo.mainbranch},
        "override_settings": {"default_merge_strategy": True, "branching_model": True},
        "links": {
            **repository_summary(urls, repo)["links"],
            "pullrequests": urls.link(f"{base}/pullrequests"),
            "commits": urls.link(f"{base}/commits"),
            "forks": urls.link(f"{base}/forks"),
            "watchers": urls.link(f"{base}/watchers"),
            "downloads": urls.link(f"{base}/downloads"),
            "source": urls.link(f"{base}/src"),
            "hooks": urls.link(f"{base}/hooks"),
            "clone": [
                {"name": "https", "href": f"{scheme}://{userinfo}{host}/{repo.full_name}.git"},
                {"name": "ssh", "href": f"git@{host.split(':')[0]}:{repo.full_name}.git"},
            ],
        },
    }
    if repo.parent:
        parent_ws, parent_slug = repo.parent.split("/", 1)
        parent = world.repository(parent_ws, parent_slug)
        if parent is not None:
            result["parent"] = repository_summary(urls, parent)
    return result


def commit_json(urls: Urls, world: World, repo: Repository, commit: Commit) -> dict:
    base = f"/repositories/{repo.full_name}"
    return {
        "type": "commit",
        "hash": commit.hash,
        "date": ts(commit.date),
        "author": author(urls, world, commit),
        "message": commit.message,
        "summary": {
            "type": "rendered",
            "raw": commit.message,
            "markup": "markdown",
            "html": f"<p>{commit.message.strip()}</p>",
        },
        "parents": [
            {"type": "commit", "hash": p, "links": {"self": urls.link(f"{base}/commit/{p}")}} for p in commit.parents
        ],
        "repository": repository_summary(urls, repo),
        "links": {
            "self": urls.link(f"{base}/commit/{commit.hash}"),
            "html": urls.html(f"/{repo.full_name}/commits/{commit.hash}"),
            "diff": urls.link(f"{base}/diff/{commit.hash}"),
            "statuses": urls.link(f"{base}/commit/{commit.hash}/statuses"),
            "pullrequests": urls.link(f"{base}/commit/{commit.hash}/pullrequests"),
        },
    }


def commit_ref(urls: Urls, repo: Repository, sha: str | None) -> dict | None:
    if sha is None:
        return None
    return {
        "type": "commit",
        "hash": sha[:12],
        "links": {"self": urls.link(f"/repositories/{repo.full_name}/commit/{sha}")},
    }


def branch_json(urls: Urls, world: World, repo: Repository, name: str, sha: str, kind: str = "branch") -> dict:
    commit = repo.git.commit_by_hash(sha)
    base = f"/repositories/{repo.full_name}"
    collection = "branches" if kind == "branch" else "tags"
    result = {
        "type": kind,
        "name": name,
        "target": commit_json(urls, world, repo, commit) if commit else {"type": "commit", "hash": sha},
        "links": {
            "self": urls.link(f"{base}/refs/{collection}/{quote(name, safe='')}"),
            "commits": urls.link(f"{base}/commits/{quote(name, safe='')}"),
            "html": urls.html(f"/{repo.full_name}/branch/{quote(name, safe='')}"),
        },
    }
    if kind == "branch":
        result["merge_strategies"] = ["merge_commit", "squash", "fast_forward"]
        result["default_merge_strategy"] = "merge_commit"
    return result


def branch_restriction_json(urls: Urls, world: World, repo: Repository, rule: dict) -> dict:
    ws = world.workspaces[repo.workspace]
    result = {
        "type": "branchrestriction",
        "id": rule["id"],
        "kind": rule["kind"],
        "branch_match_kind": rule.get("branch_match_kind", "glob"),
        "value": rule.get("value"),
        "users": [user_summary(urls, world.users[u]) for u in rule.get("users", [])],
        "groups": [group_json(urls, ws, ws.groups[g]) for g in rule.get("groups", []) if g in ws.groups],
        "links": {"self": urls.link(f"/repositories/{repo.full_name}/branch-restrictions/{rule['id']}")},
    }
    if result["branch_match_kind"] == "branching_model":
        result["branch_type"] = rule["branch_type"]
        result["pattern"] = ""
    else:
        result["pattern"] = rule["pattern"]
    return result


def group_json(urls: Urls, ws: Workspace, group: Group) -> dict:
    return {
        "type": "group",
        "slug": group.slug,
        "name": group.name,
        "full_slug": f"{ws.slug}:{group.slug}",
        "members": len(group.members),
        "links": {"self": urls.link(f"/groups/{ws.slug}/{group.slug}")},
    }


def branching_model_json(urls: Urls, repo: Repository) -> dict:
    model = repo.branching_model or {}
    sha = dict(repo.git.branches()).get(repo.mainbranch)

    def branch_part(name: str | None, use_main: bool) -> dict | None:
        if name is None and not use_main:
            return None
        branch_name = repo.mainbranch if use_main else name
        target = dict(repo.git.branches()).get(branch_name)
        return {
            "name": branch_name,
            "use_mainbranch": use_main,
            "branch": {"type": "branch", "name": branch_name, "target": {"type": "commit", "hash": target or sha}}
            if target or sha
            else None,
        }

    return {
        "type": "branching_model",
        "development": branch_part(model.get("development"), model.get("development") is None),
        "production": branch_part(model.get("production"), False) if model.get("production") else None,
        "branch_types": [{"kind": k, "prefix": p} for k, p in model.get("branch_types", {}).items()],
        "links": {"self": urls.link(f"/repositories/{repo.full_name}/branching-model")},
    }


def participant_json(urls: Urls, world: World, participant) -> dict:
    return {
        "type": "participant",
        "user": user_summary(urls, world.users[participant.username]),
        "role": participant.role,
        "approved": participant.approved,
        "state": participant.state,
        "participated_on": ts(participant.participated_on),
    }


def pull_request_json(urls: Urls, world: World, repo: Repository, pr: PullRequest) -> dict:
    base = f"/repositories/{repo.full_name}/pullrequests/{pr.id}"

    def endpoint(branch: str, sha: str) -> dict:
        return {
            "branch": {"name": branch},
            "commit": commit_ref(urls, repo, sha),
            "repository": repository_summary(urls, repo),
        }

    return {
        "type": "pullrequest",
        "id": pr.id,
        "title": pr.title,
        "description": pr.description,
        "summary": {
            "type": "rendered",
            "raw": pr.description,
            "markup": "markdown",
            "html": f"<p>{pr.description}</p>",
        },
        "rendered": {
            "title": {"type": "rendered", "raw": pr.title, "markup": "markdown", "html": f"<p>{pr.title}</p>"}
        },
        "state": pr.state,
        "draft": pr.draft,
        "queued": False,
        "author": user_summary(urls, world.users[pr.author]),
        "source": endpoint(pr.source_branch, pr.source_commit),
        "destination": endpoint(pr.destination_branch, pr.destination_commit),
        "merge_commit": commit_ref(urls, repo, pr.merge_commit),
        "closed_by": user_summary(urls, world.users[pr.closed_by]) if pr.closed_by else None,
        "reason": pr.reason,
        "close_source_branch": pr.close_source_branch,
        "comment_count": len(pr.comments),
        "task_count": pr.task_count,
        "created_on": ts(pr.created_on),
        "updated_on": ts(pr.updated_on),
        "participants": [participant_json(urls, world, p) for p in pr.participants],
        "reviewers": [user_summary(urls, world.users[u]) for u in pr.reviewers],
        "links": {
            "self": urls.link(base),
            "html": urls.html(f"/{repo.full_name}/pull-requests/{pr.id}"),
            "commits": urls.link(f"{base}/commits"),
            "approve": urls.link(f"{base}/approve"),
            "diff": urls.link(f"{base}/diff"),
            "diffstat": urls.link(f"{base}/diffstat"),
            "comments": urls.link(f"{base}/comments"),
            "activity": urls.link(f"{base}/activity"),
            "merge": urls.link(f"{base}/merge"),
            "decline": urls.link(f"{base}/decline"),
            "statuses": urls.link(f"{base}/statuses"),
        },
    }


def pull_request_activity(urls: Urls, world: World, repo: Repository, pr: PullRequest) -> list[dict]:
    """Newest first, as Bitbucket lists it: updates, approvals, change requests and comments."""
    summary = {
        "type": "pullrequest",
        "id": pr.id,
        "title": pr.title,
        "links": {"self": urls.link(f"/repositories/{repo.full_name}/pullrequests/{pr.id}")},
    }
    events: list[tuple] = [
        (
            pr.created_on,
            {
                "update": {
                    "state": "OPEN",
                    "date": ts(pr.created_on),
                    "author": user_summary(urls, world.users[pr.author]),
                    "title": pr.title,
                    "description": pr.description,
                    "source": {
                        "branch": {"name": pr.source_branch},
                        "commit": commit_ref(urls, repo, pr.source_commit),
                    },
                    "destination": {
                        "branch": {"name": pr.destination_branch},
                        "commit": commit_ref(urls, repo, pr.destination_commit),
                    },
                    "reason": "",
                    "changes": {},
                }
            },
        )
    ]
    for p in pr.participants:
        if p.participated_on is None:
            continue
        who = user_summary(urls, world.users[p.username])
        if p.approved:
            events.append(
                (p.participated_on, {"approval": {"date": ts(p.participated_on), "user": who, "pullrequest": summary}})
            )
        elif p.state == "changes_requested":
            events.append(
                (
                    p.participated_on,
                    {"changes_requested": {"date": ts(p.participated_on), "user": who, "pullrequest": summary}},
                )
            )
    for comment in pr.comments:
        events.append((comment["_created"], {"comment": comment_json(urls, world, repo, pr, comment)}))
    if pr.state != "OPEN":
        events.append(
            (
                pr.updated_on,
                {
                    "update": {
                        "state": pr.state,
                        "date": ts(pr.updated_on),
                        "author": user_summary(urls, world.users[pr.closed_by or pr.author]),
                        "title": pr.title,
                        "description": pr.description,
                        "reason": pr.reason,
                        "changes": {},
                        "source": {
                            "branch": {"name": pr.source_branch},
                            "commit": commit_ref(urls, repo, pr.source_commit),
                        },
                        "destination": {
                            "branch": {"name": pr.destination_branch},
                            "commit": commit_ref(urls, repo, pr.destination_commit),
                        },
                    }
                },
            )
        )
    events.sort(key=lambda e: e[0], reverse=True)
    return [{**body, "pull_request": summary} for _, body in events]


def comment_json(urls: Urls, world: World, repo: Repository, pr: PullRequest, comment: dict) -> dict:
    result = {
        "type": "pullrequest_comment",
        "id": comment["id"],
        "content": {
            "type": "rendered",
            "raw": comment["raw"],
            "markup": "markdown",
            "html": f"<p>{comment['raw']}</p>",
        },
        "user": user_summary(urls, world.users[comment["user"]]) if comment.get("user") else None,
        "created_on": ts(comment["_created"]),
        "updated_on": ts(comment.get("_updated") or comment["_created"]),
        "deleted": False,
        "pending": False,
        "pullrequest": {"type": "pullrequest", "id": pr.id, "title": pr.title},
        "links": {"self": urls.link(f"/repositories/{repo.full_name}/pullrequests/{pr.id}/comments/{comment['id']}")},
    }
    if comment.get("inline"):
        result["inline"] = comment["inline"]
    return result


def variable_json(variable: Variable) -> dict:
    result = {"type": "pipeline_variable", "uuid": variable.uuid, "key": variable.key, "secured": variable.secured}
    if not variable.secured:
        result["value"] = variable.value
    return result


def pipeline_json(urls: Urls, world: World, repo: Repository, run: PipelineRun) -> dict:
    if run.state == "COMPLETED":
        state = {
            "type": "pipeline_state_completed",
            "name": "COMPLETED",
            "result": {"type": f"pipeline_state_completed_{run.result.lower()}", "name": run.result},
        }
    elif run.state == "IN_PROGRESS":
        state = {
            "type": "pipeline_state_in_progress",
            "name": "IN_PROGRESS",
            "stage": {"type": "pipeline_state_in_progress_running", "name": "RUNNING"},
        }
    else:
        state = {"type": "pipeline_state_pending", "name": "PENDING"}
    if run.selector_type == "pull-requests":
        target = {
            "type": "pipeline_pullrequest_target",
            "source": run.ref_name,
            "destination": repo.mainbranch,
            "commit": {"type": "commit", "hash": run.commit},
            "selector": {"type": "pull-requests", "pattern": "**"},
        }
    else:
        target = {
            "type": "pipeline_ref_target",
            "ref_type": "branch",
            "ref_name": run.ref_name,
            "commit": {"type": "commit", "hash": run.commit},
            "selector": {"type": run.selector_type, "pattern": run.ref_name},
        }
    duration = int((run.completed_on - run.created_on).total_seconds()) if run.completed_on else 0
    return {
        "type": "pipeline",
        "uuid": run.uuid,
        "build_number": run.build_number,
        "creator": user_summary(urls, world.users[run.creator]),
        "repository": repository_summary(urls, repo),
        "target": target,
        "trigger": {"type": f"pipeline_trigger_{run.trigger}", "name": run.trigger.upper()},
        "state": state,
        "created_on": ts(run.created_on),
        "completed_on": ts(run.completed_on),
        "build_seconds_used": duration,
        "run_number": 1,
        "links": {"self": urls.link(f"/repositories/{repo.full_name}/pipelines/{quote(run.uuid)}")},
    }


def environment_json(env: Environment) -> dict:
    return {
        "type": "deployment_environment",
        "uuid": env.uuid,
        "name": env.name,
        "slug": env.name.lower().replace(" ", "-"),
        "rank": env.rank,
        "environment_type": {
            "type": "deployment_environment_type",
            "name": env.environment_type,
            "rank": {"Test": 0, "Staging": 1, "Production": 2}[env.environment_type],
        },
        "category": {"name": env.environment_type},
        "hidden": False,
        "restrictions": {"type": "deployment_restrictions_configuration", "admin_only": env.admin_only},
        "lock": {"type": "deployment_environment_lock_open", "name": "OPEN"},
        "environment_lock_enabled": False,
        "deployment_gate_enabled": env.admin_only,
    }


def deploy_key_json(urls: Urls, world: World, repo: Repository, key: DeployKey) -> dict:
    return {
        "type": "deploy_key",
        "id": key.id,
        "key": key.key,
        "label": key.label,
        "comment": key.comment,
        "added_on": ts(key.added_on),
        "created_on": ts(key.added_on),
        "last_used": ts(key.last_used),
        "repository": repository_summary(urls, repo),
        "owner": {
            "type": "team",
            "uuid": world.workspaces[repo.workspace].uuid,
            "username": repo.workspace,
            "display_name": world.workspaces[repo.workspace].name,
        },
        "links": {"self": urls.link(f"/repositories/{repo.full_name}/deploy-keys/{key.id}")},
    }


def hook_json(urls: Urls, hook: Webhook, subject_type: str, subject: dict, path: str) -> dict:
    return {
        "type": "webhook_subscription",
        "uuid": hook.uuid,
        "url": hook.url,
        "description": hook.description,
        "subject_type": subject_type,
        "subject": subject,
        "active": hook.active,
        "events": list(hook.events),
        "created_at": ts(hook.created_at),
        "secret_set": hook.secret_set,
        "skip_cert_verification": hook.skip_cert_verification,
        "history_enabled": False,
        "read_only": False,
        "source": None,
        "links": {"self": urls.link(f"{path}/{quote(hook.uuid)}")},
    }


def error_body(message: str, detail=None, data: dict | None = None) -> dict:
    error: dict = {"message": message}
    if detail is not None:
        error["detail"] = detail
    if data is not None:
        error["data"] = data
    return {"type": "error", "error": error}
