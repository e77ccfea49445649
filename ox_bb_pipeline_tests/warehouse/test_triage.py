"""`ox-bb triage`: decisions appended to triage/decisions.jsonl (who, when, why), applied by the next builds
like suppressions (expiry honoured on the build's injected clock, `open` withdraws), shown in findings_queue
and the report."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from click.testing import CliRunner

from ox_bb_pipeline.app.cli import main
from ox_bb_pipeline.config import ConfigError
from ox_bb_pipeline.warehouse.report import write_reports
from ox_bb_pipeline.warehouse.triage import TriageError, read_triage, record_triage, triage_path

from .conftest import NOW

DAY = timedelta(days=1)
TRIAGE_COLUMNS = (
    "status",
    "previous_status",
    "triage_status",
    "triage_reason",
    "triage_owner",
    "triage_expires",
    "triage_decided_by",
    "triage_decided_at",
    "sla_status",
)


def queue(lake, finding_id: str) -> dict:
    return lake.rows(f"SELECT {', '.join(TRIAGE_COLUMNS)} FROM findings_queue WHERE finding_id = ?", finding_id)[0]


@pytest.fixture
def two(lake) -> tuple[str, str]:
    repo = lake.repository("api")
    lake.scan(repo, "bandit")
    a = lake.finding(repo, "bandit", "B105", file_path="app/config.py")
    b = lake.finding(repo, "bandit", "B311", file_path="app/random.py", severity="medium")
    lake.build(NOW)
    return a, b


def test_false_positive_applies_from_the_next_build_and_lasts(lake, two):
    a, b = two
    record_triage(
        a,
        "false_positive",
        reason="fixture, not a credential",
        owner="alice@example.com",
        decided_by="bob",
        now=NOW + timedelta(hours=2),
        home=lake.home,
    )
    lake.build(NOW + DAY)
    assert queue(lake, a) == {
        "status": "suppressed",
        "previous_status": "new",
        "triage_status": "false_positive",
        "triage_reason": "fixture, not a credential",
        "triage_owner": "alice@example.com",
        "triage_expires": None,
        "triage_decided_by": "bob",
        "triage_decided_at": NOW + timedelta(hours=2),
        "sla_status": "exempt",
    }
    assert queue(lake, b)["status"] == "open" and queue(lake, b)["triage_status"] is None
    lake.build(NOW + 30 * DAY)
    assert queue(lake, a)["status"] == "suppressed"  # every later build keeps it
    assert lake.rows(
        "SELECT finding_id, status, previous_status FROM findings_history WHERE finding_id = ? ORDER BY recorded_at", a
    ) == [
        {"finding_id": a, "status": "new", "previous_status": None},
        {"finding_id": a, "status": "suppressed", "previous_status": "new"},
    ]


def test_accepted_risk_expires_on_the_build_clock_and_open_withdraws(lake, two):
    a, b = two
    record_triage(
        a,
        "accepted_risk",
        reason="compensating WAF rule",
        owner="sec-team",
        expires=date(2026, 11, 5),
        decided_by="bob",
        now=NOW,
        home=lake.home,
    )
    record_triage(
        b, "false_positive", reason="seeded on purpose", owner="alice", decided_by="bob", now=NOW, home=lake.home
    )
    lake.build(NOW + 3 * DAY)  # 2026-11-05: the last day it holds
    assert (queue(lake, a)["status"], queue(lake, b)["status"]) == ("suppressed", "suppressed")
    lake.build(NOW + 4 * DAY)  # 2026-11-06: expired, reopened like an expired suppression
    assert queue(lake, a) == {
        "status": "reopened",
        "previous_status": "suppressed",
        "triage_status": "accepted_risk",
        "triage_reason": "compensating WAF rule",
        "triage_owner": "sec-team",
        "triage_expires": date(2026, 11, 5),
        "triage_decided_by": "bob",
        "triage_decided_at": NOW,
        "sla_status": "on_track",
    }

    record_triage(
        b,
        "open",
        reason="it was real after all",
        owner="alice",
        decided_by="carol",
        now=NOW + 4 * DAY + timedelta(hours=1),
        home=lake.home,
    )
    lake.build(NOW + 5 * DAY)
    assert queue(lake, b)["status"] == "reopened"
    assert queue(lake, b)["triage_status"] == "open" and queue(lake, b)["triage_decided_by"] == "carol"
    assert queue(lake, a)["status"] == "open"


def test_the_file_is_append_only_audited_and_checked(lake, two):
    a, b = two
    record_triage(a, "false_positive", reason="r1", owner="o1", decided_by="bob", now=NOW, home=lake.home)
    first = triage_path(lake.home).read_text()
    record_triage(a, "open", reason="r2", owner="o1", decided_by="carol", now=NOW + DAY, home=lake.home)
    text = triage_path(lake.home).read_text()
    assert text.startswith(first)  # the earlier line stays as it was
    assert [json.loads(line) for line in text.splitlines()] == [
        {
            "finding_id": a,
            "status": "false_positive",
            "reason": "r1",
            "owner": "o1",
            "expires": None,
            "decided_by": "bob",
            "decided_at": NOW.isoformat(),
        },
        {
            "finding_id": a,
            "status": "open",
            "reason": "r2",
            "owner": "o1",
            "expires": None,
            "decided_by": "carol",
            "decided_at": (NOW + DAY).isoformat(),
        },
    ]
    assert sorted(p.name for p in triage_path(lake.home).parent.iterdir()) == [".decisions.lock", "decisions.jsonl"]
    assert read_triage(lake.home).column("decision_order").to_pylist() == [1, 2]

    with pytest.raises(TriageError, match="not a finding_id") as bad:
        record_triage("nope", "false_positive", reason="x", owner="o", now=NOW, home=lake.home)
    with pytest.raises(TriageError, match=r"--reason is required.*--expires 2026-11-01 is in the past"):
        record_triage(b, "accepted_risk", reason=" ", owner="o", expires=date(2026, 11, 1), now=NOW, home=lake.home)
    with pytest.raises(TriageError, match=f"no finding {'0' * 32} in the warehouse"):
        record_triage("0" * 32, "false_positive", reason="x", owner="o", now=NOW, home=lake.home, known={a, b})
    assert str(bad.value).count(";") == 0
    assert triage_path(lake.home).read_text() == text  # refused decisions write nothing

    triage_path(lake.home).write_text(text + "{not json\n")
    with pytest.raises(ConfigError, match="line 3 is not a triage decision"):
        read_triage(lake.home)


def test_cli_records_and_the_report_shows_the_decision(lake, two, monkeypatch):
    a, _ = two
    monkeypatch.setenv("OX_BB_USER", "dana")
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "triage",
            a,
            "--status",
            "accepted_risk",
            "--reason",
            "legacy, replaced in Q1",
            "--owner",
            "payments-team",
            "--expires",
            "2099-03-31",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{a}: accepted_risk until 2099-03-31, recorded in {triage_path(lake.home)}")
    [row] = read_triage(lake.home).to_pylist()
    assert (row["decided_by"], row["owner"], row["expires"]) == ("dana", "payments-team", date(2099, 3, 31))

    result = runner.invoke(main, ["triage", "f" * 32, "--status", "false_positive", "--reason", "x", "--owner", "o"])
    assert result.exit_code == 1 and f"no finding {'f' * 32}" in result.output

    lake.build(NOW + DAY)
    html = write_reports(lake.home)["html"].read_text()
    triage_section = html[html.index('<section id="triage">') :]
    assert f"<code>{a}</code>" in triage_section
    assert "<td>accepted risk</td><td>legacy, replaced in Q1</td><td>payments-team</td><td>2099-03-31</td>" in html
