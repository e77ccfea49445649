"""`ox-bb advisories sync` over real HTTP against the sandbox's mirror: a first sync, a 304 re-sync that
downloads nothing, a changed record picked up, a truncated download refused with the old index kept,
and what SCA makes of the index: severities from CVSS v3 and v4 vectors, KEV / EPSS flags, and
`not_evaluable` (never a silent zero) for an ecosystem without data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests

from ox_bb_pipeline.advisories import status
from ox_bb_pipeline.advisories.index import AdvisoryIndex
from ox_bb_pipeline.advisories.sync import sync
from ox_bb_pipeline.clock import ManualClock
from ox_bb_pipeline.findings import RepoRef
from ox_bb_pipeline.scanners.sca import ScaScanner
from ox_bb_pipeline.scanners.snapshot import Snapshot, SnapshotLimits, walk
from ox_bb_pipeline.scanners.stage import scan_repositories
from ox_bb_sandbox.content import advisories_dir
from ox_bb_sandbox.generator import SandboxSpec
from ox_bb_sandbox.server import SandboxServer

from ..scanners.conftest import extract

NOW = datetime(2026, 11, 1, tzinfo=UTC)
ALL = ("PyPI", "npm", "Maven", "Go", "RubyGems", "crates.io", "NuGet", "Packagist")
FLASK = "GHSA-m2qf-hxjv-5gpq"
V4_CRITICAL = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"


@pytest.fixture
def mirror():
    """A sandbox of its own (its records change and it injects faults), with no repositories."""
    with SandboxServer(SandboxSpec(seed=3, workspaces=1, projects=1, repos=0)) as server:
        yield server


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An OX_BB_HOME whose SCA reads the synced index (the suite's default OX_BB_OSV_PATH removed)."""
    monkeypatch.setenv("OX_BB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("OX_BB_OSV_PATH")
    return tmp_path / "home"


def sync_from(server, home, ecosystems=None, clock=None):
    urls = server.advisory_settings()
    return sync(
        ecosystems,
        home=home,
        mirror=urls["OX_BB_OSV_MIRROR"],
        kev=urls["OX_BB_KEV_URL"],
        epss=urls["OX_BB_EPSS_URL"],
        clock=clock or ManualClock(NOW),
    )


def stats(server) -> dict:
    return requests.get(f"{server.base_url}/_sandbox/stats", timeout=10).json()


def outcomes(report) -> dict[str, str]:
    return {f.name: f.outcome for f in report.fetches}


def snapshot(root, files: dict[str, str]) -> Snapshot:
    for name, text in files.items():
        (root / name).write_text(text)
    found, skipped, total = walk(root, SnapshotLimits(max_file_bytes=65536))
    return Snapshot(RepoRef("conn", "ws", "{repo-1}", "repo", "c0ffee"), root, found, skipped, total)


def test_first_sync_downloads_every_export_and_feed_and_builds_the_index(mirror, home):
    report = sync_from(mirror, home)
    assert outcomes(report) == {**{e: "downloaded" for e in ALL}, "KEV": "downloaded", "EPSS": "downloaded"}
    assert report.warnings == [] and report.failed == []
    # 22 live records of the sandbox set (one more is withdrawn), by the ecosystem they affect
    assert report.index.records == {
        "PyPI": 9,
        "npm": 4,
        "Maven": 4,
        "Go": 3,
        "RubyGems": 1,
        "crates.io": 1,
        "NuGet": 0,
        "Packagist": 0,
    }
    assert (report.index.withdrawn, report.index.unreadable) == (1, 0)
    assert (report.index.known_exploited, report.index.epss) == (2, 22)
    index = AdvisoryIndex(home / "advisories" / "index.sqlite")
    assert [r["id"] for r in index.records("PyPI", "pyyaml")] == ["GHSA-6757-jp84-gxfx", "GHSA-8q59-q68h-6hv4"]
    assert index.records("PyPI", "PyYAML") == index.records("PyPI", "pyyaml")  # PEP 503 names
    assert index.exploitation(["GHSA-jfh8-c2jp-5v3q", "CVE-2021-44228"]) == (True, 0.94358)
    assert index.exploitation(["GHSA-m2qf-hxjv-5gpq", "CVE-2023-30861"]) == (False, 0.00043)
    state = status(NOW + timedelta(days=1), home)
    assert (state.source, state.digest, state.warnings) == ("index", report.index.digest, [])
    assert state.age_days == 1.0


def test_a_resync_of_unchanged_data_downloads_nothing(mirror, home):
    first = sync_from(mirror, home)
    inode = (home / "advisories" / "index.sqlite").stat().st_ino
    requests.post(f"{mirror.base_url}/_sandbox/stats/reset", timeout=10)
    again = sync_from(mirror, home)
    assert outcomes(again) == {name: "not_modified" for name in outcomes(first)}
    assert again.index is None  # nothing changed: the index is not rebuilt
    assert (home / "advisories" / "index.sqlite").stat().st_ino == inode
    counters = stats(mirror)
    assert (counters["mirror_total"], counters["per_status"]) == (10, {"304": 10})


def test_a_changed_record_is_picked_up_and_scored_from_its_cvss_v4_vector(mirror, home, tmp_path):
    first = sync_from(mirror, home)
    repo = snapshot(tmp_path, {"requirements.txt": "flask==2.2.0\n"})
    [before] = ScaScanner(home=home).scan([repo])[0].findings
    assert (before.rule_id, before.base_severity, before.cvss_score) == (FLASK, "high", 7.5)
    assert before.cvss_vector.startswith("CVSS:3.1/")
    record = json.loads((advisories_dir() / f"{FLASK}.json").read_text())
    record.update(modified="2026-10-30T00:00:00Z", severity=[{"type": "CVSS_V4", "score": V4_CRITICAL}])
    assert requests.post(f"{mirror.base_url}/_sandbox/advisories", json=record, timeout=10).ok
    second = sync_from(mirror, home)
    assert {n for n, o in outcomes(second).items() if o == "downloaded"} == {"PyPI"}
    assert second.index.digest != first.index.digest
    scanner = ScaScanner(home=home)
    assert scanner.version().endswith(f"+osv-{second.index.digest}")  # cached SCA results are rescanned
    [after] = scanner.scan([repo])[0].findings
    assert (after.rule_id, after.base_severity, after.cvss_score, after.cvss_vector) == (
        FLASK,
        "critical",
        9.3,
        V4_CRITICAL,
    )


def test_a_truncated_download_is_refused_and_the_old_data_and_index_kept(mirror, home):
    first = sync_from(mirror, home)
    index_file = home / "advisories" / "index.sqlite"
    kept = index_file.read_bytes()
    old_zip = (home / "advisories" / "osv" / "PyPI" / "all.zip").read_bytes()
    record = json.loads((advisories_dir() / f"{FLASK}.json").read_text())
    requests.post(
        f"{mirror.base_url}/_sandbox/advisories", json={**record, "modified": "2026-10-30T00:00:00Z"}, timeout=10
    )
    requests.post(
        f"{mirror.base_url}/_sandbox/faults", json={"route": "/osv/PyPI/all.zip", "kind": "truncate"}, timeout=10
    )
    report = sync_from(mirror, home)
    assert outcomes(report)["PyPI"] == "refused"
    [failed] = report.failed
    assert "not a valid zip archive" in failed.detail and "previous copy is kept" in failed.detail
    assert report.index is None and index_file.read_bytes() == kept
    assert (home / "advisories" / "osv" / "PyPI" / "all.zip").read_bytes() == old_zip
    assert not list((home / "advisories").rglob("*.part"))
    assert AdvisoryIndex(index_file).digest == first.index.digest
    assert outcomes(sync_from(mirror, home))["PyPI"] == "downloaded"  # the fault fired once: the next sync heals


def test_an_ecosystem_without_data_is_not_evaluable_never_a_silent_zero(sandbox, home, tmp_path):
    report = sync_from(sandbox, home, ecosystems=["PyPI"])
    assert set(report.index.records) == {"PyPI"}
    state = status(NOW, home)
    assert state.missing() == ["Go", "Maven", "NuGet", "Packagist", "RubyGems", "crates.io", "npm"]
    tables, git = extract(sandbox.write_connections(tmp_path / "connections.yaml"))
    scan = scan_repositories(tables["repositories"], git, scanners=[ScaScanner()], home=home)
    runs = {r["repository"]: r for r in scan.scan_runs}
    components = {}
    for row in scan.extra["components"]:
        components.setdefault(row["repository"], set()).add(row["ecosystem"])
    for name, run in runs.items():
        missing = sorted(components.get(name, set()) - {"PyPI"})
        if missing:
            assert (run["status"], run["error"]) == (
                "not_evaluable",
                (
                    f"no advisory data for {', '.join(missing)} in the advisory index: run `ox-bb advisories sync` "
                    "(or point OX_BB_OSV_PATH at OSV records)"
                ),
            ), name
        else:
            assert (run["status"], run["error"]) == ("ok", None), name
    assert {r["status"] for r in runs.values()} == {"ok", "not_evaluable"}
    assert {f["package"] for f in scan.findings["sca"]} >= {"PyYAML"}  # PyPI is still evaluated
    again = scan_repositories(tables["repositories"], git, scanners=[ScaScanner()], home=home)
    assert [(r["status"], r["error"], r["cached"]) for r in again.scan_runs] == [
        (r["status"], r["error"], True) for r in scan.scan_runs
    ]  # cached, and still saying so
    sync_from(sandbox, home)  # the other ecosystems arrive: a new digest, so every repository is rescanned
    complete = scan_repositories(tables["repositories"], git, scanners=[ScaScanner()], home=home)
    assert {(r["status"], r["cached"]) for r in complete.scan_runs} == {("ok", False)}
    assert len(complete.findings["sca"]) > len(scan.findings["sca"])


def test_no_advisory_data_at_all_evaluates_nothing(home, tmp_path):
    repo = snapshot(tmp_path, {"requirements.txt": "flask==2.2.0\n"})
    output = ScaScanner(home=home).scan([repo])[0]
    assert output.findings == [] and output.error is None
    assert output.not_evaluable.startswith("no advisory data for PyPI in the advisory index")
    assert ScaScanner(home=home).version().endswith("+osv-none")
    assert status(NOW, home).warnings[0].startswith("no advisory data: SCA is not evaluated")


def test_known_exploited_and_epss_reach_the_finding(mirror, home, tmp_path):
    sync_from(mirror, home)
    pom = (
        "<project><dependencies><dependency><groupId>org.apache.logging.log4j</groupId>"
        "<artifactId>log4j-core</artifactId><version>2.14.1</version></dependency></dependencies></project>\n"
    )
    [finding] = ScaScanner(home=home).scan([snapshot(tmp_path, {"pom.xml": pom})])[0].findings
    assert (finding.rule_id, finding.known_exploited, finding.epss, finding.base_severity, finding.cvss_score) == (
        "GHSA-jfh8-c2jp-5v3q",
        True,
        0.94358,
        "critical",
        10.0,
    )


def test_stale_data_and_missing_feeds_are_warnings(mirror, home, monkeypatch):
    urls = mirror.advisory_settings()
    report = sync(
        home=home,
        mirror=urls["OX_BB_OSV_MIRROR"],
        kev=f"{mirror.base_url}/kev/missing.json",
        epss=urls["OX_BB_EPSS_URL"],
        clock=ManualClock(NOW),
    )
    assert report.failed == [] and report.index is not None
    assert report.warnings == [f"KEV feed not updated: HTTP 404 from {mirror.base_url}/kev/missing.json"]
    monkeypatch.setenv("OX_BB_ADVISORIES_MAX_AGE_DAYS", "3")
    assert status(NOW + timedelta(days=4), home).warnings == [
        "advisory data is 4 days old (more than 3, OX_BB_ADVISORIES_MAX_AGE_DAYS); run `ox-bb advisories sync`",
        "no CISA KEV data: findings are not marked known-exploited (OX_BB_KEV_URL)",
    ]
    assert status(NOW + timedelta(days=2), home).warnings == [
        "no CISA KEV data: findings are not marked known-exploited (OX_BB_KEV_URL)"
    ]
    monkeypatch.setenv("OX_BB_ADVISORIES_MAX_AGE_DAYS", "a week")
    with pytest.raises(ValueError, match="ADVISORIES_MAX_AGE_DAYS must be a positive number of days, not 'a week'"):
        status(NOW, home)


def test_the_sync_command_reports_each_download_and_fails_when_an_export_is_refused(mirror, home, monkeypatch):
    from click.testing import CliRunner

    from ox_bb_pipeline.app.cli import main

    for name, value in mirror.advisory_settings().items():
        monkeypatch.setenv(name, value)
    first = CliRunner().invoke(main, ["advisories", "sync"])
    assert first.exit_code == 0, first.output
    assert "PyPI       downloaded (0.0 MB)" in first.output and "index      22 advisories, digest " in first.output
    record = json.loads((advisories_dir() / "GHSA-35jh-r3h4-6jhm.json").read_text())
    requests.post(
        f"{mirror.base_url}/_sandbox/advisories", json={**record, "modified": "2026-10-30T00:00:00Z"}, timeout=10
    )
    requests.post(
        f"{mirror.base_url}/_sandbox/faults", json={"route": "/osv/npm/all.zip", "kind": "truncate"}, timeout=10
    )
    second = CliRunner().invoke(main, ["advisories", "sync", "--ecosystem", "npm", "--ecosystem", "PyPI"])
    assert second.exit_code == 1
    assert f"npm        refused (0.0 MB): {mirror.base_url}/osv/npm/all.zip: not a valid zip archive" in second.output
    assert "PyPI       not_modified" in second.output
    status_lines = CliRunner().invoke(main, ["advisories", "status"]).output.splitlines()
    assert status_lines[0].startswith("advisories: index ") and len(status_lines) == 1
    assert status_lines[0].endswith("Go 3, Maven 4, NuGet 0, Packagist 0, PyPI 9, RubyGems 1, crates.io 1, npm 4")
    unknown = CliRunner().invoke(main, ["advisories", "sync", "--ecosystem", "pypi"])
    assert unknown.exit_code == 2 and "unknown ecosystem(s) pypi; use OSV's spelling" in unknown.output
