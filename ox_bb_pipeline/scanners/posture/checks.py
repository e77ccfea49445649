"""Posture checks that SQL expresses badly, registered by check id, and the derived view they share.

- `main_branch_restrictions`: which branch restrictions apply to each repository's main branch
  (glob patterns via fnmatch, branching-model types via the repository's branching model). The
  SQL checks BB-001…BB-013 read it like a table.
- The bitbucket-pipelines.yml checks (BB-026…BB-033), over `pipelines_yml.parse`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from functools import wraps

import duckdb
import pyarrow as pa

from ...bitbucket.tables import schema
from ...redaction import SECRET_KEY_NAME, mask
from .pipelines_yml import PipelinesFile, PipelinesYmlError, Ref, parse

PIPELINES_FILE = "bitbucket-pipelines.yml"
MAX_LISTED = 10  # evidence lists at most this many items, then "and N more"


def query(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def listing(items: list[str]) -> str:
    shown = "; ".join(items[:MAX_LISTED])
    return shown + (f"; and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


# -- main-branch restrictions ----------------------------------------------------------------------
MAIN_RESTRICTIONS_SCHEMA = (
    schema("branch_restrictions")
    .append(pa.field("mainbranch", pa.string()))
    .append(pa.field("matched_by", pa.string()))
)


def _matched_by(restriction: dict, main: str, model: dict | None) -> str | None:
    if restriction["branch_match_kind"] == "branching_model":
        kind, model = restriction["branch_type"], model or {}
        if kind in ("production", "development"):
            hit = model.get(f"{kind}_branch") == main
        else:
            prefixes = [t.get("prefix") for t in json.loads(model.get("branch_types") or "[]") if t.get("kind") == kind]
            hit = any(p and main.startswith(p) for p in prefixes)
        return f"branching model type {kind}" if hit else None
    pattern = restriction["pattern"]
    # Bitbucket globs: `*` matches any characters, `/` included, which is fnmatch's behaviour.
    return f"pattern '{pattern}'" if pattern and fnmatchcase(main, pattern) else None


def main_branch_restrictions(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """The branch_restrictions rows that apply to a selected repository's main branch, with how."""
    mains = {
        r["repository_uuid"]: r["mainbranch"]
        for r in query(con, "SELECT repository_uuid, mainbranch FROM selected_repositories")
    }
    models = {m["repository_uuid"]: m for m in query(con, "SELECT * FROM branching_models")}
    rows = []
    for r in query(con, "SELECT * FROM branch_restrictions ORDER BY repository_uuid, restriction_id"):
        main = mains.get(r["repository_uuid"])
        matched = main and _matched_by(r, main, models.get(r["repository_uuid"]))
        if matched:
            rows.append({**r, "mainbranch": main, "matched_by": matched})
    return pa.Table.from_pylist(rows, schema=MAIN_RESTRICTIONS_SCHEMA)


# -- python checks ---------------------------------------------------------------------------------
@dataclass
class Context:
    """What a Python check may read: the registered tables, the evaluation time and readability."""

    con: duckdb.DuckDBPyConnection
    now: datetime
    repositories: list[dict]  # the selected repositories
    unreadable: Callable[[dict, str], str | None]  # (repository row, table) -> why it was not read
    _indexes: dict[str, dict[str, list[dict]]] = field(default_factory=dict)
    _pipelines: dict[str, tuple[str, PipelinesFile | str]] = field(default_factory=dict)

    def rows_of(self, table: str, repo: dict) -> list[dict]:
        if table not in self._indexes:
            index: dict[str, list[dict]] = {}
            for row in query(self.con, f"SELECT * FROM {table}"):
                index.setdefault(row["repository_uuid"], []).append(row)
            self._indexes[table] = index
        return self._indexes[table].get(repo["repository_uuid"], [])

    def pipelines_file(self, repo: dict) -> tuple[str, PipelinesFile | str]:
        """('ok', parsed file) or (status, evidence) when there is nothing to check or it cannot be."""
        uuid = repo["repository_uuid"]
        if uuid not in self._pipelines:
            self._pipelines[uuid] = self._load_pipelines(repo)
        return self._pipelines[uuid]

    def _load_pipelines(self, repo: dict) -> tuple[str, PipelinesFile | str]:
        # The file is read with git together with the main-branch history.
        if why := self.unreadable(repo, "main_branch_commits"):
            return "not_evaluable", f"{PIPELINES_FILE} could not be read: {why}"
        configs = self.rows_of("pipeline_configs", repo)
        if not configs:
            return "not_evaluable", f"{PIPELINES_FILE} was not extracted for this repository"
        config = configs[0]
        if not config["yml_present"]:
            return "pass", f"no {PIPELINES_FILE} at the main head: no pipeline runs"
        if config["enabled"] is False:
            return "pass", "Pipelines are disabled for the repository: the file never runs"
        try:
            return "ok", parse(config["yml"] or "", PIPELINES_FILE)
        except PipelinesYmlError as exc:
            return "not_evaluable", str(exc)


CheckFn = Callable[[Context, dict], list[dict]]
CHECKS: dict[str, CheckFn] = {}


def pipeline_check(check_id: str, anchor: str):
    """Register `fn(file, repo, ctx, params) -> (status, evidence)` as the check `check_id`, run on
    every selected repository's parsed pipelines file."""

    def register(fn):
        @wraps(fn)
        def run(ctx: Context, params: dict) -> list[dict]:
            rows = []
            for repo in ctx.repositories:
                try:
                    status, evidence = ctx.pipelines_file(repo)
                    if status == "ok":
                        status, evidence = fn(evidence, repo, ctx, params)
                except Exception as exc:  # an odd file spoils its own repository's result, not the others'
                    status, evidence = "not_evaluable", f"check failed: {type(exc).__name__}: {exc}"
                rows.append(
                    {
                        "workspace": repo["workspace"],
                        "repository_uuid": repo["repository_uuid"],
                        "repository": repo["repository"],
                        "status": status,
                        "evidence": evidence,
                        "anchor": f"{PIPELINES_FILE}:{anchor}",
                        "file_path": PIPELINES_FILE,
                    }
                )
            return rows

        CHECKS[check_id] = run
        return run

    return register


def verdict(problems: list[str], ok: str) -> tuple[str, str]:
    return ("fail", listing(problems)) if problems else ("pass", ok)


def _is_literal(value: str) -> bool:
    return bool(value) and "$" not in value


@pipeline_check("BB-026", "secrets")
def hardcoded_secret(pf: PipelinesFile, repo, ctx, params) -> tuple[str, str]:
    tokens = [re.compile(p) for p in params["token_patterns"]]
    assignment = re.compile(params["assignment_pattern"])
    problems = []

    def literal(where: str, name: str, value: str) -> None:
        if _is_literal(value) and (
            any(t.search(value) for t in tokens) or (SECRET_KEY_NAME.search(name) and len(value) >= 8)
        ):
            problems.append(f"{where}: {name} is set to a literal {mask(value)}")

    images = [("image", pf.image)] + [(f"service {n}", i) for n, i in pf.services.items()]
    for _pipeline, step in pf.steps():
        images.append((step.label, step.image))
        for pipe in step.pipes:
            for name, value in pipe.variables.items():
                literal(f"{step.label} pipe {pipe.ref.name}", name, value)
        for number, line in enumerate(step.script, 1):
            found = next((m.group(0) for t in tokens if (m := t.search(line))), None)
            if found is None and (m := assignment.search(line)):
                found = m.group(2)
            if found:
                problems.append(f"{step.label} script line {number} holds a literal credential {mask(found)}")
    for where, image in images:
        for name, value in image.credentials.items() if image else []:
            if name != "username":
                literal(f"{where} image credentials", name, value)
    return verdict(sorted(set(problems)), "no literal credential in images, pipe variables or script lines")


def _image_problem(ref: Ref) -> str | None:
    if ref.digest:
        return None
    if ref.tag is None:
        return f"{ref.text} has no tag (implicitly latest) and no digest"
    if ref.tag == "latest":
        return f"{ref.text} uses the mutable latest tag"
    return f"{ref.text} is a tag, not pinned by digest"


@pipeline_check("BB-027", "images")
def image_not_pinned(pf: PipelinesFile, repo, ctx, params) -> tuple[str, str]:
    problems, checked = [], 0
    images = [("global image", pf.image)] + [(f"service {n}", i) for n, i in pf.services.items()]
    for _pipeline, step in pf.steps():
        if step.image:
            images.append((step.label, step.image))
        elif pf.image is None:
            problems.append(f"{step.label} runs on Bitbucket's default image, which is not pinned")
    for where, image in images:
        # An image chosen by a variable cannot be judged from the file.
        if image is None or image.ref.is_variable:
            continue
        checked += 1
        if problem := _image_problem(image.ref):
            problems.append(f"{where}: {problem}")
    return verdict(sorted(set(problems)), f"{checked} image reference(s), all pinned by digest")


@pipeline_check("BB-028", "pipes")
def pipe_not_pinned(pf: PipelinesFile, repo, ctx, params) -> tuple[str, str]:
    exact = re.compile(params["exact_version"])
    problems, pipes = [], 0
    for _pipeline, step in pf.steps():
        for pipe in step.pipes:
            pipes += 1
            ref = pipe.ref
            if ref.digest or (ref.tag and exact.match(ref.tag)):
                continue
            why = "has no version" if not ref.tag else f"is pinned to {ref.tag}, not an exact x.y.z version"
            problems.append(f"{step.label}: pipe {ref.name} {why}")
    return verdict(sorted(set(problems)), f"{pipes} pipe reference(s), all pinned to an exact version or digest")


_URL_HOST = re.compile(r"\bhttps?://(?:[^@/\s'\"]*@)?([^/\s'\":?#]+)")


@pipeline_check("BB-029", "remote-scripts")
def remote_script_to_shell(pf: PipelinesFile, repo, ctx, params) -> tuple[str, str]:
    patterns = [re.compile(p, re.IGNORECASE) for p in params["patterns"]]
    problems = []
    for _pipeline, step in pf.steps():
        for number, line in enumerate(step.script, 1):
            if any(p.search(line) for p in patterns):
                # Name the host, not the line: a download command may carry a token in a header or URL.
                host = _URL_HOST.search(line)
                source = f"a download from {host.group(1)}" if host else "a download"
                problems.append(f"{step.label} script line {number} pipes {source} into a shell")
    return verdict(problems, "no script line pipes a download into a shell")


@pipeline_check("BB-030", "production-deployments")
def production_deploy_ungated(pf: PipelinesFile, repo, ctx, params) -> tuple[str, str]:
    environments = {e["name"].lower(): e for e in ctx.rows_of("environments", repo) if e["name"]}
    environments_unread = ctx.unreadable(repo, "environments")
    names = {n.lower() for n in params["production_names"]}
    problems, unknown, production_steps = [], [], 0
    for _pipeline, step in pf.steps():
        if not step.deployment:
            continue
        env = environments.get(step.deployment.lower())
        is_production = (env["environment_type"] == "Production") if env else step.deployment.lower() in names
        if not is_production:
            continue
        production_steps += 1
        if step.trigger == "manual":
            continue
        if env and (env["admin_only"] or env["deployment_gate_enabled"]):
            continue
        if env is None and environments_unread:
            unknown.append(f"{step.label} deploys to {step.deployment} automatically")
            continue
        problems.append(
            f"{step.label} deploys to {step.deployment} automatically (no trigger: manual) and the "
            "environment is neither admin-only nor gated"
        )
    if problems:
        return "fail", listing(problems)
    if unknown:
        return "not_evaluable", f"{listing(unknown)}; environment restrictions could not be read: {environments_unread}"
    return "pass", (
        f"{production_steps} production deployment step(s), each manual or behind a restricted environment"
        if production_steps
        else "no production deployment step"
    )


@pipeline_check("BB-031", "pull-request-runners")
def self_hosted_pr_runner(pf: PipelinesFile, repo, ctx, params) -> tuple[str, str]:
    problems = [
        f"{step.label} runs on {', '.join(step.runs_on)}"
        for pipeline, step in pf.steps()
        if pipeline.section == "pull-requests" and "self.hosted" in step.runs_on
    ]
    return verdict(problems, "pull-request pipelines run on Bitbucket cloud runners")


def _first_match(pf: PipelinesFile, patterns: list[str]) -> str | None:
    """Where a step shows it does something: its commands and pipes first, its name as a last resort."""
    compiled = [re.compile(p, re.IGNORECASE) for p in patterns]
    matches = lambda text: any(c.search(text) for c in compiled)  # noqa: E731
    for _pipeline, step in pf.steps():
        for text in [*step.script, *(p.ref.name for p in step.pipes)]:
            if matches(text):
                return f"{step.label}: {text.strip()[:120]}"
    return next((step.label for pipeline, step in pf.steps() if step.name and matches(step.name)), None)


@pipeline_check("BB-032", "security-scan")
def no_security_scan(pf: PipelinesFile, repo, ctx, params) -> tuple[str, str]:
    found = _first_match(pf, params["patterns"])
    if found:
        return "pass", f"security scanning found in {found}"
    steps = sum(1 for _ in pf.steps())
    return "fail", f"none of the {steps} pipeline step(s) runs a SAST, secret or dependency scan"


@pipeline_check("BB-033", "sbom")
def no_sbom(pf: PipelinesFile, repo, ctx, params) -> tuple[str, str]:
    found = _first_match(pf, params["patterns"])
    if found:
        return "pass", f"SBOM produced in {found}"
    steps = sum(1 for _ in pf.steps())
    return "fail", f"none of the {steps} pipeline step(s) produces an SBOM (CycloneDX or SPDX)"
