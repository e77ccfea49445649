"""The queue's lifecycle across successive builds with an injected clock: new → open → resolved →
reopened, resolution only by a complete scan of the same scope, suppressions and their expiry, SLA
dates and breaches, and the append-only history."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from .conftest import NOW

DAY = timedelta(days=1)


def queue(lake, finding_id: str, *columns: str) -> dict:
    cols = ", ".join(
        columns
        or (
            "status",
            "previous_status",
            "seen",
            "first_seen",
            "last_seen",
            "status_changed_at",
            "resolved_at",
            "reopened_count",
        )
    )
    return lake.rows(f"SELECT {cols} FROM findings_queue WHERE finding_id = ?", finding_id)[0]


def history(lake) -> list[tuple]:
    return [
        tuple(r.values())
        for r in lake.rows(
            "SELECT recorded_at, finding_id, status, previous_status, change FROM findings_history "
            "ORDER BY recorded_at, finding_id"
        )
    ]


def test_new_open_resolved_reopened_open(lake):
    repo = lake.repository("api")
    lake.scan(repo, "bandit", "secrets")
    a = lake.finding(repo, "bandit", "B105", file_path="app/config.py")
    b = lake.finding(repo, "secrets", "aws-key", file_path="deploy.sh")

    lake.build(NOW)
    assert queue(lake, a) == {
        "status": "new",
        "previous_status": None,
        "seen": True,
        "first_seen": NOW,
        "last_seen": NOW,
        "status_changed_at": NOW,
        "resolved_at": None,
        "reopened_count": 0,
    }

    lake.build(NOW + DAY)
    assert queue(lake, a) == {
        "status": "open",
        "previous_status": "new",
        "seen": True,
        "first_seen": NOW,
        "last_seen": NOW + DAY,
        "status_changed_at": NOW + DAY,
        "resolved_at": None,
        "reopened_count": 0,
    }

    lake.clear("findings", "bandit")  # fixed: the next complete bandit scan no longer reports it
    lake.build(NOW + 2 * DAY)
    assert queue(lake, a) == {
        "status": "resolved",
        "previous_status": "open",
        "seen": False,
        "first_seen": NOW,
        "last_seen": NOW + DAY,
        "status_changed_at": NOW + 2 * DAY,
        "resolved_at": NOW + 2 * DAY,
        "reopened_count": 0,
    }
    assert queue(lake, b)["status"] == "open"

    lake.build(NOW + 3 * DAY)  # still gone: stays resolved, resolved_at unchanged
    assert queue(lake, a, "status", "resolved_at", "status_changed_at") == {
        "status": "resolved",
        "resolved_at": NOW + 2 * DAY,
        "status_changed_at": NOW + 2 * DAY,
    }

    a_again = lake.finding(repo, "bandit", "B105", file_path="app/config.py")
    assert a_again == a  # same fingerprint: the same finding
    lake.build(NOW + 4 * DAY)
    assert queue(lake, a) == {
        "status": "reopened",
        "previous_status": "resolved",
        "seen": True,
        "first_seen": NOW,
        "last_seen": NOW + 4 * DAY,
        "status_changed_at": NOW + 4 * DAY,
        "resolved_at": None,
        "reopened_count": 1,
    }

    lake.build(NOW + 5 * DAY)
    assert queue(lake, a, "status", "reopened_count") == {"status": "open", "reopened_count": 1}

    assert history(lake) == sorted(
        [
            (NOW, a, "new", None, "new"),
            (NOW, b, "new", None, "new"),
            (NOW + DAY, a, "open", "new", "open"),
            (NOW + DAY, b, "open", "new", "open"),
            (NOW + 2 * DAY, a, "resolved", "open", "resolved"),
            (NOW + 4 * DAY, a, "reopened", "resolved", "reopened"),
            (NOW + 5 * DAY, a, "open", "reopened", "open"),
        ],
        key=lambda row: (row[0], row[1]),
    )


def test_a_scanner_error_or_a_missing_scan_never_resolves(lake):
    repo, other = lake.repository("api"), lake.repository("worker")
    lake.scan(repo, "bandit")
    lake.scan(other, "semgrep")
    a = lake.finding(repo, "bandit", "B105", file_path="app/config.py")
    b = lake.finding(other, "semgrep", "sqli", file_path="q.js")
    lake.build(NOW)

    lake.clear("findings", "bandit")
    lake.clear("findings", "semgrep")
    lake.clear("scans", "scan_runs")
    lake.scan(repo, "bandit", status="error", error="bandit timed out")  # scanned, but not completely
    lake.build(NOW + DAY)  # `other` has no semgrep run at all any more
    assert queue(lake, a, "status", "seen", "scope_complete", "last_seen") == {
        "status": "open",
        "seen": False,
        "scope_complete": False,
        "last_seen": NOW,
    }
    assert queue(lake, b, "status", "seen", "scope_complete") == {
        "status": "open",
        "seen": False,
        "scope_complete": False,
    }

    lake.clear("scans", "scan_runs")
    lake.scan(repo, "bandit")
    lake.build(NOW + 2 * DAY)
    assert queue(lake, a, "status", "resolved_at") == {"status": "resolved", "resolved_at": NOW + 2 * DAY}
    assert queue(lake, b, "status") == {"status": "open"}


def test_posture_findings_resolve_only_when_the_check_is_evaluated_again(lake):
    repo = lake.repository("api")
    fid = lake.finding(repo, "posture", "BB-003", anchor="bb-003")
    lake.posture(repo, "BB-003", "fail", "no force restriction", finding_id=fid)
    lake.build(NOW)

    lake.clear("findings", "posture")
    lake.clear("scans", "posture_results")
    lake.posture(repo, "BB-003", "not_evaluable", "branch_restrictions could not be read (forbidden)")
    lake.build(NOW + DAY)
    assert queue(lake, fid, "status", "scope_complete") == {"status": "open", "scope_complete": False}

    lake.clear("scans", "posture_results")
    lake.posture(repo, "BB-003", "pass", "force pushes prevented")
    lake.build(NOW + 2 * DAY)
    assert queue(lake, fid, "status", "scope_complete") == {"status": "resolved", "scope_complete": True}


def test_suppressions_by_fingerprint_and_by_rule_and_path_and_their_expiry(lake):
    repo, other = lake.repository("api"), lake.repository("web", workspace="beta")
    lake.scan(repo, "bandit")
    lake.scan(other, "bandit")
    accepted = lake.finding(repo, "bandit", "B105", file_path="app/config.py")
    in_tests = lake.finding(repo, "bandit", "B101", file_path="tests/test_app.py", severity="low")
    in_code = lake.finding(repo, "bandit", "B101", file_path="app/main.py", severity="low")
    other_ws = lake.finding(other, "bandit", "B101", file_path="tests/test_web.py", severity="low")
    lake.config(
        "suppressions.yaml",
        f"""
        suppressions:
          - fingerprint: {accepted}
            reason: test credential, revoked
            owner: alice@example.com
            expires: 2026-11-05
          - rule_id: B101
            path: "tests/*"
            repository: "acme/*"
            reason: asserts are fine in tests
            owner: security-team
            expires: 2027-06-30
    """,
    )
    lake.build(NOW)
    columns = (
        "status",
        "suppression_id",
        "suppression_reason",
        "suppression_owner",
        "suppression_expires",
        "sla_status",
    )
    assert queue(lake, accepted, *columns) == {
        "status": "suppressed",
        "suppression_id": "S1",
        "suppression_reason": "test credential, revoked",
        "suppression_owner": "alice@example.com",
        "suppression_expires": date(2026, 11, 5),
        "sla_status": "exempt",
    }
    assert queue(lake, in_tests, *columns) == {
        "status": "suppressed",
        "suppression_id": "S2",
        "suppression_reason": "asserts are fine in tests",
        "suppression_owner": "security-team",
        "suppression_expires": date(2027, 6, 30),
        "sla_status": "exempt",
    }
    assert queue(lake, in_code, "status", "suppression_id") == {"status": "new", "suppression_id": None}
    assert queue(lake, other_ws, "status", "suppression_id") == {"status": "new", "suppression_id": None}

    lake.build(NOW + 2 * DAY)  # 2026-11-04: still valid
    assert queue(lake, accepted, "status")["status"] == "suppressed"

    lake.build(NOW + 4 * DAY)  # 2026-11-06: expired, so the finding reopens
    assert queue(lake, accepted, "status", "previous_status", "suppression_id", "reopened_count") == {
        "status": "reopened",
        "previous_status": "suppressed",
        "suppression_id": "S1",
        "reopened_count": 1,
    }
    lake.build(NOW + 5 * DAY)
    assert queue(lake, accepted, "status")["status"] == "open"

    (lake.home / "suppressions.yaml").unlink()  # a removed suppression reopens too
    lake.build(NOW + 6 * DAY)
    assert queue(lake, in_tests, "status", "suppression_id") == {"status": "reopened", "suppression_id": None}


@pytest.mark.parametrize(("severity", "days"), [("critical", 7), ("high", 30), ("medium", 90), ("low", 120)])
def test_sla_due_dates_follow_the_final_severity(lake, severity, days):
    repo = lake.repository("api")
    lake.scan(repo, "bandit")
    fid = lake.finding(repo, "bandit", "B105", severity=severity, file_path="app.py")
    lake.build(NOW)
    assert queue(lake, fid, "sla_days", "sla_started_at", "sla_due_at", "sla_status", "sla_breached") == {
        "sla_days": days,
        "sla_started_at": NOW,
        "sla_due_at": NOW + days * DAY,
        "sla_status": "on_track",
        "sla_breached": False,
    }
    lake.build(NOW + days * DAY)  # due now: not yet breached
    assert queue(lake, fid, "sla_status")["sla_status"] == "on_track"
    lake.build(NOW + (days + 1) * DAY)
    assert queue(lake, fid, "sla_status", "sla_breached") == {"sla_status": "breached", "sla_breached": True}


def test_sla_met_missed_exempt_and_restart_on_reopen(lake):
    repo = lake.repository("api")
    lake.scan(repo, "bandit")
    quick = lake.finding(repo, "bandit", "B1", severity="critical", file_path="a.py")
    slow = lake.finding(repo, "bandit", "B2", severity="critical", file_path="b.py")
    info = lake.finding(repo, "bandit", "B3", severity="info", file_path="c.py")
    lake.build(NOW)
    assert queue(lake, info, "sla_days", "sla_due_at", "sla_status") == {
        "sla_days": None,
        "sla_due_at": None,
        "sla_status": "exempt",
    }

    lake.clear("findings", "bandit")
    slow = lake.finding(repo, "bandit", "B2", severity="critical", file_path="b.py")
    lake.build(NOW + 3 * DAY)
    assert queue(lake, quick, "status", "sla_status", "sla_breached") == {
        "status": "resolved",
        "sla_status": "met",
        "sla_breached": False,
    }

    lake.clear("findings", "bandit")
    lake.build(NOW + 9 * DAY)
    assert queue(lake, slow, "status", "sla_status", "sla_breached") == {
        "status": "resolved",
        "sla_status": "missed",
        "sla_breached": True,
    }

    lake.finding(repo, "bandit", "B1", severity="critical", file_path="a.py")
    lake.build(NOW + 20 * DAY)
    assert queue(lake, quick, "status", "sla_started_at", "sla_due_at", "sla_status") == {
        "status": "reopened",
        "sla_started_at": NOW + 20 * DAY,
        "sla_due_at": NOW + 27 * DAY,
        "sla_status": "on_track",
    }


def test_sla_days_come_from_sla_yaml_and_the_environment(lake, monkeypatch):
    repo = lake.repository("api")
    critical = lake.finding(repo, "bandit", "B1", severity="critical", file_path="a.py")
    high = lake.finding(repo, "bandit", "B2", severity="high", file_path="b.py")
    info = lake.finding(repo, "bandit", "B3", severity="info", file_path="c.py")
    lake.config("sla.yaml", "sla_days: {critical: 3, info: 365}\n")
    monkeypatch.setenv("OX_BB_SLA_DAYS", "high=14")
    lake.build(NOW)
    assert [queue(lake, f, "sla_days")["sla_days"] for f in (critical, high, info)] == [3, 14, 365]


def test_history_is_append_only(lake):
    repo = lake.repository("api")
    lake.scan(repo, "bandit")
    lake.finding(repo, "bandit", "B1", file_path="a.py")
    lake.build(NOW)
    first = lake.rows("SELECT * FROM findings_history")
    lake.finding(repo, "bandit", "B2", file_path="b.py")
    lake.build(NOW + DAY)
    second = lake.rows("SELECT * FROM findings_history ORDER BY recorded_at, finding_id")
    lake.clear("findings", "bandit")
    lake.build(NOW + 2 * DAY)
    third = lake.rows("SELECT * FROM findings_history ORDER BY recorded_at, finding_id")
    lake.build(NOW + 3 * DAY)  # nothing changed: nothing appended
    fourth = lake.rows("SELECT * FROM findings_history ORDER BY recorded_at, finding_id")
    assert (len(first), len(second), len(third), len(fourth)) == (1, 3, 5, 5)
    assert second[:1] == first and third[:3] == second and fourth == third
    assert [r["build_id"] for r in third] == [
        "20261102T060000.000000Z",
        "20261103T060000.000000Z",
        "20261103T060000.000000Z",
        "20261104T060000.000000Z",
        "20261104T060000.000000Z",
    ]
