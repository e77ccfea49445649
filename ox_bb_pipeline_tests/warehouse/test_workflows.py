"""Workflows over a hand-built warehouse: preview counts per rule, validation listing every problem,
idempotent apply with its audit, and write-back seen on a real sandbox and a local webhook server."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ox_bb_pipeline.bitbucket.client import BitbucketClient
from ox_bb_pipeline.config import ConfigError, data_home, load_connections
from ox_bb_pipeline.warehouse.workflows import (
    WorkflowsFile,
    apply,
    load_workflows,
    preview,
    report_id,
)

from .conftest import LATER, NOW, workflows, writable


def test_preview_counts_the_findings_each_rule_would_touch(lake, warehouse):
    settings = workflows("""
        rules:
          - {name: everything, trigger: any_finding, actions: [{assign: {team: security}}]}
          - {name: fresh, trigger: new_finding, actions: [{assign: {team: security}}]}
          - {name: late, trigger: sla_breached, actions: [{assign: {team: security}}]}
          - name: serious-payments
            trigger: any_finding
            conditions: {application: ["pay*"], final_severity: {at_least: high}}
            actions: [{assign: {team: security}}]
          - name: bandit-b
            trigger: any_finding
            conditions: {category: [sast], rule_id: ["B1*"], status: [open]}
            actions: [{assign: {team: security}}]
          - name: web-listed
            trigger: any_finding
            conditions: {final_severity: [low, high], business_priority: [medium]}
            actions: [{assign: {team: security}}]
    """)
    con = writable(lake)
    try:
        assert preview(con, settings) == [
            {"rule": "everything", "matches": 5},
            {"rule": "fresh", "matches": 1},
            {"rule": "late", "matches": 1},
            {"rule": "serious-payments", "matches": 2},
            {"rule": "bandit-b", "matches": 1},
            {"rule": "web-listed", "matches": 2},
        ]
    finally:
        con.close()


def test_a_bad_workflows_file_lists_every_problem(tmp_path, monkeypatch):
    path = tmp_path / "workflows.yaml"
    path.write_text("""
enabled: yes
rules:
  - name: a
    trigger: on_commit
    conditions: {severity: [high], application: [""]}
    actions: [{assign: {}}, {set_severity: {severity: urgent}}]
  - name: a
    trigger: new_finding
    actions: [{webhook: {url: "ftp://x"}}, {webhook: {url: "https://x"}, pr_comment: {connection: c}}]
""")
    monkeypatch.setenv("OX_BB_WORKFLOWS", str(path))
    with pytest.raises(ConfigError) as caught:
        load_workflows(home=tmp_path)
    assert caught.value.problems == [
        "rules[0] (a).trigger: Input should be 'new_finding', 'any_finding' or 'sla_breached'",
        "rules[0] (a).conditions.application: an empty glob matches nothing; use '*' for everything",
        "rules[0] (a).conditions: unknown key `severity`: did you mean `final_severity`?",
        "rules[0] (a).actions[0].assign: give exactly one of 'team' or 'owner'",
        (
            "rules[0] (a).actions[1].set_severity.severity: "
            "Input should be 'info', 'low', 'medium', 'high' or 'critical'"
        ),
        "rules[0] (a).actions[1].set_severity.reason: is required",
        "rules[1] (a).actions[0].webhook.url: expected an http(s) URL, e.g. https://hooks.slack.com/services/…",
        "rules[1] (a).actions[1]: give exactly one action of assign, set_severity, webhook, code_insights, pr_comment",
    ]


def test_no_file_means_no_rules_and_a_dry_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_workflows(home=tmp_path) == WorkflowsFile(enabled=False, rules=[])


def test_apply_acts_once_and_audits_each_change_once(lake, warehouse, hook):
    settings = workflows(f"""
        enabled: true
        rules:
          - name: critical-secrets
            trigger: any_finding
            conditions: {{category: [secrets]}}
            actions:
              - {{assign: {{team: security}}}}
              - {{set_severity: {{severity: high, reason: rotated; kept for tracking}}}}
              - {{webhook: {{url: "{hook.url}"}}}}
    """)
    con = writable(lake)
    try:
        first = apply(con, settings, {}, LATER, home=data_home())
        second = apply(con, settings, {}, LATER + timedelta(hours=1), home=data_home())
        audit = con.execute(
            'SELECT rule, finding_id, field, old, new, reason, "at" FROM workflow_audit ORDER BY field'
        ).fetchall()
        log = con.execute("SELECT action, finding_id, status FROM workflow_action_log ORDER BY action").fetchall()
    finally:
        con.close()
    secret = warehouse["secret"]
    assert first == [
        {"rule": "critical-secrets", "action": a, "done": 1, "skipped": 0, "error": 0}
        for a in ("assign", "set_severity", "webhook")
    ]
    assert second == [
        {"rule": "critical-secrets", "action": a, "done": 0, "skipped": 0, "error": 0}
        for a in ("assign", "set_severity", "webhook")
    ]
    assert audit == [
        ("critical-secrets", secret, "final_severity", "critical", "high", "rotated; kept for tracking", LATER),
        ("critical-secrets", secret, "team", None, "security", "assigned by workflow", LATER),
    ]
    assert log == [("assign", secret, "done"), ("set_severity", secret, "done"), ("webhook", secret, "done")]
    assert len(hook.received) == 1
    text = hook.received[0]["text"]
    assert list(hook.received[0]) == ["text"]
    assert text.startswith(
        "ox-bb workflow 'critical-secrets': 1 finding(s)\n[CRITICAL] aws-key title — payments, acme/api deploy.sh ("
    )
    assert secret in text


def test_a_failing_action_is_logged_and_the_others_still_run(lake, warehouse):
    settings = workflows("""
        enabled: true
        rules:
          - name: web
            trigger: any_finding
            conditions: {application: [web]}
            actions: [{code_insights: {connection: nowhere}}, {assign: {owner: alice}}]
    """)
    con = writable(lake)
    try:
        result = apply(con, settings, {}, LATER, home=data_home())
        errors = con.execute("SELECT DISTINCT detail FROM workflow_action_log WHERE status = 'error'").fetchall()
    finally:
        con.close()
    assert result == [
        {"rule": "web", "action": "code_insights", "done": 0, "skipped": 0, "error": 2},
        {"rule": "web", "action": "assign", "done": 2, "skipped": 0, "error": 0},
    ]
    assert errors == [("no client for connection 'nowhere'",)]


def test_a_dry_run_sends_nothing_and_writes_nothing(lake, warehouse, hook):
    settings = workflows(f"""
        rules: [{{name: all, trigger: any_finding, actions: [{{webhook: {{url: "{hook.url}"}}}}]}}]
    """)
    con = writable(lake)
    try:
        assert apply(con, settings, {}, LATER, home=data_home()) == []
        assert preview(con, settings) == [{"rule": "all", "matches": 5}]
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    finally:
        con.close()
    assert hook.received == []
    assert "workflow_action_log" not in tables


def test_code_insights_and_pr_comments_are_visible_on_the_sandbox(lake, fresh_sandbox, tmp_path):
    world_repo = next(r for ws in fresh_sandbox.world.workspaces.values() for r in ws.repositories.values())
    pr = world_repo.pull_requests[-1]
    with fresh_sandbox.world.lock:
        pr.state = "OPEN"  # the tiny sandbox's pull requests are all merged: reopen one
    workspace = world_repo.full_name.split("/")[0]
    repo = lake.repository(world_repo.slug, workspace=workspace, main_head=pr.source_commit)
    lake.scan(repo, "bandit")
    finding_id = lake.finding(repo, "bandit", "B105", severity="high", file_path="app/config.py", start_line=7)
    lake.build(NOW)
    connection = load_connections(fresh_sandbox.write_connections(tmp_path / "connections.yaml")).get("sandbox-token")
    client = BitbucketClient(connection, sleep=lambda seconds: None)
    settings = workflows("""
        enabled: true
        rules:
          - name: New SAST
            trigger: new_finding
            conditions: {category: [sast]}
            actions: [{code_insights: {connection: sandbox-token}}, {pr_comment: {connection: sandbox-token}}]
    """)
    con = writable(lake)
    try:
        assert apply(con, settings, {"sandbox-token": client}, NOW, home=data_home()) == [
            {"rule": "New SAST", "action": a, "done": 1, "skipped": 0, "error": 0}
            for a in ("code_insights", "pr_comment")
        ]
        apply(con, settings, {"sandbox-token": client}, NOW, home=data_home())  # nothing more
    finally:
        con.close()

    base = f"/repositories/{world_repo.full_name}"
    report = client.get_json(f"{base}/commit/{pr.source_commit}/reports/{report_id(settings.rules[0])}")
    assert (report["title"], report["report_type"], report["result"]) == ("ox-bb: New SAST", "SECURITY", "FAILED")
    annotations = list(client.paginate(f"{base}/commit/{pr.source_commit}/reports/ox-bb-new-sast/annotations"))
    assert [(a["external_id"], a["path"], a["line"], a["severity"], a["annotation_type"]) for a in annotations] == [
        (finding_id, "app/config.py", 7, "HIGH", "VULNERABILITY")
    ]
    comments = [c["content"]["raw"] for c in client.paginate(f"{base}/pullrequests/{pr.id}/comments")]
    ours = [c for c in comments if c.startswith("ox-bb workflow 'New SAST'")]
    assert len(ours) == 1 and finding_id in ours[0]
    merged = [p for p in world_repo.pull_requests if p.state != "OPEN"]
    assert all(not c["raw"].startswith("ox-bb workflow") for p in merged for c in p.comments)


def test_the_example_workflows_file_is_valid_and_previews_from_the_cli(tmp_path, monkeypatch):
    """`ox-bb workflows` previews the committed example without touching anything (dry run)."""
    import shutil

    from click.testing import CliRunner

    from ox_bb_pipeline.app.cli import main
    from ox_bb_pipeline.warehouse.runner import build

    example = Path(__file__).resolve().parents[2] / "workflows.example.yaml"
    monkeypatch.setenv("OX_BB_HOME", str(tmp_path))
    shutil.copy(example, tmp_path / "workflows.yaml")
    build(tmp_path)
    result = CliRunner().invoke(main, ["workflows"])
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.output.splitlines()] == [
        "critical-secrets-to-security",
        "insights-on-scanned-commits",
        "comment-open-pull-requests",
    ]
