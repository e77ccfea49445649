"""checkov on real sandbox snapshots, all in one batch run: every planted IaC issue found by the
expected check on a line range covering it (the Helm template is a listed gap without a helm binary),
our own severities, nothing serious on the clean repositories, fingerprints anchored on resources,
and a broken batch reported per snapshot."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from ox_bb_pipeline.scanners.checkov import CheckovScanner, resource_address
from ox_bb_pipeline.scanners.snapshot import Snapshot, SnapshotLimits, walk
from ox_bb_sandbox.content import CLEAN_PROFILES

from .conftest import planted_of

# The check that reports each IaC issue the sandbox plants (profiles.yaml).
PLANTED_AS = {
    "terraform-s3-public": "CKV_AWS_20",
    "terraform-ebs-unencrypted": "CKV_AWS_3",
    "terraform-sg-open-ssh": "CKV_AWS_24",
    "terraform-rds-unencrypted": "CKV_AWS_16",
    "cloudformation-s3-public": "CKV_AWS_20",
    "k8s-privileged": "CKV_K8S_16",
    "k8s-run-as-root": "CKV_K8S_23",
    "k8s-host-network": "CKV_K8S_19",
    "k8s-image-latest": "CKV_K8S_14",
    "dockerfile-latest": "CKV_DOCKER_7",
    "dockerfile-add-url": "CKV_DOCKER_4",
    "dockerfile-root": "CKV_DOCKER_8",
}
# What checkov cannot see here, and who covers it instead.
KNOWN_GAPS = {
    (
        "charts/edge-proxy/templates/daemonset.yaml",
        "k8s-privileged",
    ): "Helm charts need a helm binary to render; semgrep's ox.helm.privileged-container covers the template",
}
MOVED = "acme-payments/infra"
MOVED_FILES = (
    "terraform/storage.tf",
    "terraform/network.tf",
    "terraform/database.tf",
    "k8s/node-agent.yaml",
    "cloudformation/static-site.yaml",
    "docker/bastion/Dockerfile",
)


def snapshot_at(snapshot: Snapshot, root: Path) -> Snapshot:
    files, skipped, total = walk(root, SnapshotLimits())
    return Snapshot(repo=snapshot.repo, root=root, files=files, skipped=skipped, bytes_total=total)


@pytest.fixture(scope="module")
def moved(snapshots, tmp_path_factory) -> Snapshot:
    """infra again, with every scanned file pushed down by a comment header."""
    root = tmp_path_factory.mktemp("moved") / "infra"
    shutil.copytree(snapshots[MOVED].root, root)
    for path in MOVED_FILES:
        (root / path).write_text("# Owned by the platform team.\n# Reviewed quarterly.\n\n" + (root / path).read_text())
    return snapshot_at(snapshots[MOVED], root)


@pytest.fixture(scope="module")
def batch(snapshots, moved) -> dict:
    """One checkov run over all twelve sandbox repositories plus the moved copy."""
    keys = sorted(snapshots)
    scanner = CheckovScanner()
    started = time.perf_counter()
    outputs = scanner.scan([snapshots[k] for k in keys] + [moved])
    print(f"checkov batch of {len(keys) + 1} snapshots: {time.perf_counter() - started:.1f}s")
    return {**dict(zip(keys, outputs)), "moved": outputs[-1], "helm": bool(scanner.helm)}


@pytest.fixture(scope="module")
def outputs(batch) -> dict:
    return {k: v for k, v in batch.items() if k not in ("moved", "helm")}


def profile_of(sandbox, key: str) -> str:
    workspace, slug = key.split("/")
    return sandbox.world.workspaces[workspace].repositories[slug].description.split()[0]


def test_every_planted_iac_issue_is_found_by_its_check_on_its_lines(batch, outputs, planted):
    plants = planted_of(planted, "iac")
    assert {p["rule"] for p in plants} == set(PLANTED_AS)
    gaps = {} if batch["helm"] else KNOWN_GAPS

    def matched(p) -> bool:
        return any(
            (f.file_path, f.rule_id) == (p["path"], PLANTED_AS[p["rule"]]) and f.start_line <= p["line"] <= f.end_line
            for f in outputs[f"{p['workspace']}/{p['repository']}"].findings
        )

    expected = [p for p in plants if (p["path"], p["rule"]) not in gaps]
    missed = [(p["repository"], p["path"], p["rule"]) for p in expected if not matched(p)]
    print(
        f"checkov recall {len(expected) - len(missed)}/{len(expected)} "
        f"(+{len(plants) - len(expected)} known gaps: {sorted(set(gaps.values()))})"
    )
    assert missed == []


def test_helm_templates_without_a_helm_binary_are_listed_as_skipped(batch, outputs):
    if batch["helm"]:
        pytest.skip("a helm binary is installed: checkov renders the chart")
    skipped = outputs[MOVED].extra["skipped_files"]
    assert [(row["path"], row["scanner"]) for row in skipped] == [
        ("charts/edge-proxy/templates/daemonset.yaml", "checkov")
    ]
    assert "helm" in skipped[0]["reason"]


def test_findings_carry_our_severity_and_the_check(outputs):
    findings = outputs[MOVED].findings
    by_key = {(f.rule_id, f.file_path): f for f in findings}
    public = by_key[("CKV_AWS_20", "terraform/storage.tf")]
    assert (public.category, public.base_severity, public.cwe) == ("iac", "high", "CWE-732")
    assert public.title == "S3 Bucket has an ACL defined which allows public READ access"
    assert public.evidence.startswith("aws_s3_bucket.exports: ") and "CloudFront" in public.remediation
    assert public.controls == ["CIS-SSC-1.5.3", "SSDF-PW.9.1"]
    assert by_key[("CKV_AWS_18", "terraform/storage.tf")].base_severity == "low"  # hygiene: kept, low
    assert by_key[("CKV_K8S_16", "k8s/node-agent.yaml")].base_severity == "high"
    assert all(f.scanner == "checkov" and f.scanner_version.startswith("checkov ") for f in findings)
    assert len({f.finding_id for f in findings}) == len(findings)


def test_clean_repositories_have_nothing_high_or_critical(outputs, sandbox):
    clean = [k for k in outputs if profile_of(sandbox, k) in CLEAN_PROFILES]
    assert any(outputs[k].files_scanned for k in clean)  # clean-python has a Dockerfile
    serious = [
        (k, f.file_path, f.rule_id)
        for k in clean
        for f in outputs[k].findings
        if f.base_severity in ("high", "critical")
    ]
    assert serious == []


def test_fingerprints_follow_the_resource_not_the_line(batch):
    original, moved_output = batch[MOVED].findings, batch["moved"].findings
    assert sorted(f.finding_id for f in moved_output) == sorted(f.finding_id for f in original)
    lines = {f.finding_id: f.start_line for f in original}
    assert all(f.start_line == lines[f.finding_id] + 3 for f in moved_output if f.file_path in MOVED_FILES)


def test_resource_address_drops_checkout_paths_and_line_spans():
    root = "/data/cache/snapshots/acme/infra/0123abc"
    assert (
        resource_address(f"{root}/bitbucket-pipelines.yml.[{{image:image}}].CKV_X[1:49]", root)
        == "/bitbucket-pipelines.yml.[{image:image}].CKV_X"
    )
    assert resource_address("aws_s3_bucket.exports", root) == "aws_s3_bucket.exports"
    # a batch scanned from its folder: checkov names the Dockerfile by its path from that folder
    assert resource_address("/acme/infra/0123abc/docker/Dockerfile.FROM", root, "acme/infra/0123abc") == (
        "/docker/Dockerfile.FROM"
    )


def test_a_missing_tool_gives_every_snapshot_an_error(snapshots, monkeypatch, tmp_path):
    monkeypatch.setenv("OX_BB_TOOLS_DIR", str(tmp_path / "no-tools"))
    outputs = CheckovScanner().scan(list(snapshots.values()))
    assert len(outputs) == len(snapshots)
    assert all(o.error and "not installed" in o.error and not o.findings for o in outputs)


def test_a_batch_over_its_time_limit_gives_every_snapshot_an_error(snapshots):
    outputs = CheckovScanner(timeout=0.5).scan([snapshots[MOVED], snapshots["acme-platform/clean-python"]])
    assert [("timed out after 0.5 s" in (o.error or "")) for o in outputs] == [True, True]


def test_version_names_the_tool_and_the_severity_table():
    assert CheckovScanner().version().startswith("checkov 3.3.30+")


def test_findings_are_json_rows(outputs):
    rows = [f.row() for o in outputs.values() for f in o.findings]
    assert rows and json.loads(json.dumps(rows, default=str))[0]["scanner"] == "checkov"
