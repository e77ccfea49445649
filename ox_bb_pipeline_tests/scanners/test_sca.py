"""The SCA scanner on the sandbox: every planted vulnerable dependency found, nothing else; stable
fingerprints; the SBOM table and its CycloneDX export."""

from __future__ import annotations

import json
import shutil
import zipfile

import pyarrow as pa
import pytest

from ox_bb_pipeline.findings import RepoRef
from ox_bb_pipeline.scanners.sca import COMPONENT_SCHEMA, MANIFEST_ERROR_SCHEMA, ScaScanner, cyclonedx_json
from ox_bb_pipeline.scanners.sca.ecosystems import name_key
from ox_bb_pipeline.scanners.snapshot import Snapshot, SnapshotLimits, walk
from ox_bb_sandbox.content import advisories_dir

from .conftest import planted_of

CLEAN = ("clean-python", "clean-node", "docs")


@pytest.fixture(scope="module")
def scanned(snapshots) -> dict[str, object]:
    """`workspace/slug` -> ScanOutput of the SCA scanner with the sandbox's advisory set."""
    names = list(snapshots)
    outputs = ScaScanner(advisories_dir()).scan([snapshots[n] for n in names])
    return dict(zip(names, outputs))


def _package_key(output, finding) -> tuple[str, str]:
    """(ecosystem, normalised name) of a finding, from the component it was raised on."""
    stated = (finding.file_path, finding.package, finding.version)
    ecosystem = next(
        c["ecosystem"] for c in output.extra["components"] if (c["manifest"], c["name"], c["version"]) == stated
    )
    return ecosystem, name_key(ecosystem, finding.package)


def test_every_planted_dependency_is_found_with_its_line_and_scope(scanned, planted):
    plants = planted_of(planted, "dependency")
    assert len(plants) >= 20, "the sandbox plants vulnerable dependencies"
    missed = []
    for plant in plants:
        output = scanned[f"{plant['workspace']}/{plant['repository']}"]
        package = name_key(plant["ecosystem"], plant["package"])
        hits = [
            f
            for f in output.findings
            if (f.rule_id, f.file_path, _package_key(output, f), f.version, f.start_line)
            == (plant["rule"], plant["path"], (plant["ecosystem"], package), plant["version"], plant["line"])
        ]
        component = next(
            (
                c
                for c in output.extra["components"]
                if (c["manifest"], c["version"]) == (plant["path"], plant["version"])
                and name_key(c["ecosystem"], c["name"]) == package
            ),
            {},
        )
        if len(hits) != 1 or component.get("dev_only") != plant["dev_only"]:
            missed.append(plant)
    assert missed == []
    assert 1 - len(missed) / len(plants) == 1.0  # recall


def test_nothing_is_reported_beyond_the_planted_dependencies(scanned, planted):
    expected = {
        (p["workspace"], p["repository"], p["rule"], p["path"], name_key(p["ecosystem"], p["package"]), p["version"])
        for p in planted_of(planted, "dependency")
    }
    reported = {
        (f.workspace, f.repository, f.rule_id, f.file_path, _package_key(output, f)[1], f.version)
        for output in scanned.values()
        for f in output.findings
    }
    assert reported == expected


def test_clean_repositories_have_components_but_no_findings(scanned):
    clean = {name: out for name, out in scanned.items() if name.split("/")[1].startswith(CLEAN)}
    assert {name.split("/")[1] for name in clean} >= set(CLEAN)
    for name, output in clean.items():
        assert output.findings == [], name
        assert output.extra["manifest_errors"] == []
    assert any(out.extra["components"] for out in clean.values())


def test_withdrawn_advisory_is_never_reported(scanned):
    rules = {f.rule_id for output in scanned.values() for f in output.findings}
    assert "OXSB-2026-0001" not in rules
    # express 4.17.1 sits inside the withdrawn record's range: only the live advisory names it
    express = [f for output in scanned.values() for f in output.findings if f.package == "express"]
    assert express and {f.rule_id for f in express} == {"GHSA-rv95-896h-c2vc"}


def test_fixed_boundary_is_not_affected(scanned):
    pyyaml = [f for output in scanned.values() for f in output.findings if f.package == "PyYAML"]
    assert pyyaml and {f.rule_id for f in pyyaml} == {"GHSA-8q59-q68h-6hv4"}  # not GHSA-6757 (fixed in 5.3.1)


def test_findings_carry_advisory_facts(scanned):
    findings = {f.rule_id: f for output in scanned.values() for f in output.findings}
    log4shell = findings["GHSA-jfh8-c2jp-5v3q"]
    assert log4shell.base_severity == "critical"
    assert log4shell.fixed_version == "2.15.0"
    assert log4shell.vulnerability_ids == ["GHSA-jfh8-c2jp-5v3q", "CVE-2021-44228"]
    assert log4shell.remediation.startswith("Upgrade org.apache.logging.log4j:log4j-core to 2.15.0")
    assert ">=2.13.0, <2.15.0" in log4shell.evidence and "log4j-core@2.14.1" in log4shell.evidence
    assert log4shell.cwe == "CWE-20" and "SSDF-PW.4.4" in log4shell.controls
    assert findings["GHSA-wq4h-7r42-5hrr"].base_severity == "high"  # no CVSS vector: GHSA's label
    assert findings["GHSA-h395-qcrw-5vmq"].remediation.startswith("Upgrade github.com/gin-gonic/gin to v1.7.7")
    assert all(f.category == "sca" and f.scanner == "sca" for f in findings.values())


def test_component_inventory_fits_its_schema(scanned):
    rows = [row for output in scanned.values() for row in output.extra["components"]]
    table = pa.Table.from_pylist(rows, schema=COMPONENT_SCHEMA)
    assert table.num_rows == len(rows) > 30
    assert set(table.column("ecosystem").to_pylist()) == {"PyPI", "npm", "Maven", "Go", "RubyGems", "crates.io"}
    assert all(row["purl"].startswith("pkg:") and row["commit"] for row in rows)
    errors = [row for output in scanned.values() for row in output.extra["manifest_errors"]]
    assert pa.Table.from_pylist(errors, schema=MANIFEST_ERROR_SCHEMA).num_rows == 0


def test_cyclonedx_export_is_valid_json_with_purls(scanned):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    name = next(n for n in scanned if n.endswith("/node-web"))
    rows = scanned[name].extra["components"]
    document = cyclonedx_json(rows)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(document) is None
    bom = json.loads(document)
    purls = {c["purl"] for c in bom["components"]}
    assert {"pkg:npm/lodash@4.17.15", "pkg:npm/lodash@4.17.20", "pkg:npm/minimist@1.2.5"} <= purls
    minimist = next(c for c in bom["components"] if c["name"] == "minimist")
    assert minimist["scope"] == "excluded"  # dev-only
    root = bom["metadata"]["component"]["bom-ref"]
    direct = next(d for d in bom["dependencies"] if d["ref"] == root)["dependsOn"]
    assert "pkg:npm/express@4.17.1" in direct and "pkg:npm/accepts@1.3.7" not in direct
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(cyclonedx_json(rows, "1.5")) is None


# -- without the sandbox ----------------------------------------------------------------------------


def _snapshot(root, uuid="{repo-1}") -> Snapshot:
    files, skipped, total = walk(root, SnapshotLimits(max_file_bytes=4096))
    return Snapshot(RepoRef("conn", "ws", uuid, "repo", "c0ffee"), root, files, skipped, total)


def test_fingerprints_survive_moved_lines(tmp_path):
    (tmp_path / "requirements.txt").write_text("Flask==1.0.2\nJinja2==2.10\n")
    scanner = ScaScanner(advisories_dir())
    before = {f.rule_id: f for f in scanner.scan([_snapshot(tmp_path)])[0].findings}
    (tmp_path / "requirements.txt").write_text("# pinned\n\nrequests==2.32.4\nJinja2==2.10\n\nFlask==1.0.2\n")
    after = {f.rule_id: f for f in scanner.scan([_snapshot(tmp_path)])[0].findings}
    assert set(before) == set(after) == {"GHSA-m2qf-hxjv-5gpq", "GHSA-462w-v97r-4m45"}
    for rule in before:
        assert before[rule].finding_id == after[rule].finding_id
    assert (before["GHSA-m2qf-hxjv-5gpq"].start_line, after["GHSA-m2qf-hxjv-5gpq"].start_line) == (1, 6)


def test_broken_and_oversized_manifests_become_error_rows(tmp_path):
    (tmp_path / "package-lock.json").write_text('{"packages": {')
    (tmp_path / "pom.xml").write_text('<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "aaaa">]><project>&a;</project>')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "requirements.txt").write_text("Flask==1.0.2\n" + "# padding\n" * 1000)
    (tmp_path / "Gemfile.lock").write_text("GEM\n  specs:\n    rack (2.2.3)\n")
    output = ScaScanner(advisories_dir()).scan([_snapshot(tmp_path)])[0]
    assert output.error is None
    errors = {row["manifest"]: row["error"] for row in output.extra["manifest_errors"]}
    assert set(errors) == {"package-lock.json", "pom.xml", "sub/requirements.txt"}
    assert "EntitiesForbidden" in errors["pom.xml"] and "not scanned" in errors["sub/requirements.txt"]
    assert [f.rule_id for f in output.findings] == ["GHSA-wq4h-7r42-5hrr"]  # the healthy file still counts


def test_version_changes_with_the_advisory_set(tmp_path, monkeypatch):
    shutil.copytree(advisories_dir(), tmp_path / "osv")
    monkeypatch.setenv("OX_BB_OSV_PATH", str(tmp_path / "osv"))
    scanner = ScaScanner()
    before = scanner.version()
    assert before == ScaScanner(advisories_dir()).version()
    (tmp_path / "osv" / "GHSA-j8r2-6x86-q33q.json").unlink()
    assert scanner.version() != before


def test_an_all_zip_scans_like_the_directory(tmp_path):
    with zipfile.ZipFile(tmp_path / "all.zip", "w") as archive:
        for record in advisories_dir().glob("*.json"):
            archive.write(record, record.name)
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "requirements.txt").write_text("requests==2.19.1\nPyYAML==5.3.1\n")
    snapshot = _snapshot(tmp_path / "repo")
    from_dir = ScaScanner(advisories_dir()).scan([snapshot])[0].findings
    from_zip = ScaScanner(tmp_path / "all.zip").scan([snapshot])[0].findings
    assert [f.finding_id for f in from_zip] == [f.finding_id for f in from_dir]
    assert {f.rule_id for f in from_zip} == {"GHSA-x84v-xcm2-53pg", "GHSA-j8r2-6x86-q33q", "GHSA-8q59-q68h-6hv4"}
