"""`ox-bb export sarif|cyclonedx` from a real warehouse build: SARIF valid against the official 2.1.0 schema
with what GitHub code scanning and DefectDojo read (rules, locations, partialFingerprints, security-severity,
suppressions), CycloneDX 1.6 SBOMs with their vulnerabilities valid for cyclonedx-python-lib, one file per
repository or application, and never a secret."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from ox_bb_pipeline.app.cli import main
from ox_bb_pipeline.warehouse.interchange import ExportError, export

SCHEMA = Path(__file__).parent / "data" / "sarif-2.1.0-rtm.5.json"
SCHEMA_SHA256 = "2d99159ae54a3eea97f81781cff48780548657c35949f4b7f25e99a2ba4de4f8"
RAW_SECRET = "AKIAZZZZEXPORTSECRET7"


def sarif_errors(log: dict) -> list[str]:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(log)]


@pytest.fixture
def exported(lake):
    """acme/api (payments): a critical secret, a suppressed bandit finding, a vulnerable dependency;
    ops/infra (platform): a posture finding on a setting (no file)."""
    lake.config(
        "applications.yaml",
        """
        applications:
          - {name: payments, repositories: [{repository: api}]}
          - {name: platform, repositories: [{workspace: ops, repository: infra}]}
    """,
    )
    api, infra = lake.repository("api"), lake.repository("infra", workspace="ops")
    lake.scan(api, "secrets", "bandit", "sca")
    lake.add(
        "inventory",
        "components",
        *[
            {
                "workspace": "acme",
                "repository_uuid": api["repository_uuid"],
                "repository": "api",
                "commit": "head-api",
                "ecosystem": "PyPI",
                "name": name,
                "version": version,
                "purl": f"pkg:pypi/{name}@{version}",
                "manifest": "requirements.txt",
                "line": line,
                "direct": True,
                "dev_only": False,
            }
            for line, (name, version) in enumerate((("requests", "2.19.0"), ("flask", "3.0.0")), 1)
        ],
    )
    ids = {
        "secret": lake.finding(
            api,
            "secrets",
            "aws-access-key",
            severity="critical",
            file_path="deploy.sh",
            start_line=3,
            end_line=3,
            evidence=RAW_SECRET,
            cwe="CWE-798",
            title="AWS access key",
            remediation="Revoke the key and read it from a vault.",
        ),
        "b105": lake.finding(
            api,
            "bandit",
            "B105",
            severity="medium",
            file_path="app/config.py",
            start_line=10,
            evidence=f"password = '{RAW_SECRET}'",
        ),
        "vuln": lake.finding(
            api,
            "sca",
            "GHSA-j8r2-6x86-q33q",
            severity="medium",
            file_path="requirements.txt",
            start_line=1,
            package="requests",
            version="2.19.0",
            fixed_version="2.31.0",
            vulnerability_ids=["GHSA-j8r2-6x86-q33q", "CVE-2023-32681"],
            cvss_score=6.1,
            cvss_vector="CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N",
            cwe="CWE-200",
            title="Unintended leak of Proxy-Authorization header in requests",
        ),
        "posture": lake.finding(
            infra, "posture", "BB-003", severity="high", anchor="branch:main", title="Main branch allows force pushes"
        ),
    }
    lake.config(
        "suppressions.yaml",
        f"""
        suppressions:
          - fingerprint: {ids["b105"]}
            reason: test credential, revoked
            owner: alice@example.com
            expires: 2027-01-31
    """,
    )
    lake.build()
    return ids


def test_sarif_per_repository_is_valid_and_carries_what_code_scanning_reads(lake, exported):
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256  # the vendored schema, unchanged
    written = export("sarif", home=lake.home)
    assert [p.name for p in written] == ["acme+api.sarif", "ops+infra.sarif"]
    assert {p.parent for p in written} == {lake.home / "exports" / "sarif"}
    api = json.loads(written[0].read_text())
    assert sarif_errors(api) == []
    assert sarif_errors(json.loads(written[1].read_text())) == []
    assert api["version"] == "2.1.0"
    runs = {run["tool"]["driver"]["name"]: run for run in api["runs"]}
    assert sorted(runs) == ["ox-bb bandit", "ox-bb sca", "ox-bb secrets"]

    secrets = runs["ox-bb secrets"]
    assert secrets["automationDetails"] == {"id": "ox-bb/secrets/acme/api/"}
    assert secrets["tool"]["driver"]["rules"] == [
        {
            "id": "aws-access-key",
            "name": "aws-access-key",
            "shortDescription": {"text": "AWS access key"},
            "defaultConfiguration": {"level": "error"},
            "properties": {
                "tags": ["security", "secrets", "external/cwe/cwe-798"],
                "security-severity": "9.5",
                "precision": "high",
            },
            "help": {"text": "Revoke the key and read it from a vault."},
        }
    ]
    [result] = secrets["results"]
    assert result["ruleId"] == "aws-access-key" and result["ruleIndex"] == 0 and result["level"] == "error"
    assert result["locations"] == [
        {
            "physicalLocation": {
                "artifactLocation": {"uri": "deploy.sh", "uriBaseId": "SRCROOT"},
                "region": {"startLine": 3, "endLine": 3},
            }
        }
    ]
    assert result["partialFingerprints"] == {"oxBbFindingId/v1": exported["secret"]}
    assert result["properties"]["status"] == "new" and result["properties"]["application"] == "payments"
    assert "suppressions" not in result

    [suppressed] = runs["ox-bb bandit"]["results"]
    assert suppressed["suppressions"] == [
        {"kind": "external", "status": "accepted", "justification": "test credential, revoked"}
    ]
    [vuln_rule] = runs["ox-bb sca"]["tool"]["driver"]["rules"]
    assert vuln_rule["properties"]["security-severity"] == "5.5"
    assert vuln_rule["properties"]["tags"] == ["security", "sca", "external/cwe/cwe-200"]

    [infra_run] = json.loads(written[1].read_text())["runs"]
    assert infra_run["results"][0]["locations"] == [
        {"logicalLocations": [{"fullyQualifiedName": "ops/infra", "kind": "module"}]}
    ]


def test_sarif_for_one_application_and_an_unknown_one(lake, exported, tmp_path):
    [path] = export("sarif", application="payments", out=tmp_path / "out", home=lake.home)
    assert path == tmp_path / "out" / "payments.sarif"
    log = json.loads(path.read_text())
    assert sarif_errors(log) == []
    fingerprints = {r["partialFingerprints"]["oxBbFindingId/v1"] for run in log["runs"] for r in run["results"]}
    assert fingerprints == {exported["secret"], exported["b105"], exported["vuln"]}
    with pytest.raises(ExportError, match=r"no application 'billing'.*known: payments, platform"):
        export("sarif", application="billing", home=lake.home)


def test_cyclonedx_sbom_with_vulnerabilities_is_valid(lake, exported):
    [path] = export("cyclonedx", home=lake.home)
    assert path == lake.home / "exports" / "cyclonedx" / "acme+api.cdx.json"
    text = path.read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    bom = json.loads(text)
    assert bom["specVersion"] == "1.6"
    assert sorted(c["purl"] for c in bom["components"]) == ["pkg:pypi/flask@3.0.0", "pkg:pypi/requests@2.19.0"]
    [vuln] = bom["vulnerabilities"]
    assert vuln["id"] == "GHSA-j8r2-6x86-q33q"
    assert vuln["affects"] == [{"ref": "pkg:pypi/requests@2.19.0"}]
    assert vuln["cwes"] == [200]
    assert {(r.get("method"), r.get("severity"), r.get("score")) for r in vuln["ratings"]} == {
        ("other", "medium", None),
        ("CVSSv31", None, 6.1),
    }
    assert {p["name"]: p["value"] for p in vuln["properties"]} == {
        "ox-bb:finding_id": exported["vuln"],
        "ox-bb:status": "new",
        "ox-bb:alias": "CVE-2023-32681",
    }
    assert export("cyclonedx", application="platform", home=lake.home) == []  # no components in ops/infra


def test_no_secret_value_in_any_export(lake, exported, tmp_path):
    written = export("sarif", home=lake.home) + export("cyclonedx", home=lake.home)
    written += export("sarif", application="payments", out=tmp_path, home=lake.home)
    assert len(written) == 4
    for path in written:
        assert RAW_SECRET not in path.read_text(), path


def test_cli_writes_the_files_and_names_an_unknown_application(lake, exported, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["export", "sarif", "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "2 sarif files written"
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["acme+api.sarif", "ops+infra.sarif"]
    result = runner.invoke(main, ["export", "cyclonedx", "--application", "nope"])
    assert result.exit_code == 1
    assert "no application 'nope'" in result.output


def test_dagster_report_assets_write_both_formats(lake, exported):
    import dagster as dg

    from ox_bb_pipeline.defs.storage.resources import StorageResource
    from ox_bb_pipeline.defs.warehouse.interchange import cyclonedx, sarif

    result = dg.materialize([sarif, cyclonedx], resources={"storage": StorageResource()})
    assert result.success
    files = {
        "/".join(e.asset_key.path): e.event_specific_data.materialization.metadata["files"].value
        for e in result.get_asset_materialization_events()
    }
    assert files == {"reports/sarif": 2, "reports/cyclonedx": 1}
    assert (lake.home / "exports" / "cyclonedx" / "acme+api.cdx.json").exists()


def test_triage_decisions_reach_both_formats(lake, exported):
    from ox_bb_pipeline.warehouse.triage import record_triage

    from .conftest import NOW

    record_triage(
        exported["vuln"],
        "false_positive",
        reason="requests is vendored but never imported",
        owner="alice",
        decided_by="bob",
        now=NOW,
        home=lake.home,
    )
    lake.build(NOW + timedelta(days=1))
    [bom_path] = export("cyclonedx", home=lake.home)
    [vuln] = json.loads(bom_path.read_text())["vulnerabilities"]
    assert vuln["analysis"] == {
        "state": "false_positive",
        "detail": "false positive: requests is vendored but never imported",
    }
    sarif = json.loads(export("sarif", home=lake.home)[0].read_text())
    [result] = next(run for run in sarif["runs"] if run["tool"]["driver"]["name"] == "ox-bb sca")["results"]
    assert result["suppressions"] == [
        {
            "kind": "external",
            "status": "accepted",
            "justification": "false positive: requests is vendored but never imported",
        }
    ]
