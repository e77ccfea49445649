"""The secrets scanner on real sandbox snapshots: recall against the planted manifest, silence on
the clean repositories and on known noise, no secret in any output, stable fingerprints."""

from __future__ import annotations

import random
import shutil
import string
import time
from pathlib import Path

import pytest

from ox_bb_pipeline.findings import RepoRef
from ox_bb_pipeline.redaction import salted_hash
from ox_bb_pipeline.scanners.secrets import SecretsScanner, variable_findings
from ox_bb_pipeline.scanners.snapshot import Snapshot, SnapshotLimits, walk
from ox_bb_sandbox.content import CLEAN_PROFILES

from .conftest import planted_of

pytestmark = pytest.mark.usefixtures("secret_salt")


@pytest.fixture(scope="module")
def outputs(snapshots) -> dict:
    """`workspace/slug` -> ScanOutput of one secrets scan over every sandbox snapshot."""
    keys = sorted(snapshots)
    return dict(zip(keys, SecretsScanner().scan([snapshots[k] for k in keys])))


def profile_of(sandbox, key: str) -> str:
    workspace, slug = key.split("/")
    return sandbox.world.workspaces[workspace].repositories[slug].description.split()[0]


def snapshot_at(repo: RepoRef, root: Path) -> Snapshot:
    files, skipped, total = walk(root, SnapshotLimits())
    return Snapshot(repo=repo, root=root, files=files, skipped=skipped, bytes_total=total)


def repo_with(tmp_path: Path, files: dict[str, str]) -> Snapshot:
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    return snapshot_at(RepoRef("test", "ws", "{repo-uuid}", "repo", "c0ffee"), tmp_path)


def random_text(alphabet: str, n: int, seed: int = 3) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(n))


def test_every_planted_secret_is_found_at_its_path_and_line(outputs, planted):
    secrets = planted_of(planted, "secret")
    found = {(f.workspace, f.repository, f.file_path, f.start_line) for o in outputs.values() for f in o.findings}
    missed = [p for p in secrets if (p["workspace"], p["repository"], p["path"], p["line"]) not in found]
    recall = 1 - len(missed) / len(secrets)
    print(f"secrets recall {recall:.2f} ({len(secrets) - len(missed)}/{len(secrets)})")
    assert not missed and recall == 1.0


def test_secrets_in_pipeline_script_lines_are_found(outputs):
    in_pipelines = {
        (f.start_line, f.rule_id)
        for f in outputs["acme-payments/python-service"].findings
        if f.file_path == "bitbucket-pipelines.yml"
    }
    # line 44 is a `script:` list item, which detect-secrets' YAML reading alone never sees
    assert in_pipelines == {(35, "aws-secret-key"), (44, "aws-access-key")}


def test_one_finding_per_secret_with_the_most_specific_rule(outputs):
    settings = sorted(
        (f.start_line, f.rule_id, f.base_severity)
        for f in outputs["acme-payments/python-service"].findings
        if f.file_path == "app/settings.py"
    )
    # line 11 is also a keyword hit and a base64 entropy hit in detect-secrets: one finding remains
    assert settings == [(10, "aws-access-key", "high"), (11, "aws-secret-key", "critical")]


def test_findings_in_test_fixtures_are_kept(outputs):
    fixture = [
        f
        for f in outputs["acme-payments/python-service"].findings
        if f.file_path == "tests/fixtures/legacy_settings.py"
    ]
    assert [f.rule_id for f in fixture] == ["slack-token"]


def test_clean_repositories_have_no_secret_findings(outputs, sandbox):
    clean = [k for k in outputs if profile_of(sandbox, k) in CLEAN_PROFILES]
    assert {profile_of(sandbox, k) for k in clean} == set(CLEAN_PROFILES)
    assert {k: [(f.file_path, f.rule_id) for f in outputs[k].findings] for k in clean} == {k: [] for k in clean}


def test_no_planted_secret_value_appears_in_any_finding(outputs, planted):
    values = [p["value"] for p in planted if p.get("value")]
    # a multi-line value (the PEM key) must not leak line by line either; its armour is no secret
    values += [line for v in values for line in v.splitlines() if len(line) >= 16 and not line.startswith("-----")]
    rows = [str(f.row()) for o in outputs.values() for f in o.findings]
    assert rows and not [v[:8] for v in values if any(v in row for row in rows)]


def test_evidence_is_a_masked_preview(outputs):
    by_rule = {f.rule_id: f.evidence for o in outputs.values() for f in o.findings}
    assert by_rule["aws-access-key"].startswith("AKIA… (20 chars)")
    assert by_rule["private-key"].startswith("-----BEGIN RSA PRIVATE KEY----- block of 27 lines")


def test_fingerprints_stay_when_lines_move(snapshots, outputs, tmp_path):
    original = snapshots["acme-payments/python-service"]
    shutil.copytree(original.root, tmp_path / "moved")
    for path in ("app/settings.py", "bitbucket-pipelines.yml", "tests/fixtures/legacy_settings.py"):
        target = tmp_path / "moved" / path
        target.write_text("\n\n\n" + target.read_text())
    [moved] = SecretsScanner().scan([snapshot_at(original.repo, tmp_path / "moved")])

    before = {f.finding_id: f.start_line for f in outputs["acme-payments/python-service"].findings}
    after = {f.finding_id: f.start_line for f in moved.findings}
    assert after.keys() == before.keys()
    assert {after[i] - before[i] for i in before if i in after} == {0, 3}


def test_fingerprints_stay_when_an_unrelated_file_changes(snapshots, outputs, tmp_path):
    original = snapshots["acme-payments/node-web"]
    shutil.copytree(original.root, tmp_path / "changed")
    (tmp_path / "changed" / "README.md").write_text("# Rewritten readme\n")
    (tmp_path / "changed" / "docs" / "notes.md").parent.mkdir()
    (tmp_path / "changed" / "docs" / "notes.md").write_text("Deploys go out on Tuesdays.\n")
    [changed] = SecretsScanner().scan([snapshot_at(original.repo, tmp_path / "changed")])
    before = {f.finding_id for f in outputs["acme-payments/node-web"].findings}
    assert before and {f.finding_id for f in changed.findings} == before


def test_lock_file_hashes_are_not_reported(outputs, snapshots):
    lock_files = {
        f.path
        for s in snapshots.values()
        for f in s.files
        if f.path.rsplit("/", 1)[-1]
        in {"package-lock.json", "yarn.lock", "Pipfile.lock", "go.sum", "Cargo.lock", "Gemfile.lock"}
    }
    assert len(lock_files) >= 6  # the sandbox has them, with SRI and checksum hashes
    assert not [f for o in outputs.values() for f in o.findings if f.file_path in lock_files]


def test_known_noise_is_filtered_and_a_real_secret_beside_it_is_not(tmp_path):
    stripe = "sk_live_" + random_text(string.ascii_letters + string.digits, 24)
    snapshot = repo_with(
        tmp_path,
        {
            "web/index.html": '<script src="https://cdn.example.org/lib.js" '
            'integrity="sha384-oqVuAfXRKap7fdgcCY5uykM6+R9GqQ8K/uxy9rx7HNQlGYl1kPzQho1wx4JwY8wC" '
            'crossorigin="anonymous"></script>\n',
            "pnpm-lock.yaml": "packages:\n  /lodash@4.17.21:\n    resolution: {integrity: sha512-v2kDEe57lecTulaDIuNTP"
            "y3Ry4gLGJ6Z1O3vE1krgXZNrsQ+LFTGHVxVjcXPs17LhbZVGedAJv8XZ1tvj5FvSg==}\n",
            "config/app.json": '{"tenant_id": "3f2504e0-4f89-11d3-9a0c-0305e82c3301",\n'
            ' "api_key": "<your-api-key>", "password": "changeme"}\n',
            "deploy/values.yaml": 'image: "nginx@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b93'
            '4ca495991b7852b855"\n',
            "tools/fetch.py": 'CHECKSUM = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"\n'
            'AWS_DOCS_KEY = "AKIAIOSFODNN7EXAMPLE"\n',
            "billing/keys.py": f'STRIPE = "{stripe}"\n',
        },
    )
    [output] = SecretsScanner().scan([snapshot])
    assert [(f.file_path, f.start_line, f.rule_id) for f in output.findings] == [
        ("billing/keys.py", 1, "stripe-access-key")
    ]
    assert output.files_scanned == 5  # the lock file is never read


def test_an_entropy_only_hit_is_low(tmp_path):
    blob = random_text(string.ascii_letters + string.digits + "+/", 44)
    [output] = SecretsScanner().scan([repo_with(tmp_path, {"src/blob.js": f'const blob = "{blob}";\n'})])
    assert [(f.rule_id, f.base_severity) for f in output.findings] == [("base64-high-entropy-string", "low")]


def test_a_yaml_bomb_is_scanned_as_text_in_bounded_time(tmp_path):
    stripe = "sk_live_" + random_text(string.ascii_letters + string.digits, 24, seed=5)
    laughs = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    laughs += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    snapshot = repo_with(tmp_path, {"bomb.yml": "\n".join([*laughs, f'stripe: "{stripe}"']) + "\n"})
    started = time.monotonic()
    [output] = SecretsScanner().scan([snapshot])
    assert time.monotonic() - started < 10
    assert [(f.file_path, f.start_line, f.rule_id) for f in output.findings] == [("bomb.yml", 11, "stripe-access-key")]


def test_unsecured_secret_looking_pipeline_variables_become_findings(planted):
    npm = planted_of(planted, "pipeline_variable")
    assert len(npm) == 2  # one per workspace, same key, different values
    web = RepoRef("sandbox-token", "acme-payments", "{web-uuid}", "node-web", "ab12cd")
    rows = [
        {
            "connection": "sandbox-token",
            "workspace": p["workspace"],
            "repository_uuid": None,
            "repository": None,
            "level": "workspace",
            "environment": None,
            "variable_uuid": "{v}",
            "key": p["setting"].rsplit("/", 1)[-1],
            "secured": False,
            "value_looks_secret": True,
            "value_hash": salted_hash(p["value"]),
            "value_length": len(p["value"]),
        }
        for p in npm
    ]
    repo_row = {
        **rows[0],
        "repository_uuid": "{web-uuid}",
        "repository": "node-web",
        "level": "deployment",
        "environment": "production",
        "key": "DEPLOY_TOKEN",
    }
    ignored = [
        {**rows[0], "secured": True, "value_looks_secret": None, "value_hash": None},
        {**rows[0], "key": "AWS_REGION", "value_looks_secret": False},
    ]

    findings = variable_findings([*rows, repo_row, *ignored], {("sandbox-token", "acme-payments", "node-web"): web})

    assert [(f.workspace, f.repository, f.commit, f.rule_id, f.file_path, f.base_severity) for f in findings] == [
        ("acme-payments", "", None, "unsecured-pipeline-variable", None, "high"),
        ("acme-platform", "", None, "unsecured-pipeline-variable", None, "high"),
        ("acme-payments", "node-web", "ab12cd", "unsecured-pipeline-variable", None, "high"),
    ]
    assert "workspace pipeline variable NPM_TOKEN" in findings[0].evidence
    assert "deployment (production) pipeline variable DEPLOY_TOKEN" in findings[2].evidence
    assert len({f.finding_id for f in findings}) == 3
    assert not [p for p in npm for f in findings if p["value"] in str(f.row())]
    # the identity rides on the value's hash: a rotated value is a new finding
    rotated = variable_findings([{**rows[0], "value_hash": salted_hash("rotated-value-0123456789")}])
    assert rotated[0].finding_id != findings[0].finding_id


def test_pipeline_text_is_scanned_line_by_line_through_the_public_api(tmp_path):
    """The pipeline file's plain-text pass (secrets_lines.scan_lines, detect-secrets' public plugin and filter
    calls) gives exactly the rows the private line scanner gave: the install line, the documented example
    key, a ${VAR} reference and a commit id stay silent; an entropy-only string is low."""
    alphanumeric = string.ascii_letters + string.digits
    lines = [
        "image: python:3.11",
        "pipelines:",
        "  default:",
        "    - step:",
        "        script:",
        "          - pip install detect-secrets==1.5.0",
        f"          - export STRIPE_KEY=sk_live_{random_text(alphanumeric, 24, seed=1)}",
        "          - export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
        f"          - export AWS_ACCESS_KEY_ID=AKIA{random_text(string.ascii_uppercase + '234567', 16, seed=2)}",
        '          - curl -H "Authorization: Bearer ${TOKEN}" https://example.org',
        "          - git checkout 898d5b2c0e1f4a7b9c3d6e8f0a1b2c3d4e5f6a7b",
        f"          - export GITHUB_TOKEN=ghp_{random_text(alphanumeric, 36, seed=4)}",
        f'          - echo "{random_text(alphanumeric + "+/", 44, seed=5)}"',
    ]
    snapshot = repo_with(tmp_path, {"bitbucket-pipelines.yml": "\n".join(lines) + "\n"})
    [output] = SecretsScanner().scan([snapshot])
    assert [(f.start_line, f.rule_id, f.base_severity) for f in output.findings] == [
        (7, "stripe-access-key", "critical"),
        (9, "aws-access-key", "high"),
        (12, "github-token", "high"),
        (13, "base64-high-entropy-string", "low"),
    ]


def test_a_checkout_under_a_swagger_named_folder_is_still_scanned(tmp_path):
    """detect-secrets' swagger filter matches anywhere in the path it is given; the tip scan gives it the
    repository-relative path, so a repository called swagger-codegen is scanned and its swagger spec is not."""
    stripe = "sk_live_" + random_text(string.ascii_letters + string.digits, 24)
    root = tmp_path / "acme" / "swagger-codegen" / "c0ffee"
    snapshot = repo_with(
        root,
        {"billing/keys.py": f'STRIPE = "{stripe}"\n', "docs/swagger.json": f'{{"example": "{stripe}"}}\n'},
    )
    [output] = SecretsScanner().scan([snapshot])
    assert [(f.file_path, f.start_line, f.rule_id) for f in output.findings] == [
        ("billing/keys.py", 1, "stripe-access-key")
    ]
    assert output.files_scanned == 2
