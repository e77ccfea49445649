"""applications.yaml, suppressions.yaml and SLA settings: the examples validate, and a bad file
gives one error that lists every problem, each naming its entry."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from ox_bb_pipeline.config import ConfigError
from ox_bb_pipeline.warehouse.settings import (
    load_applications,
    load_settings,
    load_sla,
    load_suppressions,
)

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_examples_are_valid(tmp_path):
    apps = load_applications(ROOT / "applications.example.yaml", home=tmp_path)
    assert [a.name for a in apps.applications] == ["payments", "platform", "legacy"]
    assert [c.name for c in apps.applications[1].children] == ["platform-billing", "platform-web"]
    suppressions = load_suppressions(ROOT / "suppressions.example.yaml", home=tmp_path).suppressions
    assert [(s.fingerprint, s.rule_id, s.path, s.expires) for s in suppressions] == [
        ("3f2a9c0d4e5b6a7f8091a2b3c4d5e6f7", None, None, date(2027, 1, 31)),
        (None, "B101", "tests/*", date(2027, 6, 30)),
    ]


def test_a_bad_applications_file_lists_every_problem(tmp_path):
    path = tmp_path / "applications.yaml"
    path.write_text("""
defaults: {data_classification: secret}
applications:
  - name: payments
    repositories: []
    business_priority: urgent
  - name: web
    repositories: [{workspace: acme, repo: web}]
    owner: alice
    children:
      - {name: web-api}
      - {name: payments, paths: [""]}
  - repositories: [{project: "[AB"}]
""")
    with pytest.raises(ConfigError) as caught:
        load_applications(path, home=tmp_path)
    assert caught.value.problems == [
        "defaults.data_classification: Input should be 'public', 'internal', 'confidential' or 'restricted'",
        "applications[0] (payments).business_priority: Input should be 'low', 'medium', 'high' or 'critical'",
        "applications[0] (payments).repositories: List should have at least 1 item after validation, not 0",
        "applications[1] (web).repositories[0]: unknown key `repo`; check the spelling against the example file",
        "applications[1] (web).children[0] (web-api).paths: is required",
        "applications[1] (web).children[1] (payments).paths: an empty glob matches nothing; use '*' for everything",
        "applications[1] (web): unknown key `owner`: did you mean `owners`?",
        "applications[2].name: is required",
        "applications[2].repositories[0].project: unbalanced brackets in glob '[AB'",
    ]
    assert str(caught.value).startswith(f"{path}: 9 problem(s):\n  - defaults.data_classification")


def test_duplicate_application_names_are_refused(tmp_path):
    path = tmp_path / "applications.yaml"
    path.write_text(
        "applications:\n  - {name: a, repositories: [{}]}\n"
        "  - {name: b, repositories: [{}], children: [{name: a, paths: ['x/*']}]}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_applications(path, home=tmp_path)
    assert caught.value.problems == ["file: application name 'a' is used twice; names must be unique"]


def test_a_bad_suppressions_file_lists_every_problem(tmp_path):
    path = tmp_path / "suppressions.yaml"
    path.write_text("""
suppressions:
  - fingerprint: not-a-hash
    reason: x
    owner: y
    expires: 2027-01-01
  - rule_id: B101
    path: "tests/*"
    owner: y
    expires: next week
  - fingerprint: abcdef0123456789
    rule_id: B101
    reason: both
    owner: z
    expires: 2027-01-01
  - reason: neither
    owner: z
    expires: 2027-01-01
""")
    with pytest.raises(ConfigError) as caught:
        load_suppressions(path, home=tmp_path)
    assert caught.value.problems == [
        (
            "suppressions[0] (not-a-hash).fingerprint: a fingerprint is the finding_id: hexadecimal, "
            "as shown in findings_queue"
        ),
        "suppressions[1] (B101).reason: is required",
        "suppressions[1] (B101).expires: Input should be a valid date or datetime, input is too short",
        "suppressions[2] (B101): give exactly one of 'fingerprint' (one finding) or 'rule_id' (+ 'path' glob)",
        "suppressions[3]: give exactly one of 'fingerprint' (one finding) or 'rule_id' (+ 'path' glob)",
    ]


def test_sla_days_default_and_overrides(tmp_path):
    assert load_sla(environ={}, home=tmp_path).sla_days == {"critical": 7, "high": 30, "medium": 90, "low": 120}
    path = tmp_path / "sla.yaml"
    path.write_text("sla_days: {critical: 3, info: 365}\n")
    assert load_sla(path, environ={"OX_BB_SLA_DAYS": "high=14, low=60"}, home=tmp_path).sla_days == {
        "critical": 3,
        "high": 14,
        "medium": 90,
        "low": 60,
        "info": 365,
    }
    with pytest.raises(ConfigError) as caught:
        load_sla(path, environ={"OX_BB_SLA_DAYS": "urgent=1,high=soon"}, home=tmp_path)
    assert caught.value.problems == ["'high=soon': expected SEVERITY=DAYS, e.g. critical=7"]
    path.write_text("sla_days: {critical: 0, urgent: 2}\n")
    with pytest.raises(ConfigError) as caught:
        load_sla(path, environ={}, home=tmp_path)
    assert caught.value.problems == [
        "sla_days.urgent.[key]: Input should be 'info', 'low', 'medium', 'high' or 'critical'"
    ]


def test_settings_report_the_problems_of_every_file_together(tmp_path, monkeypatch):
    home, other = tmp_path / "home", tmp_path / "env-home"
    home.mkdir()
    other.mkdir()
    (other / "sla.yaml").write_text("sla_days: nope\n")  # the home named by OX_BB_HOME is never read
    monkeypatch.setenv("OX_BB_HOME", str(other))
    monkeypatch.chdir(tmp_path)
    (home / "applications.yaml").write_text("applications: [{name: a}]\n")
    (home / "suppressions.yaml").write_text("suppressions: [{rule_id: X, owner: o, expires: 2027-01-01}]\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(home)
    assert caught.value.problems == [
        f"{home / 'applications.yaml'}: applications[0] (a).repositories: is required",
        f"{home / 'suppressions.yaml'}: suppressions[0] (X).reason: is required",
    ]


def test_a_named_file_that_does_not_exist_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("OX_BB_APPLICATIONS", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="file not found"):
        load_applications(home=tmp_path)
