"""SARIF 2.1.0 import: a hand-written log from a made-up container scanner (data/container-guard.sarif)
exercises rule resolution, severities, skipped results, identity and errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ox_bb_pipeline.findings import RepoRef
from ox_bb_pipeline.scanners.sarif import SarifError, import_directory, import_sarif

DATA = Path(__file__).parent / "data"
WEB = RepoRef("sandbox-token", "acme", "{web-uuid}", "web", "9d5a1f0")


pytestmark = pytest.mark.usefixtures("secret_salt")


@pytest.fixture(scope="module")
def findings():
    return import_sarif(DATA / "container-guard.sarif", WEB)


def rewritten(tmp_path: Path, change) -> Path:
    log = json.loads((DATA / "container-guard.sarif").read_text())
    change(log["runs"][0]["results"])
    path = tmp_path / "changed.sarif"
    path.write_text(json.dumps(log))
    return path


def test_results_become_external_findings_of_the_tool(findings):
    assert {(f.scanner, f.scanner_version, f.category) for f in findings} == {("ContainerGuard", "3.2.1", "external")}
    # versionControlProvenance names the commit the tool scanned
    assert {f.commit for f in findings} == {"4b825dc642cb6eb9a060e54bf8d69288fbee4904"}
    assert {(f.workspace, f.repository_uuid) for f in findings} == {("acme", "{web-uuid}")}


def test_rules_resolve_by_index_and_severity_follows_security_severity_then_level(findings):
    assert [(f.rule_id, f.base_severity, f.file_path, f.start_line) for f in findings] == [
        ("CG-001", "critical", "docker/Dockerfile", 1),  # ruleIndex only; security-severity 9.8
        ("CG-002", "high", "docker/Dockerfile", 12),  # 7.1 wins over the rule's warning level
        ("CG-003", "low", "docker/Dockerfile", 5),  # no score: the rule's default level, note
        ("CG-003", "high", "docker/worker image/Dockerfile", 9),  # the result's own level, error
        ("CG-004", "medium", "docker/Dockerfile", None),  # 4.0
        ("CG-005", "low", "docker/Dockerfile", 7),  # 2.5; rule.index reference; a rejected suppression
        ("CG-006", "info", "docker/Dockerfile", None),  # level none
    ]
    first = findings[0]
    assert (first.title, first.cwe) == ("Image ships a vulnerable OpenSSL", "CWE-787")
    assert first.remediation == "Rebuild on a patched base image. See https://container-guard.example/rules/CG-001"


def test_passing_not_applicable_and_suppressed_results_are_skipped(findings):
    messages = " ".join(f.evidence for f in findings)
    assert "unprivileged user" not in messages  # kind pass
    assert "Scratch image" not in messages  # kind notApplicable
    assert "debug stage" not in messages  # suppressed in source


def test_evidence_masks_a_secret_in_a_snippet(findings):
    [token] = [f for f in findings if f.rule_id == "CG-005"]
    assert "tok-7Qm2Xr9Lp4Vz8Kd3wN6" not in token.evidence
    assert 'ENV API_TOKEN="tok-… (23 chars)"' in token.evidence


def test_partial_fingerprints_and_snippets_keep_identity_when_lines_move(findings, tmp_path):
    def move(results):
        for result in results:
            for location in result.get("locations", []):
                region = location["physicalLocation"].get("region")
                if region:
                    region["startLine"] += 40
        results[0]["message"]["text"] = "openssl 1.1.1k (rebuilt image) is affected by CVE-2023-0286"

    moved = import_sarif(rewritten(tmp_path, move), WEB)
    assert [f.finding_id for f in moved] == [f.finding_id for f in findings]
    assert moved[0].start_line == 41


def test_a_changed_partial_fingerprint_is_a_new_finding(findings, tmp_path):
    def refingerprint(results):
        results[0]["partialFingerprints"]["primaryLocationLineHash"] = "0f0e0d0c0b0a0908:1"

    moved = import_sarif(rewritten(tmp_path, refingerprint), WEB)
    assert moved[0].finding_id != findings[0].finding_id
    assert [f.finding_id for f in moved[1:]] == [f.finding_id for f in findings[1:]]


def test_a_malformed_file_raises_an_error_naming_it(tmp_path):
    with pytest.raises(SarifError, match="truncated.sarif: not readable as JSON"):
        import_sarif(DATA / "truncated.sarif", WEB)
    wrong_version = tmp_path / "old.sarif"
    wrong_version.write_text(json.dumps({"version": "2.0.0", "runs": []}))
    with pytest.raises(SarifError, match="old.sarif: SARIF version '2.0.0'"):
        import_sarif(wrong_version, WEB)
    no_tool = tmp_path / "no-tool.sarif"
    no_tool.write_text(json.dumps({"version": "2.1.0", "runs": [{"results": []}]}))
    with pytest.raises(SarifError, match="no-tool.sarif: malformed SARIF run"):
        import_sarif(no_tool, WEB)


def test_a_directory_import_reports_unknown_repositories_and_bad_files_and_goes_on(tmp_path):
    web = tmp_path / "imports" / "sandbox-token" / "acme" / "web"
    web.mkdir(parents=True)
    shutil.copy(DATA / "container-guard.sarif", web / "container-guard.sarif")
    shutil.copy(DATA / "truncated.sarif", web / "truncated.sarif")
    (tmp_path / "imports" / "sandbox-token" / "acme" / "gone").mkdir()
    shutil.copy(DATA / "container-guard.sarif", tmp_path / "imports" / "sandbox-token" / "acme" / "gone" / "a.sarif")
    shutil.copy(DATA / "container-guard.sarif", tmp_path / "imports" / "stray.sarif")

    result = import_directory(tmp_path / "imports", {("sandbox-token", "acme", "web"): WEB})

    assert [Path(f).name for f in result.files] == ["container-guard.sarif"]
    assert len(result.findings) == 7
    errors = {Path(f).name: reason for f, reason in result.errors.items()}
    assert errors.keys() == {"a.sarif", "truncated.sarif", "stray.sarif"}
    assert errors["a.sarif"] == "unknown repository sandbox-token/acme/gone"
    assert "truncated.sarif: not readable as JSON" in errors["truncated.sarif"]
    assert errors["stray.sarif"] == "not under <connection>/<workspace>/<repo_slug>/"
    assert import_directory(tmp_path / "nothing-here", {}).findings == []


GITHUB_TOKEN = "ghp_R4nd0mT0k3nV4lu3xY9zQ8wE7rT6yU5iO4pA3"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SLACK_PATH = "T0A1B2C3D/B4E5F6G7H/Zq8Wx7Ec6Rv5Tb4Yn3Um2Ik1"


def test_a_secret_in_any_text_of_a_rule_or_result_is_masked(tmp_path):
    """Rule descriptions, names, help texts and links come from another tool and may quote a credential
    (a secrets scanner's rule text, a leaked token pasted into a message): none reaches a finding."""
    log = json.loads((DATA / "container-guard.sarif").read_text())
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    rules[0]["shortDescription"]["text"] = f"GitHub token {GITHUB_TOKEN} committed in the image"
    rules[0]["help"]["text"] = f'Rotate AWS_SECRET_ACCESS_KEY="{AWS_SECRET}" and rebuild.'
    rules[0]["helpUri"] = f"https://hooks.slack.example/services/{SLACK_PATH}?token={GITHUB_TOKEN}"
    del rules[1]["shortDescription"]
    rules[1]["name"] = f"leaked-{GITHUB_TOKEN}"
    log["runs"][0]["results"][0]["message"]["text"] = f"found {AWS_SECRET} in layer 3"
    path = tmp_path / "leaky.sarif"
    path.write_text(json.dumps(log))

    findings = import_sarif(path, WEB)

    stored = json.dumps([f.row() for f in findings], default=str)
    for secret in (GITHUB_TOKEN, AWS_SECRET, SLACK_PATH, "R4nd0mT0k3nV4lu3x"):
        assert secret not in stored
    first = findings[0]
    assert first.title.startswith("GitHub token ghp_") and first.title.endswith("committed in the image")
    assert first.remediation.startswith("Rotate AWS_SECRET_ACCESS_KEY=")
    assert "See https://hooks.slack.example/services/" in first.remediation
    # what needed no masking reads as before
    assert findings[2].title == rules[2]["shortDescription"]["text"]
