"""Repository shards of one connection's scan, on a sandbox with real git and real scanners: shards
scanned side by side in forked processes merge to exactly the rows one single-step scan produces, and a
shard that fails marks only its own repositories (an error row per scanner, their last findings kept)
while every other shard's rows stay.
"""

from __future__ import annotations

import pytest

from ox_bb_pipeline.scanners import shards as shardmod
from ox_bb_pipeline.scanners.bandit import BanditScanner
from ox_bb_pipeline.scanners.sca import ScaScanner
from ox_bb_pipeline.scanners.secrets import SecretsScanner
from ox_bb_pipeline.scanners.stage import ScanStageReport, scan_repositories
from ox_bb_pipeline_tests.conftest import ANCHOR
from ox_bb_sandbox.generator import SandboxSpec
from ox_bb_sandbox.server import SandboxServer

from .conftest import extract

SPEC = SandboxSpec(seed=5, workspaces=1, projects=1, repos=6, branches=0, pull_requests=1, commits=1, anchor=ANCHOR)
SHARDS = 3
VOLATILE = {"scanned_at", "duration_seconds"}  # when and how long, not what


def scanners():
    return [SecretsScanner(), BanditScanner(), ScaScanner()]


def rows(report: ScanStageReport, uuids: set[str] | None = None) -> dict[str, list[tuple]]:
    """Every table of a report as sorted rows without the timing columns (optionally some repositories)."""
    tables = {
        **{f"findings:{k}": v for k, v in report.findings.items()},
        "scan_runs": report.scan_runs,
        "repository_files": report.repository_files,
        **{f"extra:{k}": v for k, v in report.extra.items()},
    }
    return {
        name: sorted(
            tuple(sorted((k, repr(v)) for k, v in r.items() if k not in VOLATILE))
            for r in table
            if uuids is None or r.get("repository_uuid") in uuids
        )
        for name, table in tables.items()
    }


def failing_second_shard(index: int) -> ScanStageReport:
    """The per-shard scan, except that shard 1's process fails (module level: the pool pickles it)."""
    if index == 1:
        raise RuntimeError("worker lost")
    return shardmod._scan_one(index)


@pytest.fixture(scope="module")
def scans(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("shards")
    with SandboxServer(SPEC) as server, pytest.MonkeyPatch.context() as patch:
        connections = server.write_connections(root / "connections.yaml")
        patch.setenv("OX_BB_HOME", str(root / "single"))
        tables, git = extract(connections)
        repositories = tables["repositories"]
        single = scan_repositories(repositories, git, scanners=scanners(), home=root / "single")
        parts = shardmod.split(repositories, SHARDS)
        sharded = shardmod.merge(
            shardmod.run_shards(parts, git, workers=2, scanners=scanners(), home=root / "sharded"),
            parts,
            ["secrets", "bandit", "sca"],
        )
        failing = shardmod.run_shards(
            parts, git, workers=2, scan=failing_second_shard, scanners=scanners(), home=root / "failing"
        )
        lost = {r["repository_uuid"] for r in parts[1]}
        partial = shardmod.merge(
            failing, parts, ["secrets", "bandit", "sca"], previous=lambda uuids: _only(single, uuids)
        )
    return {
        "single": single,
        "sharded": sharded,
        "partial": partial,
        "parts": parts,
        "lost": lost,
        "failing": failing,
        "repositories": repositories,
    }


def _only(report: ScanStageReport, uuids: set[str]) -> ScanStageReport:
    return ScanStageReport(
        findings={k: [r for r in v if r["repository_uuid"] in uuids] for k, v in report.findings.items()},
        repository_files=[r for r in report.repository_files if r["repository_uuid"] in uuids],
    )


def test_the_assignment_is_stable_and_puts_each_repository_in_exactly_one_shard(scans):
    parts, repositories = scans["parts"], scans["repositories"]

    assert sorted(r["repository_uuid"] for part in parts for r in part) == sorted(
        r["repository_uuid"] for r in repositories
    )
    assert all(len(part) > 0 for part in parts)  # this sandbox's six repositories fill all three shards
    assert shardmod.split(list(reversed(repositories)), SHARDS) == [list(reversed(p)) for p in parts]
    assert shardmod.shard_of("{0a1b2c3d-0000-4000-8000-000000000001}", 16) == shardmod.shard_of(
        "0A1B2C3D-0000-4000-8000-000000000001", 16
    )  # braces and case do not move a repository


def test_shards_merge_to_exactly_the_rows_of_a_single_step_scan(scans):
    single, sharded = scans["single"], scans["sharded"]

    assert sum(len(v) for v in single.findings.values()) > 0  # the sandbox plants findings
    assert rows(sharded) == rows(single)
    assert (sharded.cloned, sharded.cached_repositories) == (single.cloned, 0)


def test_a_failed_shard_marks_its_repositories_and_keeps_the_others_rows(scans):
    single, partial, lost = scans["single"], scans["partial"], scans["lost"]
    others = {r["repository_uuid"] for r in scans["repositories"]} - lost

    assert [type(r).__name__ for r in scans["failing"]] == ["ScanStageReport", "ShardFailure", "ScanStageReport"]
    assert rows(partial, others) == rows(single, others)
    marked = [r for r in partial.scan_runs if r["repository_uuid"] in lost]
    assert sorted((r["repository_uuid"], r["scanner"]) for r in marked) == sorted(
        (u, s) for u in lost for s in ("secrets", "bandit", "sca")
    )
    assert {(r["status"], r["error"]) for r in marked} == {("error", "shard 1 failed: RuntimeError: worker lost")}
    # the lost repositories' last findings are carried forward: nothing of theirs looks fixed
    assert rows(partial, lost)["findings:secrets"] == rows(single, lost)["findings:secrets"]


def test_the_default_shard_count_grows_with_the_connection(scans):
    assert [shardmod.shard_count(n) for n in (1, 100, 101, 2000, 100_000)] == [1, 1, 2, 20, 64]
    assert shardmod.shard_count(2000, 7) == 7
