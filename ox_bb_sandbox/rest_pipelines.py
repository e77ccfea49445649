"""REST: Pipelines configuration, variables, runs and environments; Code Insights reports (write)."""

from __future__ import annotations

import json

from ox_bb_pipeline.clock import parse_when

from . import serializers as s
from .app import ApiError, Page, RequestContext, json_response, not_found, route
from .world import braced_uuid

PIPELINE_SORT = {
    "created_on",
    "-created_on",
    "creator.uuid",
    "-creator.uuid",
    "run_creation_date",
    "-run_creation_date",
}
REPORT_TYPES = ("SECURITY", "COVERAGE", "TEST", "BUG")
REPORT_RESULTS = ("PASSED", "FAILED", "PENDING")
ANNOTATION_TYPES = ("VULNERABILITY", "CODE_SMELL", "BUG")
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")


@route("/repositories/{workspace}/{repo_slug}/pipelines_config", scope="repository:admin", access="admin")
def pipelines_config(ctx: RequestContext, workspace: str, repo_slug: str) -> dict:
    repo = ctx.repository(workspace, repo_slug)
    return {
        "type": "repository_pipelines_configuration",
        "enabled": repo.pipelines_enabled,
        "repository": s.repository_summary(ctx.urls, repo),
    }


@route("/repositories/{workspace}/{repo_slug}/pipelines_config/variables", scope="pipeline", access="admin")
def repository_variables(ctx: RequestContext, workspace: str, repo_slug: str) -> Page:
    repo = ctx.repository(workspace, repo_slug)
    return Page([s.variable_json(v) for v in repo.variables])


@route("/repositories/{workspace}/{repo_slug}/pipelines", scope="pipeline")
def pipelines(ctx: RequestContext, workspace: str, repo_slug: str) -> Page:
    """Plain query filters, not BBQL: status, trigger_type, target.branch, target.ref_name, created_on."""
    repo = ctx.repository(workspace, repo_slug)
    args = ctx.request.args
    sort = args.get("sort", "created_on")
    if sort not in PIPELINE_SORT:
        raise ApiError(400, f'Invalid sort field: "{sort}"')
    runs = list(repo.pipelines)
    if args.get("status"):
        wanted = {v.upper() for v in args.getlist("status")}
        runs = [r for r in runs if r.state in wanted or (r.result or "") in wanted]
    if args.get("trigger_type"):
        runs = [r for r in runs if r.trigger.upper() == args["trigger_type"].upper()]
    branch = args.get("target.branch") or args.get("target.ref_name")
    if branch:
        runs = [r for r in runs if r.ref_name == branch]
    if args.get("created_on"):
        since = parse_when(args["created_on"])
        if since is None:
            raise ApiError(400, "Invalid created_on", detail="use an ISO-8601 timestamp")
        runs = [r for r in runs if r.created_on >= since]
    runs.sort(key=lambda r: (r.created_on, r.build_number), reverse=sort.startswith("-"))
    return Page([s.pipeline_json(ctx.urls, ctx.world, repo, r) for r in runs], presorted=True)


@route("/repositories/{workspace}/{repo_slug}/environments", scope="pipeline")
def environments(ctx: RequestContext, workspace: str, repo_slug: str) -> Page:
    repo = ctx.repository(workspace, repo_slug)
    return Page([s.environment_json(e) for e in repo.environments])


@route(
    "/repositories/{workspace}/{repo_slug}/deployments_config/environments/{environment_uuid}/variables",
    scope="pipeline",
    access="admin",
)
def deployment_variables(ctx: RequestContext, workspace: str, repo_slug: str, environment_uuid: str) -> Page:
    repo = ctx.repository(workspace, repo_slug)
    env = next((e for e in repo.environments if e.uuid == environment_uuid), None)
    if env is None:
        raise not_found(f"Environment {environment_uuid} not found")
    return Page([s.variable_json(v) for v in env.variables])


# -- Code Insights: reports and annotations on a commit -----------------------------------------
def _report_path(repo, sha: str, report_id: str) -> str:
    return f"/repositories/{repo.full_name}/commit/{sha}/reports/{report_id}"


def _commit_sha(repo, commit: str) -> str:
    sha = repo.git.resolve(commit)
    if sha is None:
        raise not_found(f"Commit not found: {commit}")
    return sha


@route("/repositories/{workspace}/{repo_slug}/commit/{commit}/reports", scope="repository")
def reports(ctx: RequestContext, workspace: str, repo_slug: str, commit: str) -> Page:
    repo = ctx.repository(workspace, repo_slug)
    sha = _commit_sha(repo, commit)
    return Page(list(repo.reports.get(sha, {}).values()))


@route("/repositories/{workspace}/{repo_slug}/commit/{commit}/reports/{report_id}", scope="repository")
def report(ctx: RequestContext, workspace: str, repo_slug: str, commit: str, report_id: str) -> dict:
    repo = ctx.repository(workspace, repo_slug)
    sha = _commit_sha(repo, commit)
    found = repo.reports.get(sha, {}).get(report_id)
    if found is None:
        raise not_found(f"Report {report_id} not found")
    return found


@route(
    "/repositories/{workspace}/{repo_slug}/commit/{commit}/reports/{report_id}",
    methods=("PUT",),
    scope="repository:write",
    access="write",
)
def put_report(ctx: RequestContext, workspace: str, repo_slug: str, commit: str, report_id: str) -> dict:
    """Create or replace a report (idempotent by report id, as Bitbucket's PUT is)."""
    repo = ctx.repository(workspace, repo_slug)
    sha = _commit_sha(repo, commit)
    body = ctx.json_body()
    problems = []
    if not isinstance(body.get("title"), str) or not body["title"]:
        problems.append("title is required")
    if body.get("report_type") not in REPORT_TYPES:
        problems.append(f"report_type must be one of {', '.join(REPORT_TYPES)}")
    if body.get("result") is not None and body["result"] not in REPORT_RESULTS:
        problems.append(f"result must be one of {', '.join(REPORT_RESULTS)}")
    if problems:
        raise ApiError(400, "Invalid report", detail="; ".join(problems))
    now = s.ts(ctx.clock.now())
    with ctx.world.lock:
        existing = repo.reports.setdefault(sha, {}).get(report_id)
        stored = {
            "type": "report",
            "uuid": braced_uuid("report", f"{repo.full_name}:{sha}:{report_id}"),
            "external_id": report_id,
            "title": body["title"],
            "details": body.get("details", ""),
            "report_type": body["report_type"],
            "reporter": body.get("reporter", ""),
            "link": body.get("link"),
            "result": body.get("result"),
            "data": body.get("data", []),
            "created_on": existing["created_on"] if existing else now,
            "updated_on": now,
            "links": {"self": ctx.urls.link(_report_path(repo, sha, report_id))},
        }
        repo.reports[sha][report_id] = stored
        if existing is None:
            repo.annotations[(sha, report_id)] = {}
    return stored


@route("/repositories/{workspace}/{repo_slug}/commit/{commit}/reports/{report_id}/annotations", scope="repository")
def annotations(ctx: RequestContext, workspace: str, repo_slug: str, commit: str, report_id: str) -> Page:
    repo = ctx.repository(workspace, repo_slug)
    sha = _commit_sha(repo, commit)
    if report_id not in repo.reports.get(sha, {}):
        raise not_found(f"Report {report_id} not found")
    return Page(list(repo.annotations.get((sha, report_id), {}).values()))


@route(
    "/repositories/{workspace}/{repo_slug}/commit/{commit}/reports/{report_id}/annotations",
    methods=("POST",),
    scope="repository:write",
    access="write",
)
def add_annotations(ctx: RequestContext, workspace: str, repo_slug: str, commit: str, report_id: str):
    """Bulk create or update (by external_id), at most 100 per request, as Bitbucket allows."""
    repo = ctx.repository(workspace, repo_slug)
    sha = _commit_sha(repo, commit)
    if report_id not in repo.reports.get(sha, {}):
        raise not_found(f"Report {report_id} not found")
    try:
        items = json.loads(ctx.request.get_data() or b"[]")
    except ValueError as exc:
        raise ApiError(400, "Invalid JSON body", detail=str(exc)) from exc
    if not isinstance(items, list) or not 1 <= len(items) <= 100:
        raise ApiError(400, "Invalid annotations", detail="send a JSON list of 1 to 100 annotations")
    # The whole batch is checked before anything is stored: a 400 leaves the report unchanged.
    for item in items:
        if not isinstance(item, dict) or not item.get("external_id") or not item.get("summary"):
            raise ApiError(400, "Invalid annotation", detail="external_id and summary are required")
        if item.get("annotation_type", "VULNERABILITY") not in ANNOTATION_TYPES:
            raise ApiError(400, "Invalid annotation", detail=f"annotation_type must be one of {ANNOTATION_TYPES}")
        if item.get("severity") is not None and item["severity"] not in SEVERITIES:
            raise ApiError(400, "Invalid annotation", detail=f"severity must be one of {SEVERITIES}")
    stored_items = []
    now = s.ts(ctx.clock.now())
    with ctx.world.lock:
        bucket = repo.annotations.setdefault((sha, report_id), {})
        for item in items:
            external_id = item["external_id"]
            existing = bucket.get(external_id)
            stored = {
                "type": "report_annotation",
                "external_id": external_id,
                "uuid": braced_uuid("annotation", f"{repo.full_name}:{sha}:{report_id}:{external_id}"),
                "annotation_type": item.get("annotation_type", "VULNERABILITY"),
                "summary": item["summary"],
                "details": item.get("details", ""),
                "path": item.get("path"),
                "line": item.get("line"),
                "severity": item.get("severity"),
                "result": item.get("result"),
                "link": item.get("link"),
                "created_on": existing["created_on"] if existing else now,
                "updated_on": now,
            }
            bucket[external_id] = stored
            stored_items.append(stored)
    return json_response(200, stored_items)  # the spec answers 200 (not 201) to this bulk POST
