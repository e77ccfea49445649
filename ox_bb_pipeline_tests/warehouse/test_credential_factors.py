"""The active-credential severity factor: a secret the opt-in live check found still accepted by the
connection's host is raised to Critical; a revoked or unchecked one keeps its severity. Exact rows."""

from __future__ import annotations

from datetime import UTC, datetime

CHECKED = datetime(2026, 11, 2, 5, 0, tzinfo=UTC)


def test_an_active_credential_is_raised_to_critical_and_a_revoked_one_is_not(lake):
    repo = lake.repository("svc")
    active = lake.finding(
        repo,
        "secrets",
        "bitbucket-access-token",
        severity="high",
        file_path="ci/tokens.env",
        validity="active",
        validity_checked_at=CHECKED,
    )
    revoked = lake.finding(
        repo,
        "secrets",
        "atlassian-api-token",
        severity="high",
        file_path="ci/old.env",
        validity="revoked",
        validity_checked_at=CHECKED,
    )
    unchecked = lake.finding(repo, "secrets", "slack-token", severity="high", file_path="ci/slack.env")
    lake.build()
    assert lake.severity(active) == {
        "final_severity": "critical",
        "severity_steps": 4,
        "severity_factors": [
            {"name": "active_credential", "direction": "up", "steps": 4, "evidence": "bitbucket-access-token"}
        ],
        "severity_explanation": "High → Critical: active credential (bitbucket-access-token accepted by the "
        "connection's host): raised to Critical",
    }
    assert lake.severity(revoked)["severity_factors"] == []
    assert lake.severity(unchecked)["severity_factors"] == []
    assert lake.rows(
        "SELECT validity, validity_checked_at FROM findings WHERE finding_id IN (?, ?, ?) ORDER BY file_path",
        active,
        revoked,
        unchecked,
    ) == [
        {"validity": "revoked", "validity_checked_at": CHECKED},  # ci/old.env
        {"validity": None, "validity_checked_at": None},  # ci/slack.env
        {"validity": "active", "validity_checked_at": CHECKED},  # ci/tokens.env
    ]


def test_active_credential_applies_to_secrets_only(lake):
    repo = lake.repository("api")
    sast = lake.finding(repo, "bandit", "B105", severity="low", file_path="app/auth.py", validity="active")
    lake.build()
    assert lake.severity(sast)["severity_factors"] == []
