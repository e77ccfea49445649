"""docs/analyst-guide.md: each of its ten questions runs, through `ox-bb query`'s read-only path and through
pandas, on a warehouse where each has an answer; the answers are checked row by row."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from ox_bb_pipeline.app.warehouse_cli import query
from ox_bb_pipeline.warehouse.triage import record_triage

from .conftest import NOW

GUIDE = Path(__file__).parents[2] / "docs" / "analyst-guide.md"
LATER = NOW + timedelta(days=40)


def questions() -> dict[int, str]:
    text = GUIDE.read_text()
    found = re.findall(r"^## (\d+)\. .*?\n+```sql\n(.*?)```", text, re.DOTALL | re.MULTILINE)
    return {int(number): sql for number, sql in found}


@pytest.fixture
def answered(lake) -> dict[int, list[dict]]:
    lake.config(
        "applications.yaml",
        """
        applications:
          - {name: payments, team: pay, repositories: [{repository: api}]}
          - {name: web, team: front, repositories: [{repository: web}]}
    """,
    )
    api, web = lake.repository("api"), lake.repository("web")
    lake.scan(api, "secrets", "bandit", "sca")
    lake.scan(web, "semgrep")
    lake.finding(
        api, "secrets", "aws-key", severity="critical", file_path="deploy.sh", start_line=4, controls=["CIS-SSC-1.5.1"]
    )
    b105 = lake.finding(api, "bandit", "B105", severity="high", file_path="app/config.py")
    lake.finding(
        api,
        "sca",
        "GHSA-1",
        severity="high",
        file_path="requirements.txt",
        package="requests",
        version="2.19.0",
        fixed_version="2.31.0",
    )
    lake.finding(web, "semgrep", "js.xss", severity="medium", file_path="web/index.js")
    lake.posture(api, "BB-003", "fail")
    lake.posture(web, "BB-003", "pass")
    lake.build(NOW)
    record_triage(
        b105,
        "accepted_risk",
        reason="legacy config, replaced in Q1",
        owner="pay-lead",
        expires=(LATER + timedelta(days=30)).date(),
        decided_by="dana",
        now=NOW,
        home=lake.home,
    )
    lake.finding(web, "semgrep", "js.sqli", severity="high", file_path="web/db.js")
    lake.build(LATER)  # 40 days on: the critical secret (7 days) and the first high findings (30) are breached
    answers = {}
    for number, sql in questions().items():
        via_cli = json.loads(query(sql, "json", home=lake.home, max_rows=1000))
        con = duckdb.connect(str(lake.home / "warehouse.duckdb"), read_only=True)
        try:
            frame = con.sql(sql).df()
        finally:
            con.close()
        assert len(frame) == len(via_cli) and list(frame.columns) == list(via_cli[0] if via_cli else frame.columns)
        answers[number] = via_cli
    return answers


def test_the_guide_has_ten_questions():
    assert sorted(questions()) == list(range(1, 11))


def test_each_question_answers(answered):
    assert all(answered[n] for n in range(1, 11)), [n for n in range(1, 11) if not answered[n]]
    assert answered[1] == [
        {"application": "payments", "final_severity": "critical", "findings": 1},
        {"application": "payments", "final_severity": "high", "findings": 1},
        {"application": "web", "final_severity": "high", "findings": 1},
        {"application": "web", "final_severity": "medium", "findings": 1},
    ]
    assert [(r["repository_full_name"], r["final_severity"], r["days_overdue"]) for r in answered[2]] == [
        ("acme/api", "critical", 33),
        ("acme/api", "high", 10),
    ]
    assert answered[3] == [
        {"repository_full_name": "acme/api", "application": "payments", "failing_checks": ["BB-003"]}
    ]
    assert [(r["repository_full_name"], r["file_path"], r["start_line"]) for r in answered[4]] == [
        ("acme/api", "deploy.sh", 4)
    ]
    assert [(r["package"], r["fixed_version"], r["advisories"]) for r in answered[5]] == [
        ("requests", "2.31.0", ["GHSA-1"])
    ]
    assert answered[6] == [
        {"change": "new", "application": "web", "findings": 1},
        {"change": "open", "application": "payments", "findings": 2},
        {"change": "open", "application": "web", "findings": 1},
        {"change": "suppressed", "application": "payments", "findings": 1},
    ]
    assert {r["application"] for r in answered[7]} == {"payments", "web"}
    assert answered[8][0]["applications_failing"] >= 1
    assert [(r["decision"], r["reason"], r["owner"], r["triage_decided_by"]) for r in answered[9]] == [
        ("accepted_risk", "legacy config, replaced in Q1", "pay-lead", "dana")
    ]
    assert answered[10] == [
        {"team": "pay", "critical": 1, "high": 1, "open_findings": 2},
        {"team": "front", "critical": 0, "high": 1, "open_findings": 2},
    ]
