"""The scan stage on a tiny sandbox: a first run clones and scans every selected repository, a run with
nothing changed clones nothing and starts no scanner, a push rescans only the pushed repository, and a
repository that cannot be cloned or a scanner that crashes costs only its own rows. No checkout (which
holds raw secrets) is left on disk after a run, nor after a run that was killed once the next one starts.
Two runs on one data home at once each check out into a private directory: both get every finding, and
only complete results are cached."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from ox_bb_pipeline.config import data_home
from ox_bb_pipeline.scanners.bandit import BanditScanner
from ox_bb_pipeline.scanners.sca import ScaScanner
from ox_bb_pipeline.scanners.secrets import SecretsScanner
from ox_bb_pipeline.scanners.snapshot import Snapshot
from ox_bb_pipeline.scanners.stage import ScanStageReport, scan_repositories
from ox_bb_pipeline_tests.conftest import TINY
from ox_bb_sandbox.server import SandboxServer

from .conftest import extract, push_file

WS = "acme-payments"
PUSHED = "node-web"
PUSHED_KEY = "AKIAQ7K3M9X2B5N8W4J6"  # an AWS access key id in the pushed file


class Recording:
    """A real scanner that notes the repositories of every batch it is asked to scan."""

    def __init__(self, scanner) -> None:
        self.scanner = scanner
        self.name, self.category = scanner.name, scanner.category
        self.batches: list[list[str]] = []

    def version(self) -> str:
        return self.scanner.version()

    def scan(self, snapshots: list[Snapshot]):
        self.batches.append([s.repo.repository for s in snapshots])
        return self.scanner.scan(snapshots)


class CrashingBandit(BanditScanner):
    """bandit with a bug that raises on every batch."""

    def scan(self, snapshots: list[Snapshot]):
        raise RuntimeError("bandit crashed")


@dataclass
class Run:
    report: ScanStageReport
    batches: dict[str, list[list[str]]]  # scanner -> repositories of each batch it scanned
    leftovers: list[Path]  # files under the snapshot cache after the run


def checkouts_left(home: Path) -> list[Path]:
    """Files of checkouts under the snapshot cache; the `.<commit>.complete` markers hold a hash only."""
    root = home / "cache" / "snapshots"
    return [p for p in root.rglob("*") if not p.is_dir() and not p.name.endswith(".complete")] if root.exists() else []


def finding_ids(report: ScanStageReport) -> dict[str, list[str]]:
    return {scanner: sorted(f["finding_id"] for f in rows) for scanner, rows in report.findings.items()}


def runs_of(report: ScanStageReport, **where) -> list[dict]:
    return [r for r in report.scan_runs if all(r[k] == v for k, v in where.items())]


@pytest.fixture(scope="module")
def server():
    """A sandbox of its own: the story below pushes to it."""
    with SandboxServer(TINY) as server:
        yield server


@pytest.fixture(scope="module")
def story(server, tmp_path_factory) -> dict[str, Run]:
    """Three scans of one connection, as three pipeline runs would do them: a first run, a run with
    nothing changed, and a run after a push to one repository (each after its extract)."""
    root = tmp_path_factory.mktemp("stage")
    home = root / "home"
    scanners = [Recording(SecretsScanner()), Recording(BanditScanner()), Recording(ScaScanner())]
    runs = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OX_BB_HOME", str(home))
        connections = server.write_connections(root / "connections.yaml")

        def scan(label: str) -> None:
            tables, git = extract(connections)
            report = scan_repositories(tables["repositories"], git, scanners=scanners, home=data_home())
            runs[label] = Run(report, {s.name: s.batches[:] for s in scanners}, checkouts_left(home))
            for scanner in scanners:
                scanner.batches.clear()

        scan("first")
        scan("unchanged")
        push_file(
            server.world.workspaces[WS].repositories[PUSHED],
            "deploy.env",
            f"AWS_ACCESS_KEY_ID={PUSHED_KEY}\nREGION=eu-west-1\n",
        )
        scan("pushed")
    return runs


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("OX_BB_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_a_first_scan_clones_every_selected_repository_and_runs_every_scanner(story, server):
    first = story["first"]
    repositories = set(server.world.workspaces[WS].repositories)

    assert first.report.cloned == len(repositories) == 2
    assert first.report.cached_repositories == 0
    assert {(r["repository"], r["scanner"]) for r in first.report.scan_runs} == {
        (repo, scanner) for repo in repositories for scanner in ("secrets", "bandit", "sca")
    }
    assert {r["status"] for r in first.report.scan_runs} == {"ok"}
    assert not any(r["cached"] for r in first.report.scan_runs)
    assert all(r["files_scanned"] > 0 for r in runs_of(first.report, scanner="secrets"))
    # one batch per scanner holds both repositories (process-heavy tools start once per batch)
    assert {name: [sorted(b) for b in batches] for name, batches in first.batches.items()} == {
        name: [sorted(repositories)] for name in ("secrets", "bandit", "sca")
    }


def test_nothing_changed_means_no_clone_no_scanner_and_the_same_findings(story):
    first, unchanged = story["first"], story["unchanged"]

    assert unchanged.report.cloned == 0
    assert unchanged.report.git_operations == 0
    assert unchanged.batches == {"secrets": [], "bandit": [], "sca": []}
    assert unchanged.report.cached_repositories == 2
    assert {(r["status"], r["cached"]) for r in unchanged.report.scan_runs} == {("ok", True)}
    assert finding_ids(unchanged.report) == finding_ids(first.report)
    assert sum(len(ids) for ids in finding_ids(first.report).values()) > 0

    # the counts a cached row reports are those of the scan that produced it
    def counts(run: Run) -> list[tuple]:
        return sorted(
            (r["repository"], r["scanner"], r["files_scanned"], r["bytes_scanned"], r["findings"])
            for r in run.report.scan_runs
        )

    assert counts(unchanged) == counts(first)
    # the top-level file listing (posture BB-019) is still complete without a clone
    assert sorted(r["path"] for r in unchanged.report.repository_files) == sorted(
        r["path"] for r in first.report.repository_files
    )


def test_a_push_rescans_only_the_pushed_repository(story):
    pushed = story["pushed"]

    assert pushed.report.cloned == 1
    assert pushed.batches == {"secrets": [[PUSHED]], "bandit": [[PUSHED]], "sca": [[PUSHED]]}
    assert {(r["repository"], r["cached"]) for r in pushed.report.scan_runs} == {
        (PUSHED, False),
        ("python-service", True),
    }
    new = [f for f in pushed.report.findings["secrets"] if f["file_path"] == "deploy.env"]
    assert [(f["repository"], f["rule_id"], f["start_line"]) for f in new] == [(PUSHED, "aws-access-key", 1)]
    assert PUSHED_KEY not in str(pushed.report.findings)  # evidence is masked
    # what did not change keeps its identity
    before = {f["finding_id"] for f in story["first"].report.findings["secrets"]}
    after = {f["finding_id"] for f in pushed.report.findings["secrets"]}
    assert after - before == {new[0]["finding_id"]} and before <= after


def test_no_checkout_is_left_on_disk_after_a_run(story):
    assert {label: run.leftovers for label, run in story.items()} == {"first": [], "unchanged": [], "pushed": []}


def test_a_repository_that_cannot_be_cloned_gives_error_rows_and_the_others_still_scan(server, tmp_path, home):
    tables, git = extract(server.write_connections(tmp_path / "connections.yaml"))
    gone = {
        **tables["repositories"][0],
        "repository": "deleted-since-listing",
        "repository_uuid": "{00000000-0000-0000-0000-000000000000}",
    }

    report = scan_repositories(
        [gone, *tables["repositories"]],
        git,
        scanners=[SecretsScanner(), BanditScanner(), ScaScanner()],
        home=data_home(),
    )

    failed = runs_of(report, repository="deleted-since-listing")
    assert [(r["scanner"], r["status"]) for r in failed] == [
        ("secrets", "error"),
        ("bandit", "error"),
        ("sca", "error"),
    ]
    assert all(r["error"].startswith("clone failed:") and "deleted-since-listing" in r["error"] for r in failed)
    others = [r for r in report.scan_runs if r["repository"] != "deleted-since-listing"]
    assert len(others) == 6 and {r["status"] for r in others} == {"ok"}
    assert report.cloned == 2
    assert checkouts_left(home) == []


def test_a_scanner_that_crashes_on_a_batch_gives_error_rows_for_that_scanner_only(server, tmp_path, home):
    tables, git = extract(server.write_connections(tmp_path / "connections.yaml"))

    report = scan_repositories(
        tables["repositories"], git, scanners=[SecretsScanner(), CrashingBandit(), ScaScanner()], home=data_home()
    )

    assert {(r["scanner"], r["status"], r["error"]) for r in report.scan_runs} == {
        ("secrets", "ok", None),
        ("sca", "ok", None),
        ("bandit", "error", "RuntimeError: bandit crashed"),
    }
    assert report.findings["secrets"] and report.findings["sca"]
    # an error is not cached: the next run tries bandit again
    assert not list((home / "cache" / "scan").glob("bandit/*"))
    assert checkouts_left(home) == []


class ScaWhileAnotherRunScans(ScaScanner):
    """SCA whose first batch lets a second run on the same data home scan the same repositories first,
    as two `ox-bb run` started together would interleave."""

    def __init__(self, other_run) -> None:
        super().__init__()
        self.other_run, self.other = other_run, None

    def scan(self, snapshots: list[Snapshot]):
        if self.other is None:
            self.other = self.other_run()
        return super().scan(snapshots)


def test_two_runs_on_one_home_at_once_both_get_every_finding_and_cache_only_complete_results(server, tmp_path, home):
    tables, git = extract(server.write_connections(tmp_path / "connections.yaml"))
    sca = ScaWhileAnotherRunScans(
        lambda: scan_repositories(tables["repositories"], git, scanners=[ScaScanner()], home=data_home())
    )

    first = scan_repositories(tables["repositories"], git, scanners=[sca], home=data_home())

    clean = finding_ids(sca.other)["sca"]
    assert clean and finding_ids(first)["sca"] == clean
    assert first.extra.get("manifest_errors", []) == [] and {r["status"] for r in first.scan_runs} == {"ok"}
    assert sorted(r["name"] for r in first.extra["components"]) == sorted(
        r["name"] for r in sca.other.extra["components"]
    )
    # what either run cached is the complete result
    again = scan_repositories(tables["repositories"], git, scanners=[ScaScanner()], home=data_home())
    assert again.cloned == 0 and finding_ids(again)["sca"] == clean
    assert checkouts_left(home) == []


def test_a_manifest_that_vanishes_during_the_scan_is_an_error_and_is_not_cached(server, tmp_path, home):
    tables, git = extract(server.write_connections(tmp_path / "connections.yaml"))

    class Vanishing(ScaScanner):
        def scan(self, snapshots: list[Snapshot]):
            for snapshot in snapshots:
                for path in snapshot.paths():
                    if path.endswith(("requirements.txt", "package-lock.json", "package.json")):
                        (snapshot.root / path).unlink()
            return super().scan(snapshots)

    report = scan_repositories(tables["repositories"], git, scanners=[Vanishing()], home=data_home())

    assert {r["status"] for r in report.scan_runs} == {"error"}
    assert all("FileNotFoundError" in r["error"] for r in report.scan_runs)
    assert not list((home / "cache" / "scan").glob("sca/*"))


def test_a_checkout_left_by_a_killed_run_is_removed_when_the_next_run_starts(server, tmp_path, home):
    tables, git = extract(server.write_connections(tmp_path / "connections.yaml"))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a run that died: its process is gone, its checkout is not
    stale = home / "cache" / "snapshots" / f"run-{dead.pid}-x1" / "sandbox-token" / WS / PUSHED / "abc"
    old_layout = home / "cache" / "snapshots" / "sandbox-token" / WS / PUSHED / ".incoming"
    for directory in (stale, old_layout):
        directory.mkdir(parents=True)
        (directory / "deploy.env").write_text(f"AWS_ACCESS_KEY_ID={PUSHED_KEY}\n")
    alive = home / "cache" / "snapshots" / f"run-{os.getpid()}-x2"  # a run of a live process is left alone
    alive.mkdir()

    seen = []

    class Looking(SecretsScanner):
        def scan(self, snapshots: list[Snapshot]):
            seen.append(sorted(p.name for p in (home / "cache" / "snapshots").iterdir()))
            return super().scan(snapshots)

    scan_repositories(tables["repositories"], git, scanners=[Looking()], home=data_home())

    # during the scan: the live run's directory and this run's own, nothing else
    assert len(seen[0]) == 2 and alive.name in seen[0] and all(n.startswith(f"run-{os.getpid()}-") for n in seen[0])
    assert not stale.exists() and not old_layout.exists()
    assert sorted(p.name for p in (home / "cache" / "snapshots").iterdir()) == [alive.name]
