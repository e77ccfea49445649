"""Workflow decisions feed back into the warehouse: an applied `assign` names the finding's team or
owner in findings_queue, an applied `set_severity` moves its final severity (explained, with the SLA
following) in enriched_findings and the queue; both show from the next build on, survive rebuilds
(even from an empty warehouse), are made once, and a dry run decides nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ox_bb_pipeline.config import ConfigError, data_home
from ox_bb_pipeline.warehouse.decisions import decisions_path
from ox_bb_pipeline.warehouse.workflows import apply

from .conftest import LATER, NOW, workflows, writable

REBUILT = LATER + timedelta(hours=1)
RULES = """
    enabled: true
    rules:
      - name: payments-passwords
        trigger: any_finding
        conditions: {rule_id: [B105]}
        actions:
          - {set_severity: {severity: critical, reason: hard-coded password in a payment service}}
          - {assign: {team: security}}
      - name: internal-xss
        trigger: any_finding
        conditions: {rule_id: [js.xss]}
        actions:
          - {set_severity: {severity: info, reason: internal page only}}
          - {assign: {owner: alice}}
      - name: secrets-to-bob
        trigger: any_finding
        conditions: {category: [secrets]}
        actions: [{assign: {owner: bob}}]
      - name: all-secrets-to-security
        trigger: any_finding
        conditions: {category: [secrets]}
        actions: [{assign: {team: security}}]
"""


def run(lake, text: str = RULES, now=LATER) -> list[dict]:
    con = writable(lake)
    try:
        return apply(con, workflows(text), {}, now, home=data_home())
    finally:
        con.close()


def queue(lake) -> dict[str, tuple]:
    return {
        r.pop("finding_id"): tuple(r.values())
        for r in lake.rows(
            "SELECT finding_id, final_severity, assigned_team, assignee, assigned_by_rule, sla_days, sla_due_at, "
            "sla_status FROM findings_queue"
        )
    }


def test_an_applied_assignment_names_the_team_and_owner_in_the_queue(lake, warehouse):
    run(lake)
    assert {fid: row[1:4] for fid, row in queue(lake).items()} == {
        fid: (None, None, None) for fid in warehouse.values()
    }  # decided, shown from the next build on

    lake.build(REBUILT)
    rows = lake.rows(
        "SELECT finding_id, team, owners, assigned_team, assignee, assigned_by_rule "
        "FROM findings_queue ORDER BY rule_id"
    )
    assert [tuple(r.values()) for r in rows] == [
        (warehouse["b105"], None, [], "security", None, "payments-passwords"),
        (warehouse["b311"], None, [], None, None, None),
        (warehouse["secret"], None, [], "security", "bob", "all-secrets-to-security, secrets-to-bob"),
        (warehouse["sqli"], None, [], None, None, None),
        (warehouse["xss"], None, [], None, "alice", "internal-xss"),
    ]


def test_an_applied_severity_change_is_explained_and_moves_the_sla(lake, warehouse):
    assert queue(lake)[warehouse["b105"]][:1] + queue(lake)[warehouse["b105"]][4:] == (
        "high",
        30,
        NOW + timedelta(days=30),
        "on_track",
    )
    run(lake)
    lake.build(REBUILT)

    enriched = {
        r.pop("finding_id"): r
        for r in lake.rows(
            "SELECT finding_id, final_severity, severity_factors, severity_explanation, severity_set_by_rule "
            "FROM enriched_findings WHERE severity_set_by_rule IS NOT NULL"
        )
    }
    assert enriched == {
        warehouse["b105"]: {
            "final_severity": "critical",
            "severity_factors": [
                {
                    "name": "workflow:payments-passwords",
                    "direction": "up",
                    "steps": 1,
                    "evidence": "hard-coded password in a payment service",
                }
            ],
            "severity_explanation": (
                "High: the base severity of rule B105; no severity factor applies; "
                "workflow 'payments-passwords' raised it to Critical: hard-coded "
                "password in a payment service"
            ),
            "severity_set_by_rule": "payments-passwords",
        },
        warehouse["xss"]: {
            "final_severity": "info",
            "severity_factors": [
                {"name": "workflow:internal-xss", "direction": "down", "steps": 1, "evidence": "internal page only"}
            ],
            "severity_explanation": (
                "Low: the base severity of rule js.xss; no severity factor applies; "
                "workflow 'internal-xss' lowered it to Info: internal page only"
            ),
            "severity_set_by_rule": "internal-xss",
        },
    }
    rows = queue(lake)
    # critical: 7 days from first seen, long past at the rebuild; info has no SLA
    assert rows[warehouse["b105"]] == (
        "critical",
        "security",
        None,
        "payments-passwords",
        7,
        NOW + timedelta(days=7),
        "breached",
    )
    assert rows[warehouse["xss"]] == ("info", None, "alice", "internal-xss", None, None, "exempt")
    assert rows[warehouse["b311"]] == ("medium", None, None, None, 90, NOW + timedelta(days=90), "on_track")
    assert lake.rows(
        "SELECT finding_id, previous_final_severity, final_severity, change FROM findings_history "
        "WHERE recorded_at = ? ORDER BY final_severity",
        REBUILT,
    ) == [
        {
            "finding_id": warehouse["b105"],
            "previous_final_severity": "high",
            "final_severity": "critical",
            "change": "severity",
        },
        {
            "finding_id": warehouse["sqli"],
            "previous_final_severity": "high",
            "final_severity": "high",
            "change": "open",
        },
        {
            "finding_id": warehouse["xss"],
            "previous_final_severity": "low",
            "final_severity": "info",
            "change": "severity",
        },
    ]


def test_a_severity_change_keeps_the_factors_and_adds_the_workflow_last(lake):
    repo = lake.repository("api")
    lake.scan(repo, "bandit")
    finding = lake.finding(repo, "bandit", "B105", severity="high", file_path="tests/fixtures/config.py")
    lake.build(NOW)
    run(
        lake,
        """
        enabled: true
        rules:
          - name: fixtures-matter
            trigger: any_finding
            actions: [{set_severity: {severity: high, reason: the fixture is shipped}}]
    """,
        now=NOW,
    )
    lake.build(NOW + timedelta(hours=1))
    row = lake.rows("SELECT final_severity, severity_factors, severity_explanation FROM enriched_findings")[0]
    assert row == {
        "final_severity": "high",
        "severity_factors": [
            {"name": "code_context", "direction": "down", "steps": 1, "evidence": "test code under tests/fixtures/"},
            {"name": "workflow:fixtures-matter", "direction": "up", "steps": 1, "evidence": "the fixture is shipped"},
        ],
        "severity_explanation": "High → Medium: only in test code under tests/fixtures/; "
        "workflow 'fixtures-matter' raised it to High: the fixture is shipped",
    }
    assert lake.value("SELECT final_severity FROM findings_queue WHERE finding_id = ?", finding) == "high"


def test_applying_twice_changes_nothing_and_logs_nothing_new(lake, warehouse):
    first = run(lake)
    lake.build(REBUILT)
    decided = decisions_path(lake.home).read_bytes()
    logged = lake.rows("SELECT * FROM workflow_action_log ORDER BY ALL")
    audited = lake.rows("SELECT * FROM workflow_audit ORDER BY ALL")
    shown = queue(lake)

    second = run(lake, now=REBUILT)
    lake.build(REBUILT + timedelta(hours=1))
    assert [s["done"] for s in first] == [1, 1, 1, 1, 1, 1]
    assert second == [{**s, "done": 0} for s in first]
    assert decisions_path(lake.home).read_bytes() == decided
    assert lake.rows("SELECT * FROM workflow_action_log ORDER BY ALL") == logged
    assert lake.rows("SELECT * FROM workflow_audit ORDER BY ALL") == audited
    assert queue(lake) == shown


def test_decisions_outlive_the_warehouse_file(lake, warehouse):
    """The warehouse can be rebuilt from nothing: the decisions file still holds what was decided, so
    the queue shows it again and the next apply does not decide (or audit) it a second time."""
    run(lake)
    (lake.home / "warehouse.duckdb").unlink()
    lake.build(REBUILT)
    assert queue(lake)[warehouse["b105"]][:4] == ("critical", "security", None, "payments-passwords")
    assert [s["done"] for s in run(lake, now=REBUILT)] == [0, 0, 0, 0, 0, 0]
    assert lake.value("SELECT count(*) FROM workflow_audit") == 0


def test_a_dry_run_decides_nothing(lake, warehouse):
    before = queue(lake)
    assert run(lake, RULES.replace("enabled: true", "enabled: false")) == []
    lake.build(REBUILT)
    assert not decisions_path(lake.home).exists()
    assert {fid: row[:4] for fid, row in queue(lake).items()} == {fid: row[:4] for fid, row in before.items()}


def test_an_empty_decisions_file_is_no_decision_and_a_broken_one_is_named(lake, warehouse):
    path = decisions_path(lake.home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    lake.build(REBUILT)
    assert lake.value("SELECT count(*) FROM findings_queue WHERE assigned_by_rule IS NOT NULL") == 0

    path.write_bytes(b"not parquet")
    with pytest.raises(ConfigError) as caught:
        lake.build(REBUILT + timedelta(hours=1))
    assert caught.value.source == str(path)
    assert "restore it from a backup, or delete it" in caught.value.problems[0]
