"""A whole shard in one batch (issue 14: tool start-up out of the hot path): the scan stage checks a shard's
repositories out into a folder of their own and semgrep and checkov each run once, over that folder as their
one target (counted from the scanners' own record of the processes they started); a repository that cannot be
cloned, or whose checkout makes semgrep fail, fails alone, and every other repository keeps its findings.
Also the folding of a batch into its folder (`batch_targets`) and the attribution of paths to snapshots.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from ox_bb_pipeline.config import data_home
from ox_bb_pipeline.findings import RepoRef
from ox_bb_pipeline.scanners.base import BatchRoots, batch_targets
from ox_bb_pipeline.scanners.checkov import CheckovScanner
from ox_bb_pipeline.scanners.semgrep import SemgrepScanner
from ox_bb_pipeline.scanners.snapshot import Snapshot
from ox_bb_pipeline.scanners.stage import ScanStageReport, scan_repositories
from ox_bb_pipeline_tests.conftest import ANCHOR
from ox_bb_sandbox.generator import SandboxSpec
from ox_bb_sandbox.server import SandboxServer

from .conftest import extract

SPEC = SandboxSpec(seed=14, workspaces=1, projects=1, repos=6, branches=0, pull_requests=1, commits=1, anchor=ANCHOR)
GONE = "deleted-since-listing"


class LosingOneCheckout(SemgrepScanner):
    """semgrep, but the checkout of one repository is deleted under it before the tool starts."""

    def __init__(self, victim: str) -> None:
        super().__init__()
        self.victim = victim

    def scan(self, snapshots: list[Snapshot]):
        for snapshot in snapshots:
            if snapshot.repo.repository == self.victim:
                shutil.rmtree(snapshot.root)
        return super().scan(snapshots)


def finding_ids(report: ScanStageReport, scanner: str, repository: str | None = None) -> list[str]:
    return sorted(
        f["finding_id"] for f in report.findings[scanner] if repository is None or f["repository"] == repository
    )


def runs_of(report: ScanStageReport, scanner: str) -> dict[str, tuple[str, str | None]]:
    return {r["repository"]: (r["status"], r["error"]) for r in report.scan_runs if r["scanner"] == scanner}


@pytest.fixture(scope="module")
def shard(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("whole-shard")
    with SandboxServer(SPEC) as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv("OX_BB_HOME", str(root / "home"))
        tables, git = extract(server.write_connections(root / "connections.yaml"))
        rows = [r for r in tables["repositories"] if r.get("selected") and r.get("main_head")]
        gone = {**rows[0], "repository": GONE, "repository_uuid": "{00000000-0000-0000-0000-000000000000}"}
        rows = [*rows[:3], gone, *rows[3:]]  # the repository that cannot be cloned sits inside the batch
        semgrep, checkov = SemgrepScanner(), CheckovScanner()
        whole = scan_repositories(rows, git, scanners=[semgrep, checkov], home=data_home())
        victim = rows[1]["repository"]
        losing = LosingOneCheckout(victim)
        lost = scan_repositories(rows, git, scanners=[losing, CheckovScanner()], home=root / "other-home")
    return {
        "rows": rows,
        "whole": whole,
        "semgrep": semgrep,
        "checkov": checkov,
        "victim": victim,
        "losing": losing,
        "lost": lost,
    }


def test_a_whole_shard_is_one_batch_one_process_per_tool_over_its_own_folder(shard):
    report, repositories = shard["whole"], len(shard["rows"])
    for scanner in (shard["semgrep"], shard["checkov"]):
        assert len(scanner.runs) == 1, scanner.name  # one tool process for the shard
        [targets] = scanner.runs
        # one target: the batch's folder (of its one workspace: <run>/<connection>/batch-0/<workspace>)
        assert len(targets) == 1 and targets[0].parent.name == "batch-0", (scanner.name, targets)
    assert report.cloned == repositories - 1
    # the sandbox plants findings for both tools in these repositories, attributed to the right ones
    assert finding_ids(report, "semgrep") and finding_ids(report, "checkov")
    listed = {r["repository"] for r in shard["rows"]}
    assert {f["repository"] for rows in report.findings.values() for f in rows} <= listed - {GONE}


def test_a_repository_that_cannot_be_cloned_fails_alone_in_the_batch(shard):
    for scanner in ("semgrep", "checkov"):
        runs = runs_of(shard["whole"], scanner)
        status, error = runs.pop(GONE)
        assert status == "error" and error.startswith("clone failed:")
        assert {status for status, _ in runs.values()} == {"ok"}, scanner


def test_a_checkout_that_makes_semgrep_fail_fails_alone_and_the_others_keep_their_findings(shard):
    lost, whole, victim, losing = shard["lost"], shard["whole"], shard["victim"], shard["losing"]
    others = {r["repository"] for r in shard["rows"]} - {victim, GONE}
    semgrep = runs_of(lost, "semgrep")
    status, error = semgrep[victim]
    assert status == "error" and "semgrep failed on the batch" in error and "exit code 2" in error
    assert {semgrep[r][0] for r in others} == {"ok"}
    for repository in others:
        assert finding_ids(lost, "semgrep", repository) == finding_ids(whole, "semgrep", repository), repository
    # the batch was split until the missing checkout was alone: a few more semgrep processes, not one each
    assert 1 < len(losing.runs) <= 2 + 2 * math.ceil(math.log2(len(others) + 1))
    # checkov ran after the checkout was gone: it fails on that repository alone too
    checkov = runs_of(lost, "checkov")
    assert checkov[victim][0] == "error" and "FileNotFoundError" in checkov[victim][1]
    assert {checkov[r][0] for r in others} == {"ok"}


# -- folding a batch into its folder -----------------------------------------------------------------------
def _checkout(root: Path, name: str) -> Path:
    path = root / "ws" / name / "0123abcd"
    (path / "src").mkdir(parents=True)
    (path / "src" / "app.py").write_text("print('hello')\n")
    (root / "ws" / name / ".0123abcd.complete").write_text("{}")  # the stage's marker beside a checkout
    return path


def test_a_folder_holding_only_the_batch_is_its_one_target(tmp_path):
    roots = [_checkout(tmp_path / "batch-0", name) for name in ("api", "web", "infra")]
    (tmp_path / "batch-0" / "ws" / "failed-clone").mkdir()  # an empty folder left by a failed clone

    assert batch_targets(roots) == [tmp_path / "batch-0" / "ws"]
    assert batch_targets(roots[:1]) == roots[:1]


def test_a_folder_holding_more_than_the_batch_gives_the_smallest_folders_that_hold_only_it(tmp_path):
    batch = tmp_path / "batch-0"
    roots = [_checkout(batch, name) for name in ("api", "web")]
    other = _checkout(tmp_path / "elsewhere", "infra")
    extra = _checkout(batch, "not-in-this-batch")
    folders = [batch / "ws" / "api", batch / "ws" / "web"]  # each a checkout and its marker

    assert batch_targets([*roots, other]) == [*folders, tmp_path / "elsewhere"]
    shutil.rmtree(extra.parent)
    (batch / "ws" / "stray.py").write_text("x = 1\n")
    assert batch_targets(roots) == folders  # the stray file would be scanned with their folder
    missing = batch / "ws" / "gone" / "0123abcd"
    assert batch_targets([*roots, missing]) == [*folders, missing]  # for the tool to report


def test_paths_are_attributed_to_the_innermost_root(tmp_path):
    ref = RepoRef("c", "ws", "{u}", "r", "abc")
    outer, inner = tmp_path / "a", tmp_path / "a" / "b"
    roots = BatchRoots([Snapshot(ref, outer), Snapshot(ref, inner)])

    assert roots.owner(str(inner / "x" / "y.py")) == (1, "x/y.py")
    assert roots.owner(str(outer / "z.py")) == (0, "z.py")
    assert roots.owner(str(tmp_path / "c" / "z.py")) is None
    assert roots.owner("") is None


@pytest.mark.parametrize("scanner", [SemgrepScanner, CheckovScanner])
def test_a_tool_that_cannot_start_is_every_repository_of_the_batch_error_and_starts_no_process(scanner, tmp_path):
    snapshots = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "app.py").write_text("print('hello')\n")
        repo = RepoRef("test", "ws", "{" + name + "}", name, "c0ffee")
        snapshots.append(Snapshot(repo=repo, root=tmp_path / name, files=[], skipped=[], bytes_total=0))
    tool = scanner(tools=tmp_path / "no-tools-here")
    outputs = tool.scan(snapshots)
    assert [o.repository_uuid for o in outputs] == ["{one}", "{two}"]
    assert all(o.error and o.error.startswith(f"{tool.name} failed on the batch: ") for o in outputs)
    assert tool.runs == []
