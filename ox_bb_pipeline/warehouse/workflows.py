"""Workflows (workflows.yaml): rules of trigger → conditions → actions over `findings_queue`.

Dry run by default: `preview` counts what each rule would touch. Once `enabled`, `apply` acts at
most once per (rule, action, finding) — `workflow_action_log` in the warehouse remembers what was
done — and records every automated change of a finding in `workflow_audit`. Assignments and
severity changes also go to OX_BB_HOME/workflows/decisions.parquet, which the next warehouse build
reads (decisions.py): apply reads the built queue, decides and records; the build reflects it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

import duckdb
import requests
from pydantic import Field, field_validator, model_validator

from .decisions import decided_keys, record_decisions
from .exports import open_warehouse
from .runner import warehouse_lock
from .settings import (
    SEVERITIES,
    Priority,
    Severity,
    _check_glob,
    _locate,
    _read_yaml,
    _Strict,
    _validate,
)

Status = Literal["new", "open", "resolved", "reopened", "suppressed", "excluded", "correlated"]
# Which queue rows a trigger starts from; conditions narrow them. any_finding includes resolved and
# suppressed findings: narrow it with `status` when that is not wanted.
TRIGGERS = {"new_finding": "q.status = 'new'", "any_finding": "true", "sla_breached": "q.sla_status = 'breached'"}
ANNOTATION_SEVERITY = {"critical": "CRITICAL", "high": "HIGH", "medium": "MEDIUM", "low": "LOW", "info": "LOW"}
MAX_ANNOTATIONS = 100  # per request, as Bitbucket allows
MAX_MESSAGE_LINES = 20


# -- workflows.yaml -------------------------------------------------------------------------------
class AtLeast(_Strict):
    at_least: Severity


class Conditions(_Strict):
    """Every given condition must hold; globs (fnmatch) for application and rule_id."""

    category: list[str] | None = None
    final_severity: list[Severity] | AtLeast | None = None
    application: list[str] | None = None
    business_priority: list[Priority] | None = None
    status: list[Status] | None = None
    rule_id: list[str] | None = None

    @field_validator("application", "rule_id")
    @classmethod
    def _globs(cls, value: list[str] | None) -> list[str] | None:
        return [_check_glob(v) for v in value] if value is not None else value

    def holds(self, finding: dict) -> bool:
        severity = self.final_severity
        if isinstance(severity, AtLeast):
            rank = SEVERITIES.index(finding["final_severity"]) if finding["final_severity"] in SEVERITIES else -1
            if rank < SEVERITIES.index(severity.at_least):
                return False
        elif severity is not None and finding["final_severity"] not in severity:
            return False
        for field in ("category", "business_priority", "status"):
            allowed = getattr(self, field)
            if allowed is not None and finding[field] not in allowed:
                return False
        for field in ("application", "rule_id"):
            globs = getattr(self, field)
            if globs is not None and not any(fnmatchcase(finding[field] or "", g) for g in globs):
                return False
        return True


class Assign(_Strict):
    team: str | None = None
    owner: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Assign:
        if (self.team is None) == (self.owner is None):
            raise ValueError("give exactly one of 'team' or 'owner'")
        return self


class SetSeverity(_Strict):
    severity: Severity
    reason: str = Field(min_length=1)


class Webhook(_Strict):
    url: str

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("expected an http(s) URL, e.g. https://hooks.slack.com/services/…")
        return value


class BitbucketTarget(_Strict):
    connection: str = Field(min_length=1)  # a name from connections.yaml


class Action(_Strict):
    """Exactly one key: what to do."""

    assign: Assign | None = None
    set_severity: SetSeverity | None = None
    webhook: Webhook | None = None
    code_insights: BitbucketTarget | None = None
    pr_comment: BitbucketTarget | None = None

    @model_validator(mode="after")
    def _one(self) -> Action:
        if len(self.model_fields_set) != 1:
            raise ValueError(f"give exactly one action of {', '.join(type(self).model_fields)}")
        return self

    @property
    def kind(self) -> str:
        return next(iter(self.model_fields_set))

    @property
    def spec(self):
        return getattr(self, self.kind)


class Rule(_Strict):
    name: str = Field(min_length=1)
    trigger: Literal["new_finding", "any_finding", "sla_breached"]
    conditions: Conditions = Field(default_factory=Conditions)
    actions: list[Action] = Field(min_length=1)

    @model_validator(mode="after")
    def _each_kind_once(self) -> Rule:
        kinds = [a.kind for a in self.actions]
        repeated = sorted({k for k in kinds if kinds.count(k) > 1})
        if repeated:
            raise ValueError(
                f"each action at most once per rule (the action log is keyed by it): {', '.join(repeated)}"
            )
        return self


class WorkflowsFile(_Strict):
    enabled: bool = False  # dry run unless set
    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> WorkflowsFile:
        names = [r.name for r in self.rules]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"rule names used twice: {', '.join(repeated)}")
        return self


def load_workflows(path: Path | None = None, *, home: Path) -> WorkflowsFile:
    """`$OX_BB_WORKFLOWS`, else <home>/workflows.yaml, else ./workflows.yaml; none: no rules."""
    path = path or _locate("workflows.yaml", "OX_BB_WORKFLOWS", home)
    if path is None:
        return WorkflowsFile()
    return _validate(WorkflowsFile, _read_yaml(path), str(path))


# -- matching -------------------------------------------------------------------------------------
def matching(con: duckdb.DuckDBPyConnection, rule: Rule) -> list[dict]:
    """The queue rows the rule touches, with the commit, line and connection of their latest scan."""
    result = con.execute(f"""
        SELECT q.finding_id, q.status, q.sla_status, q.application, q.workspace, q.repository, q.scanner,
               q.rule_id, q.title, q.category, q.file_path, q.final_severity, q.business_priority, q.team,
               q.owners, q.assigned_team, q.assignee, e.connection, e."commit", e.start_line
        FROM findings_queue q LEFT JOIN enriched_findings e USING (finding_id)
        WHERE {TRIGGERS[rule.trigger]}
        ORDER BY q.finding_id""")
    names = [d[0] for d in result.description]
    rows = (dict(zip(names, row)) for row in result.fetchall())
    return [row for row in rows if rule.conditions.holds(row)]


def preview(con: duckdb.DuckDBPyConnection, settings: WorkflowsFile) -> list[dict]:
    """How many findings each rule would touch (nothing is done)."""
    return [{"rule": rule.name, "matches": len(matching(con, rule))} for rule in settings.rules]


# -- applying -------------------------------------------------------------------------------------
def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""CREATE TABLE IF NOT EXISTS workflow_action_log (
        rule VARCHAR, action VARCHAR, finding_id VARCHAR, status VARCHAR, detail VARCHAR, "at" TIMESTAMPTZ,
        PRIMARY KEY (rule, action, finding_id))""")
    con.execute("""CREATE TABLE IF NOT EXISTS workflow_audit (
        rule VARCHAR, finding_id VARCHAR, field VARCHAR, old VARCHAR, new VARCHAR, reason VARCHAR,
        "at" TIMESTAMPTZ)""")


def apply(
    con: duckdb.DuckDBPyConnection,
    settings: WorkflowsFile,
    clients_by_connection: dict,
    now: datetime,
    http_post: Callable = requests.post,
    *,
    home: Path,
) -> list[dict]:
    """Run every rule's actions on the findings they have not yet been done for (`con` must be writable).

    Returns one summary per (rule, action): how many findings were done, skipped or failed. A failed
    action is logged with status `error` (and tried again by the next apply); it never stops the others.
    Does nothing when the file is not `enabled`.

    Every rule matches the queue as last built: an `assign` or `set_severity` is recorded in
    <home>/workflows/decisions.parquet (see decisions.py) and shows in `findings_queue` and
    `enriched_findings` from the next build on, so a later rule of the same apply does not see it.
    """
    if not settings.enabled:
        return []
    ensure_tables(con)
    decided = decided_keys(home)
    summaries = []
    for rule in settings.rules:
        findings = matching(con, rule)
        for action in rule.actions:
            done = {
                row[0]
                for row in con.execute(
                    "SELECT finding_id FROM workflow_action_log WHERE rule = ? AND action = ? AND status <> 'error'",
                    [rule.name, action.kind],
                ).fetchall()
            }
            done |= {fid for r, kind, fid in decided if (r, kind) == (rule.name, action.kind)}
            pending = [f for f in findings if f["finding_id"] not in done]
            if action.kind in DECISIONS:
                outcomes = _decide(con, rule, action, pending, now, home)
            else:
                outcomes = ACTIONS[action.kind](con, rule, action.spec, pending, clients_by_connection, now, http_post)
            _insert(
                con,
                "workflow_action_log",  # replacing: an error is retried by the next apply
                [[rule.name, action.kind, fid, status, detail, now] for fid, status, detail in outcomes],
                verb="INSERT OR REPLACE",
            )
            counts = {"done": 0, "skipped": 0, "error": 0}
            for _, status, _ in outcomes:
                counts[status] += 1
            summaries.append({"rule": rule.name, "action": action.kind, **counts})
    return summaries


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[list], verb: str = "INSERT") -> None:
    if rows:
        con.executemany(f"{verb} INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)


Outcome = tuple[str, str, str | None]  # finding_id, done | skipped | error, detail


def _each(findings: list[dict], status: str, detail: str | None = None) -> list[Outcome]:
    return [(f["finding_id"], status, detail) for f in findings]


def _guarded(findings: list[dict], send: Callable[..., str | None], *args) -> list[Outcome]:
    """Run one remote call for a group of findings; its failure is the group's error, not the run's."""
    try:
        return _each(findings, "done", send(*args))
    except Exception as exc:  # noqa: BLE001 - any failure is recorded and the next group goes on
        return _each(findings, "error", f"{type(exc).__name__}: {exc}"[:500])


def _assignment(spec: Assign, f: dict) -> tuple[str, str | None, str, str]:
    """(field, old, new, reason): the team or owner the finding has now, and the one assigned."""
    if spec.team is not None:
        return "team", f["assigned_team"] or f["team"], spec.team, "assigned by workflow"
    owner = f["assignee"] or ", ".join(f["owners"] or []) or None
    return "owner", owner, spec.owner, "assigned by workflow"


def _severity_change(spec: SetSeverity, f: dict) -> tuple[str, str | None, str, str]:
    return "final_severity", f["final_severity"], spec.severity, spec.reason


# Actions that change a finding: decided here, recorded for the models to read, audited.
DECISIONS = {"assign": _assignment, "set_severity": _severity_change}


def _decide(con, rule: Rule, action: Action, findings: list[dict], now: datetime, home: Path) -> list[Outcome]:
    """Record the decisions (durably and first: the action log is written after them), then audit."""
    changes = [(f["finding_id"], *DECISIONS[action.kind](action.spec, f)) for f in findings]
    record_decisions(
        [
            {
                "rule": rule.name,
                "action": action.kind,
                "finding_id": fid,
                "field": field,
                "old": old,
                "new": new,
                "reason": reason,
                "decided_at": now,
            }
            for fid, field, old, new, reason in changes
        ],
        home,
    )
    _insert(
        con,
        "workflow_audit",
        [[rule.name, fid, field, old, new, reason, now] for fid, field, old, new, reason in changes],
    )
    return _each(findings, "done")


def _line(f: dict) -> str:
    """One finding for people: never its evidence, so a secret cannot leak into a message."""
    where = f"{f['workspace']}/{f['repository']}" + (f" {f['file_path']}" if f["file_path"] else "")
    return (
        f"[{(f['final_severity'] or '').upper()}] {f['title']} — {f['application'] or 'no application'}, "
        f"{where} ({f['finding_id']})"
    )


def _message(rule: Rule, findings: list[dict]) -> str:
    lines = [_line(f) for f in findings[:MAX_MESSAGE_LINES]]
    if len(findings) > MAX_MESSAGE_LINES:
        lines.append(f"… and {len(findings) - MAX_MESSAGE_LINES} more")
    return f"ox-bb workflow '{rule.name}': {len(findings)} finding(s)\n" + "\n".join(lines)


def _webhook(con, rule, spec: Webhook, findings, clients, now, http_post) -> list[Outcome]:
    if not findings:
        return []

    def send() -> None:
        http_post(spec.url, json={"text": _message(rule, findings)}, timeout=10).raise_for_status()

    return _guarded(findings, send)


def _by_commit(findings: list[dict]) -> Iterable[tuple[tuple[str, str, str], list[dict]]]:
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for f in findings:
        groups.setdefault((f["workspace"], f["repository"], f["commit"]), []).append(f)
    return groups.items()


def _bitbucket(findings: list[dict], clients: dict, connection: str, per_commit: Callable) -> list[Outcome]:
    """Group by scanned commit and call `per_commit(client, workspace, repository, commit, group)`."""
    client = clients.get(connection)
    if client is None:
        return _each(findings, "error", f"no client for connection '{connection}'")
    without_commit = [f for f in findings if not f["commit"]]
    outcomes = _each(without_commit, "skipped", "no scanned commit")
    for (workspace, repository, commit), group in _by_commit([f for f in findings if f["commit"]]):
        outcomes += _guarded(group, per_commit, client, workspace, repository, commit, group)
    return outcomes


def report_id(rule: Rule) -> str:
    return "ox-bb-" + re.sub(r"[^a-z0-9]+", "-", rule.name.lower()).strip("-")


def _code_insights(con, rule, spec: BitbucketTarget, findings, clients, now, http_post) -> list[Outcome]:
    def publish(client, workspace, repository, commit, group) -> str:
        path = f"/repositories/{workspace}/{repository}/commit/{commit}/reports/{report_id(rule)}"
        client.send_json(
            "PUT",
            path,
            {
                "title": f"ox-bb: {rule.name}",
                "report_type": "SECURITY",
                "reporter": "ox-bb-pipeline",
                "result": "FAILED",
                "details": f"Findings matched by the workflow rule '{rule.name}'.",
            },
        )
        annotations = [
            {
                "external_id": f["finding_id"],
                "summary": f["title"][:450],
                "details": _line(f),
                "path": f["file_path"],
                "line": f["start_line"],
                "severity": ANNOTATION_SEVERITY.get(f["final_severity"], "LOW"),
                "annotation_type": "VULNERABILITY",
            }
            for f in group
        ]
        for start in range(0, len(annotations), MAX_ANNOTATIONS):
            client.send_json("POST", f"{path}/annotations", annotations[start : start + MAX_ANNOTATIONS])
        return f"report {report_id(rule)} on {commit}"

    return _bitbucket(findings, clients, spec.connection, publish)


def _pr_comment(con, rule, spec: BitbucketTarget, findings, clients, now, http_post) -> list[Outcome]:
    def comment(client, workspace, repository, commit, group) -> str:
        base = f"/repositories/{workspace}/{repository}"
        open_prs = [
            pr["id"] for pr in client.paginate(f"{base}/commit/{commit}/pullrequests") if pr.get("state") == "OPEN"
        ]
        for pr_id in open_prs:
            client.send_json(
                "POST", f"{base}/pullrequests/{pr_id}/comments", {"content": {"raw": _message(rule, group)}}
            )
        return f"commented on pull request(s) {', '.join(map(str, open_prs))}" if open_prs else "no open pull request"

    return _bitbucket(findings, clients, spec.connection, comment)


ACTIONS = {"webhook": _webhook, "code_insights": _code_insights, "pr_comment": _pr_comment}


# -- one pass, for the Dagster asset --------------------------------------------------------------
def bitbucket_connections(settings: WorkflowsFile) -> set[str]:
    """Connections the rules write back to (code insights, pull request comments)."""
    return {
        action.spec.connection
        for rule in settings.rules
        for action in rule.actions
        if isinstance(action.spec, BitbucketTarget)
    }


def run_workflows(
    settings: WorkflowsFile,
    clients_by_connection: Callable[[], dict],
    now: datetime,
    home: Path,
    http_post: Callable = requests.post,
) -> dict:
    """Preview every rule, then apply them when the file is `enabled`; only then is the warehouse
    opened for writing and `clients_by_connection` called (a dry run needs no credential)."""
    with warehouse_lock(home, "workflows") if settings.enabled else contextlib.nullcontext():
        con = open_warehouse(home, read_only=not settings.enabled)
        try:
            rows = preview(con, settings)
            applied = []
            if settings.enabled:
                applied = apply(con, settings, clients_by_connection(), now, http_post, home=home)
            return {"enabled": settings.enabled, "preview": rows, "applied": applied}
        finally:
            con.close()
