"""The warehouse in Dagster: the model assets report what analysts look for in the UI (typed and
described columns, a preview of the top rows, findings by final severity, compliance per framework),
and `reports/workflows` runs workflows.yaml in the mode it asks for, with its preview per rule."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from ox_bb_pipeline.defs.bitbucket.resources import BitbucketResource
from ox_bb_pipeline.defs.storage.resources import StorageResource
from ox_bb_pipeline.defs.warehouse.assets import warehouse_models
from ox_bb_pipeline.defs.warehouse.workflows import workflows as workflows_asset
from ox_bb_pipeline.warehouse.decisions import decisions_path

from .conftest import LATER


def materialized(result: dg.ExecuteInJobResult) -> dict[str, dict]:
    """Asset key (joined by /) -> its metadata values."""
    return {
        "/".join(e.asset_key.path): {k: v.value for k, v in e.event_specific_data.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
    }


def test_warehouse_assets_show_severities_scores_columns_and_top_rows(lake, warehouse):
    result = dg.materialize([warehouse_models], resources={"storage": StorageResource()})
    assert result.success
    meta = materialized(result)

    queue = meta["warehouse/findings_queue"]
    assert queue["dagster/row_count"] == 5
    assert queue["open findings by final severity"].splitlines() == [
        "| final_severity | findings |",
        "|---|---|",
        "| critical | 1 |",
        "| high | 2 |",
        "| medium | 1 |",
        "| low | 1 |",
        "| info | 0 |",
    ]
    columns = {c.name: (c.type, c.description) for c in queue["dagster/column_schema"].columns}
    assert columns["assigned_team"] == ("VARCHAR", "the team a workflow assigned the finding to (null: none; see team)")
    assert columns["sla_due_at"][0] == "TIMESTAMP WITH TIME ZONE"
    preview = queue["preview"].splitlines()
    assert preview[0] == "| final_severity | status | application | title | sla_due_at | finding_id |"
    assert preview[2].startswith(
        f"| critical | open | payments | aws-key title | 2026-11-09 06:00:00+00:00 | {warehouse['secret']} |"
    )
    assert len(preview) == 2 + 5

    assert "| critical | 1 |" in meta["warehouse/enriched_findings"]["findings by final severity"]
    for table in ("compliance_scores", "compliance_report"):
        scores = meta[f"warehouse/{table}"]
        assert scores["compliance per framework"].splitlines() == [
            "| framework | score | passed | failed | not_evaluable |",
            "|---|---|---|---|---|",
            "| CIS Software Supply Chain Security Guide v1.0 | 100.0 | 4 | 0 | 74 |",
            "| NIST SSDF SP 800-218 | 100.0 | 3 | 0 | 27 |",
            "| OWASP Top 10 CI/CD Security Risks | 100.0 | 1 | 0 | 17 |",
        ]
    assert all("evidence" not in m["preview"].splitlines()[0].strip("| ").split(" | ") for m in meta.values())


def test_the_workflows_asset_previews_in_a_dry_run_and_acts_once_when_enabled(lake, warehouse, hook):
    rules = f"""
        enabled: false
        rules:
          - name: secrets-to-security
            trigger: any_finding
            conditions: {{category: [secrets]}}
            actions: [{{assign: {{team: security}}}}, {{webhook: {{url: "{hook.url}"}}}}]
          - name: web
            trigger: any_finding
            conditions: {{application: [web]}}
            actions: [{{set_severity: {{severity: high, reason: customer facing}}}}]
    """
    resources = {
        "bitbucket": BitbucketResource(connections_file=str(lake.home / "no-connections.yaml")),
        "storage": StorageResource(),
    }

    lake.config("workflows.yaml", rules)
    dry = materialized(dg.materialize([workflows_asset], resources=resources))["reports/workflows"]
    assert (dry["mode"], dry["rules"], dry["matches: secrets-to-security"], dry["matches: web"]) == (
        "dry run (enabled: false)",
        2,
        1,
        2,
    )
    assert dry["preview"] == "| rule | matches |\n|---|---|\n| secrets-to-security | 1 |\n| web | 2 |"
    assert "applied" not in dry
    assert not decisions_path(lake.home).exists() and hook.received == []

    lake.config("workflows.yaml", rules.replace("enabled: false", "enabled: true"))
    first = materialized(dg.materialize([workflows_asset], resources=resources))["reports/workflows"]
    again = materialized(dg.materialize([workflows_asset], resources=resources))["reports/workflows"]
    assert (first["mode"], first["actions_done"], first["actions_failed"]) == ("applied", 4, 0)
    assert first["applied"]["web"] == {
        "set_severity": {"rule": "web", "action": "set_severity", "done": 2, "skipped": 0, "error": 0}
    }
    assert (again["actions_done"], again["actions_failed"]) == (0, 0)
    assert len(hook.received) == 1

    lake.build(LATER + timedelta(hours=1))
    assert lake.rows(
        "SELECT rule_id, final_severity, assigned_team FROM findings_queue "
        "WHERE assigned_by_rule IS NOT NULL OR severity_explanation LIKE '%workflow%' "
        "ORDER BY rule_id"
    ) == [
        {"rule_id": "aws-key", "final_severity": "critical", "assigned_team": "security"},
        {"rule_id": "js.sqli", "final_severity": "high", "assigned_team": None},
        {"rule_id": "js.xss", "final_severity": "high", "assigned_team": None},
    ]
