"""The scan as Dagster steps: one `scan_shard` step per repository shard (what lets Celery workers share one
connection), merged into the connection's partitions; the lake is the same whatever the number of shards,
and `ox-bb run`'s single step with a local process pool writes it too."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml

from ox_bb_pipeline import lake
from ox_bb_pipeline.clock import ManualClock
from ox_bb_pipeline.defs.scanning.assets import FINDING_TABLES
from ox_bb_pipeline_tests.conftest import ANCHOR, TINY
from ox_bb_sandbox.server import SandboxServer

NAME = "sandbox-token"
# Two whole extract + scan runs in the module fixture: minutes on a busy 2-core machine (as the nightly test).
pytestmark = pytest.mark.timeout(1200)


def lake_rows(home: Path) -> dict[str, list]:
    tables = {
        t: sorted(r["finding_id"] for r in lake.read_partition("findings", t, NAME, home)) for t in FINDING_TABLES
    }
    tables["scan_runs"] = sorted(
        (r["repository"], r["scanner"], r["status"], r["findings"])
        for r in lake.read_partition("findings", "scan_runs", NAME, home)
    )
    tables["repository_files"] = sorted(
        (r["repository"], r["path"]) for r in lake.read_partition("inventory", "repository_files", NAME, home)
    )
    return tables


def scan(server, root: Path, shards: int | None, patch) -> tuple[dg.ExecuteInProcessResult, Path]:
    home = root / f"home-{shards}"
    path = server.write_connections(root / f"connections-{shards}.yaml")
    document = yaml.safe_load(path.read_text())
    for connection in document["connections"]:
        connection["scan_shards"] = shards
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    patch.setenv("OX_BB_HOME", str(home))
    patch.setenv("OX_BB_CONNECTIONS", str(path))
    from ox_bb_pipeline.definitions import defs

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("connections", [NAME])
        result = (
            defs()
            .resolve_job_def("nightly_scan")
            .execute_in_process(instance=instance, partition_key=NAME, raise_on_error=False)
        )
    return result, home


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("scan-steps")
    with SandboxServer(TINY, clock=ManualClock(ANCHOR)) as server, pytest.MonkeyPatch.context() as patch:
        return {shards: scan(server, root, shards, patch) for shards in (None, 3)}


def failures(result: dg.ExecuteInProcessResult) -> list[str]:
    return [
        f"{e.step_key}: {e.event_specific_data.error.message}"
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.STEP_FAILURE
    ]


def scan_steps(result: dg.ExecuteInProcessResult) -> list[str]:
    return sorted(
        {
            e.step_key
            for e in result.all_events
            if e.event_type == dg.DagsterEventType.STEP_SUCCESS and ".scan_shard[" in (e.step_key or "")
        }
    )


def test_each_shard_is_a_step_of_its_own(runs):
    (single, _), (sharded, _) = runs[None], runs[3]

    assert single.success and sharded.success, failures(single) + failures(sharded)
    assert scan_steps(single) == ["scan_findings.scan_shard[shard_0]"]
    assert scan_steps(sharded) == [f"scan_findings.scan_shard[shard_{i}]" for i in range(3)]


def test_the_merged_partitions_equal_a_single_shard_scan_and_no_staging_is_left(runs):
    (_, single_home), (_, sharded_home) = runs[None], runs[3]

    assert sum(len(v) for k, v in lake_rows(single_home).items() if k in FINDING_TABLES) > 0
    assert lake_rows(sharded_home) == lake_rows(single_home)
    assert not (sharded_home / "staging" / "scan").exists() or not any((sharded_home / "staging" / "scan").iterdir())
