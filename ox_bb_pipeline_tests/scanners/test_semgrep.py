"""semgrep with our own rules on real sandbox snapshots, all in one batch run: every planted SAST issue
found by the right rule on its line, nothing serious on the clean repositories, no secret in evidence,
fingerprints that survive moved lines, a broken batch reported per snapshot, and the rules' own tests."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections import Counter
from pathlib import Path, PurePosixPath

import pytest
import yaml

from ox_bb_pipeline.findings import SEVERITIES
from ox_bb_pipeline.scanners.base import tool_executable
from ox_bb_pipeline.scanners.semgrep import OFFLINE_ENV, OFFLINE_FLAGS, RULES_DIR, SemgrepScanner, run_tool
from ox_bb_pipeline.scanners.snapshot import Snapshot, SnapshotLimits, walk
from ox_bb_sandbox.content import CLEAN_PROFILES

from .conftest import planted_of

# Our rule for each SAST issue the sandbox plants (profiles.yaml).
PLANTED_AS = {
    "python-eval": "ox.python.eval",
    "python-subprocess-shell": "ox.python.os-command",
    "python-tls-verify-disabled": "ox.python.tls-verify-disabled",
    "python-pickle": "ox.python.pickle",
    "python-yaml-load": "ox.python.yaml-load",
    "python-weak-hash": "ox.python.weak-password-hash",
    "python-hardcoded-password": "ox.python.hardcoded-credential",
    "js-eval": "ox.js.eval",
    "js-child-process-exec": "ox.js.os-command",
    "js-weak-hash": "ox.js.weak-password-hash",
    "js-tls-reject-unauthorized": "ox.js.tls-verify-disabled",
    "java-command-injection": "ox.java.os-command",
    "java-weak-hash": "ox.java.weak-password-hash",
    "java-deserialization": "ox.java.insecure-deserialization",
    "java-sql-injection": "ox.java.sql-string",
    "java-trust-all-certs": "ox.java.trust-all-certificates",
    "go-command-injection": "ox.go.os-command",
    "go-sql-injection": "ox.go.sql-string",
    "go-weak-hash": "ox.go.weak-password-hash",
    "go-tls-skip-verify": "ox.go.tls-skip-verify",
}
LANGUAGE_OF = {
    ".py": "python",
    ".js": "javascript/typescript",
    ".ts": "javascript/typescript",
    ".java": "java",
    ".go": "go",
}
# The issue families every language must cover (rule id suffixes), per the scanner's brief.
REQUIRED_RULES = {
    "python": {
        "eval",
        "os-command",
        "sql-string",
        "pickle",
        "yaml-load",
        "weak-hash",
        "weak-password-hash",
        "weak-cipher",
        "tls-verify-disabled",
        "hardcoded-credential",
    },
    "js": {
        "eval",
        "os-command",
        "sql-string",
        "insecure-deserialization",
        "weak-hash",
        "weak-password-hash",
        "weak-cipher",
        "tls-verify-disabled",
        "hardcoded-credential",
    },
    "java": {
        "os-command",
        "sql-string",
        "insecure-deserialization",
        "script-eval",
        "weak-hash",
        "weak-password-hash",
        "weak-cipher",
        "trust-all-certificates",
        "hardcoded-credential",
    },
    "go": {
        "os-command",
        "sql-string",
        "weak-hash",
        "weak-password-hash",
        "weak-cipher",
        "tls-skip-verify",
        "hardcoded-credential",
    },
}
MOVED = "acme-payments/python-service"
MOVED_FILES = ("app/views.py", "app/serializers.py", "app/auth.py", "app/db.py", "app/settings.py")


pytestmark = pytest.mark.usefixtures("secret_salt")


def snapshot_at(snapshot: Snapshot, root: Path) -> Snapshot:
    files, skipped, total = walk(root, SnapshotLimits())
    return Snapshot(repo=snapshot.repo, root=root, files=files, skipped=skipped, bytes_total=total)


@pytest.fixture(scope="module")
def moved(snapshots, tmp_path_factory) -> Snapshot:
    """python-service again, its files pushed down three lines, with a .semgrepignore that would hide
    every finding if the repository's own ignore files were honoured."""
    root = tmp_path_factory.mktemp("moved") / "python-service"
    shutil.copytree(snapshots[MOVED].root, root)
    for path in MOVED_FILES:
        (root / path).write_text("# A new header comment.\n\n\n" + (root / path).read_text())
    (root / ".semgrepignore").write_text("app/\ntests/\n")
    return snapshot_at(snapshots[MOVED], root)


@pytest.fixture(scope="module")
def batch(snapshots, moved) -> dict:
    """One semgrep run over all twelve sandbox repositories plus the moved copy."""
    keys = sorted(snapshots)
    started = time.perf_counter()
    outputs = SemgrepScanner().scan([snapshots[k] for k in keys] + [moved])
    print(f"semgrep batch of {len(keys) + 1} snapshots: {time.perf_counter() - started:.1f}s")
    return {**dict(zip(keys, outputs)), "moved": outputs[-1]}


@pytest.fixture(scope="module")
def outputs(batch) -> dict:
    return {k: v for k, v in batch.items() if k != "moved"}


def profile_of(sandbox, key: str) -> str:
    workspace, slug = key.split("/")
    return sandbox.world.workspaces[workspace].repositories[slug].description.split()[0]


def test_every_planted_sast_issue_is_found_by_its_rule_on_its_line(outputs, planted):
    plants = planted_of(planted, "sast")
    assert {p["rule"] for p in plants} == set(PLANTED_AS)
    findings = [f for o in outputs.values() for f in o.findings]

    def matched(p) -> bool:
        return any(
            (f.workspace, f.repository, f.file_path, f.rule_id)
            == (p["workspace"], p["repository"], p["path"], PLANTED_AS[p["rule"]])
            and f.start_line <= p["line"] <= f.end_line
            for f in findings
        )

    total, found = Counter(), Counter()
    for p in plants:
        language = LANGUAGE_OF[PurePosixPath(p["path"]).suffix]
        total[language] += 1
        found[language] += matched(p)
    print("semgrep recall: " + ", ".join(f"{lang} {found[lang]}/{total[lang]}" for lang in sorted(total)))
    assert found == total


def test_the_helm_template_checkov_cannot_render_is_covered(outputs, planted):
    plants = [p for p in planted_of(planted, "iac") if "/templates/" in p["path"]]
    assert plants
    for p in plants:
        assert any(
            f.rule_id == "ox.helm.privileged-container" and f.file_path == p["path"] and f.start_line == p["line"]
            for f in outputs[f"{p['workspace']}/{p['repository']}"].findings
        )


def test_clean_repositories_have_nothing_high_or_critical(outputs, sandbox):
    clean = [k for k in outputs if profile_of(sandbox, k) in CLEAN_PROFILES]
    assert {profile_of(sandbox, k) for k in clean} == set(CLEAN_PROFILES)
    assert all(outputs[k].files_scanned for k in clean if profile_of(sandbox, k) != "docs")
    serious = [
        (k, f.file_path, f.rule_id)
        for k in clean
        for f in outputs[k].findings
        if f.base_severity in ("high", "critical")
    ]
    assert serious == []


def test_findings_carry_the_rules_metadata(outputs):
    findings = outputs["acme-payments/python-service"].findings
    by_rule = {f.rule_id: f for f in findings}
    pickle = by_rule["ox.python.pickle"]
    assert (pickle.category, pickle.base_severity, pickle.cwe, pickle.title) == (
        "sast",
        "high",
        "CWE-502",
        "Insecure deserialization: pickle",
    )
    assert "SSDF-PW.7.2" in pickle.controls and "CIS-SSC-1.5.4" in pickle.controls
    assert "JSON" in pickle.remediation
    assert pickle.evidence == "return pickle.loads(blob)"
    # MD5 over a password is one finding, the password one: the general rule is superseded there
    assert "ox.python.weak-hash" not in by_rule
    assert all(f.scanner == "semgrep" and f.scanner_version.startswith("semgrep ") for f in findings)
    assert len({f.finding_id for f in findings}) == len(findings)


def test_no_planted_secret_reaches_a_finding(outputs, planted):
    values = [p["value"] for p in planted_of(planted, "secret") if p.get("value")]
    rows = json.dumps([f.row() for o in outputs.values() for f in o.findings], default=str)
    assert values and not [v for v in values if v in rows]
    credential = [f for o in outputs.values() for f in o.findings if f.rule_id.endswith("hardcoded-credential")]
    assert len(credential) >= 5 and all("chars)" in f.evidence for f in credential)


def test_fingerprints_survive_moved_lines_and_repository_ignore_files(batch):
    original, moved_output = batch[MOVED].findings, batch["moved"].findings
    assert sorted(f.finding_id for f in moved_output) == sorted(f.finding_id for f in original)
    lines = {f.finding_id: f.start_line for f in original}
    shifted = [f for f in moved_output if f.file_path in MOVED_FILES]
    assert shifted and all(f.start_line == lines[f.finding_id] + 3 for f in shifted)


def test_a_missing_tool_gives_every_snapshot_an_error(snapshots, monkeypatch, tmp_path):
    monkeypatch.setenv("OX_BB_TOOLS_DIR", str(tmp_path / "no-tools"))
    outputs = SemgrepScanner().scan(list(snapshots.values()))
    assert len(outputs) == len(snapshots)
    assert all(o.error and "not installed" in o.error and not o.findings for o in outputs)


def test_a_batch_over_its_time_limit_gives_every_snapshot_an_error(snapshots):
    some = [snapshots[k] for k in sorted(snapshots)[:2]]
    outputs = SemgrepScanner(timeout=0.5).scan(some)
    assert [("timed out after 0.5 s" in (o.error or "")) for o in outputs] == [True, True]


def test_every_language_has_each_issue_family_with_complete_metadata():
    rules = [r for path in SemgrepScanner().rule_files() for r in yaml.safe_load(path.read_text())["rules"]]
    ids = {r["id"] for r in rules}
    assert len(ids) == len(rules)
    for language, families in REQUIRED_RULES.items():
        assert {f"ox.{language}.{family}" for family in families} <= ids
    for rule in rules:
        meta = rule["metadata"]
        assert meta["ox_severity"] in SEVERITIES and meta["cwe"].startswith("CWE-"), rule["id"]
        assert meta["title"] and meta["remediation"] and meta["controls"], rule["id"]
        assert meta["category"] and meta["confidence"] in ("high", "medium", "low"), rule["id"]
        assert set(meta.get("supersedes", [])) <= ids, rule["id"]


def test_the_rules_pass_their_own_semgrep_tests(tmp_path):
    argv = [str(tool_executable("semgrep")), "--test", "--json", *OFFLINE_FLAGS, str(RULES_DIR)]
    proc = run_tool(argv, timeout=300, env=OFFLINE_ENV, cwd=tmp_path)
    report = json.loads(proc.stdout)
    failed = {
        check: result["matches"]
        for per_file in report["results"].values()
        for check, result in per_file["checks"].items()
        if not result["passed"]
    }
    assert (failed, report["config_with_errors"], report["config_missing_tests"]) == ({}, [], [])
    tested = {check for per_file in report["results"].values() for check in per_file["checks"]}
    assert tested == {
        r["id"] for path in SemgrepScanner().rule_files() for r in yaml.safe_load(path.read_text())["rules"]
    }
    assert proc.returncode == 0


def test_version_names_the_tool_and_the_rules():
    version = SemgrepScanner().version()
    assert version.startswith("semgrep 1.185.0+") and version == SemgrepScanner().version()


def test_every_rule_has_a_positive_and_a_negative_test_case():
    """`ruleid:` and `ok:` annotations in the test files beside the rules (rules/<language>/<family>.*)."""
    cases: dict[str, set[str]] = {}
    for path in RULES_DIR.rglob("*"):
        if path.is_file() and (path.suffix != ".yaml" or path.name.endswith(".test.yaml")) and path.suffix != ".md":
            for kind, ids in re.findall(r"\b(ruleid|ok):\s*([\w.-]+(?:\s*,\s*[\w.-]+)*)", path.read_text()):
                for rule_id in ids.split(","):
                    cases.setdefault(rule_id.strip(), set()).add(kind)
    rules = {r["id"] for path in SemgrepScanner().rule_files() for r in yaml.safe_load(path.read_text())["rules"]}
    assert {rule: cases.get(rule, set()) for rule in rules} == {rule: {"ruleid", "ok"} for rule in rules}
