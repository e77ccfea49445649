"""Tool start-up out of the hot path: semgrep and checkov scan a whole batch of repositories in one
process (several targets, several `-d`), and every finding is attributed to its own repository: the
batch's rows are exactly the rows of scanning each repository alone. The times are printed, not judged
(speed belongs to `make bench`)."""

from __future__ import annotations

import dataclasses
import shutil
import time

import pytest

from ox_bb_pipeline.scanners.checkov import CheckovScanner
from ox_bb_pipeline.scanners.semgrep import SemgrepScanner

BATCH = 4  # repositories in the batch: each alone costs one more tool start-up
FOLDED = ("infra", "python-service", "node-web")  # repositories with findings of both tools, Dockerfiles too
FOLDED_PATHS = {"Dockerfile", "docker/bastion/Dockerfile"}
STABLE = ("repository_uuid", "repository", "scanner", "rule_id", "path", "line", "finding_id", "severity")


def rows(outputs) -> list[tuple]:
    return sorted(tuple(str(f.row().get(k)) for k in STABLE) for o in outputs for f in o.findings)


@pytest.mark.parametrize("scanner", [SemgrepScanner, CheckovScanner], ids=["semgrep", "checkov"])
def test_a_batch_attributes_every_finding_to_its_repository_as_scanning_each_alone_does(snapshots, scanner):
    chosen = [snapshots[k] for k in sorted(snapshots)[:BATCH]]

    started = time.perf_counter()
    batched = scanner().scan(chosen)
    batch_seconds = time.perf_counter() - started
    started = time.perf_counter()
    alone = [scanner().scan([snapshot])[0] for snapshot in chosen]
    alone_seconds = time.perf_counter() - started
    print(
        f"{scanner.__name__}: {BATCH} repositories in one process {batch_seconds:.1f}s, "
        f"one process each {alone_seconds:.1f}s"
    )

    assert all(o.error is None for o in batched + alone)
    assert rows(batched) == rows(alone)
    assert rows(batched)  # the sandbox plants findings for both tools in these repositories
    assert [o.repository_uuid for o in batched] == [s.repo.repository_uuid for s in chosen]


@pytest.mark.parametrize("scanner", [SemgrepScanner, CheckovScanner], ids=["semgrep", "checkov"])
def test_a_batch_in_a_folder_of_its_own_is_one_target_with_the_same_rows(snapshots, scanner, tmp_path):
    chosen = [snapshots[k] for k in sorted(snapshots) if k.split("/")[1] in FOLDED]
    assert len({s.repo.workspace for s in chosen}) == 2
    folded = []
    for snapshot in chosen:  # laid out as the scan stage lays out a batch: <batch>/<workspace>/<slug>/<commit>
        root = tmp_path / "batch-0" / snapshot.repo.workspace / snapshot.repo.repository / snapshot.root.name
        shutil.copytree(snapshot.root, root)
        folded.append(dataclasses.replace(snapshot, root=root))

    apart, together = scanner(), scanner()
    outputs = apart.scan(chosen)
    outputs_folded = together.scan(folded)

    assert [len(targets) for targets in apart.runs] == [len(chosen)]  # their folder holds other repositories
    assert together.runs == [[tmp_path / "batch-0"]]  # one target (the chosen ones are in both workspaces)
    assert all(o.error is None for o in outputs + outputs_folded)
    assert rows(outputs_folded) == rows(outputs)
    if scanner is CheckovScanner:  # checkov names a Dockerfile's resources by their path from the `-d` folder
        assert {f.file_path for o in outputs_folded for f in o.findings} & FOLDED_PATHS
