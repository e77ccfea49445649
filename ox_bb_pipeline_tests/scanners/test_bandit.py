"""bandit on real sandbox snapshots: every planted Python SAST issue found on its line, nothing
serious on the clean repositories, no secret in evidence, stable fingerprints."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ox_bb_pipeline.findings import RepoRef
from ox_bb_pipeline.scanners.bandit import BanditScanner, redact_snippet, severity_for
from ox_bb_pipeline.scanners.snapshot import Snapshot, SnapshotLimits, walk
from ox_bb_sandbox.content import CLEAN_PROFILES

from .conftest import planted_of

# What bandit calls each Python issue the sandbox plants (profiles.yaml, python-service).
PLANTED_AS = {
    "python-eval": "B307",
    "python-subprocess-shell": "B602",
    "python-tls-verify-disabled": "B501",
    "python-pickle": "B301",
    "python-yaml-load": "B506",
    "python-weak-hash": "B324",
    "python-hardcoded-password": "B105",
}


pytestmark = pytest.mark.usefixtures("secret_salt")


@pytest.fixture(scope="module")
def outputs(snapshots) -> dict:
    keys = sorted(snapshots)
    return dict(zip(keys, BanditScanner().scan([snapshots[k] for k in keys])))


def snapshot_at(repo: RepoRef, root: Path) -> Snapshot:
    files, skipped, total = walk(root, SnapshotLimits())
    return Snapshot(repo=repo, root=root, files=files, skipped=skipped, bytes_total=total)


def repo_with(tmp_path: Path, files: dict[str, str]) -> Snapshot:
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    return snapshot_at(RepoRef("test", "ws", "{repo-uuid}", "repo", "c0ffee"), tmp_path)


def test_every_planted_python_sast_issue_is_found_on_its_line(outputs, planted):
    plants = [p for p in planted_of(planted, "sast") if p["path"].endswith(".py")]
    assert {p["rule"] for p in plants} == set(PLANTED_AS)
    findings = [f for o in outputs.values() for f in o.findings]

    def matched(p) -> bool:
        return any(
            (f.workspace, f.repository, f.file_path, f.rule_id)
            == (p["workspace"], p["repository"], p["path"], PLANTED_AS[p["rule"]])
            and f.start_line <= p["line"] <= f.end_line
            for f in findings
        )

    missed = [(p["repository"], p["rule"]) for p in plants if not matched(p)]
    print(f"bandit recall {1 - len(missed) / len(plants):.2f} ({len(plants) - len(missed)}/{len(plants)})")
    assert missed == []


def test_clean_repositories_have_nothing_high_or_critical(outputs, sandbox):
    def profile(key: str) -> str:
        workspace, slug = key.split("/")
        return sandbox.world.workspaces[workspace].repositories[slug].description.split()[0]

    clean = [k for k in outputs if profile(k) in CLEAN_PROFILES]
    assert any(outputs[k].files_scanned for k in clean)  # clean-python has Python to scan
    serious = [
        (k, f.file_path, f.rule_id)
        for k in clean
        for f in outputs[k].findings
        if f.base_severity in ("high", "critical")
    ]
    assert serious == []


def test_findings_carry_our_severity_cwe_and_remediation(outputs):
    by_rule = {f.rule_id: f for f in outputs["acme-payments/python-service"].findings}
    assert (by_rule["B307"].base_severity, by_rule["B307"].cwe, by_rule["B307"].category) == ("high", "CWE-78", "sast")
    assert by_rule["B403"].base_severity == "info"  # `import pickle`: the call site is the finding
    assert "ast.literal_eval" in by_rule["B307"].remediation and "bandit.readthedocs.io" in by_rule["B307"].remediation
    assert "eval(expression)" in by_rule["B307"].evidence


def test_no_planted_secret_value_appears_in_any_finding(outputs, planted):
    values = [p["value"] for p in planted if p.get("value")]
    rows = [str(f.row()) for o in outputs.values() for f in o.findings]
    hard_coded = [f for o in outputs.values() for f in o.findings if f.rule_id == "B105"]
    assert hard_coded  # bandit does point at the secret lines (app/db.py, app/settings.py)
    assert not [v[:8] for v in values if any(v in row for row in rows)]
    assert all("chars)" in f.evidence for f in hard_coded)


def test_fingerprints_stay_when_lines_move(snapshots, outputs, tmp_path):
    original = snapshots["acme-payments/python-service"]
    shutil.copytree(original.root, tmp_path / "moved")
    for path in ("app/views.py", "app/db.py"):
        target = tmp_path / "moved" / path
        target.write_text("\n\n" + target.read_text())
    [moved] = BanditScanner().scan([snapshot_at(original.repo, tmp_path / "moved")])

    before = {f.finding_id: f.start_line for f in outputs["acme-payments/python-service"].findings}
    after = {f.finding_id: f.start_line for f in moved.findings}
    assert after.keys() == before.keys()
    assert {after[i] - before[i] for i in before} == {0, 2}


def test_fingerprints_stay_when_an_unrelated_file_changes(snapshots, outputs, tmp_path):
    original = snapshots["acme-payments/python-service"]
    shutil.copytree(original.root, tmp_path / "changed")
    (tmp_path / "changed" / "app" / "__init__.py").write_text('"""Order API."""\n')
    (tmp_path / "changed" / "app" / "health.py").write_text("def ok():\n    return True\n")
    [changed] = BanditScanner().scan([snapshot_at(original.repo, tmp_path / "changed")])
    assert {f.finding_id for f in changed.findings} == {
        f.finding_id for f in outputs["acme-payments/python-service"].findings
    }


def test_test_only_checks_are_skipped_in_test_code_and_kept_elsewhere(tmp_path):
    snapshot = repo_with(
        tmp_path,
        {
            "app/limits.py": "def check(n):\n    assert n > 0\n    return n\n",
            "tests/test_limits.py": 'password = "hunter2-for-tests"\n\ndef test_check():\n    assert True\n',
            "conftest.py": "import random\nSEED = random.random()\n",
        },
    )
    [output] = BanditScanner().scan([snapshot])
    assert sorted((f.file_path, f.rule_id) for f in output.findings) == [("app/limits.py", "B101")]


def test_the_same_snippet_twice_in_a_file_gives_two_findings(tmp_path):
    snapshot = repo_with(tmp_path, {"calc.py": "def a(x):\n    return eval(x)\n\n\ndef b(x):\n    return eval(x)\n"})
    [output] = BanditScanner().scan([snapshot])
    assert [(f.rule_id, f.start_line) for f in output.findings] == [("B307", 2), ("B307", 6)]
    assert len({f.finding_id for f in output.findings}) == 2


def test_a_file_bandit_cannot_parse_is_listed_and_the_rest_is_scanned(tmp_path):
    snapshot = repo_with(tmp_path, {"legacy.py": "print 'python 2'\n", "app.py": "import os\nos.system(cmd)\n"})
    [output] = BanditScanner().scan([snapshot])
    assert output.error is None and output.files_scanned == 1
    assert [(s["scanner"], s["repository"], s["path"]) for s in output.extra["skipped_files"]] == [
        ("bandit", "repo", "legacy.py")
    ]
    assert [f.rule_id for f in output.findings] == ["B605"]


def test_severity_comes_from_our_table_else_from_bandit_severity_and_confidence():
    assert severity_for("B307", "MEDIUM", "HIGH") == "high"  # listed: ours
    assert severity_for("B999", "HIGH", "HIGH") == "high"  # a test from a newer bandit
    assert severity_for("B999", "HIGH", "LOW") == "low"
    assert severity_for("B999", "LOW", "LOW") == "info"


def test_redaction_masks_long_literals_and_random_tokens_only():
    assert redact_snippet('run("ls", shell=True)') == 'run("ls", shell=True)'
    assert redact_snippet("The image's user isn't set") == "The image's user isn't set"  # prose, no literal
    assert redact_snippet('key = "V8B4lD7kb3rbxMYkn5e66"') == 'key = "V8B4… (21 chars)"'
    assert redact_snippet("# old key V8B4lD7kb3rbxMYkn5e66cZAZ") == "# old key V8B4… (25 chars)"
    assert redact_snippet('pw = "hunter2"', min_literal=1) == 'pw = "h… (7 chars)"'
