"""The data home is configuration: assets, checks, the step IO manager and the report assets write into the
`storage` resource's home, wherever OX_BB_HOME points (issue 13, "resources, not environment globals"): the
warehouse models, its checks, exports and reports included."""

from __future__ import annotations

import dagster as dg

from ox_bb_pipeline import lake
from ox_bb_pipeline.defs.bitbucket.assets import bitbucket_raw_tables
from ox_bb_pipeline.defs.bitbucket.resources import BitbucketResource
from ox_bb_pipeline.defs.quality.checks import (
    bitbucket_raw_expectations,
    scanning_findings_expectations,
    warehouse_expectations,
)
from ox_bb_pipeline.defs.scanning.assets import scan_findings
from ox_bb_pipeline.defs.storage.resources import StorageResource, step_io_manager, step_io_path
from ox_bb_pipeline.defs.warehouse.assets import compliance_report, exports, warehouse_models
from ox_bb_pipeline.defs.warehouse.interchange import cyclonedx, explorer, sarif
from ox_bb_pipeline.defs.warehouse.workflows import workflows
from ox_bb_pipeline_tests.conftest import TINY
from ox_bb_sandbox.server import SandboxServer

CONNECTION = "sandbox-token"


def test_a_run_writes_only_into_the_storage_resources_home_whatever_ox_bb_home_says(tmp_path, monkeypatch):
    elsewhere = tmp_path / "env-home"
    monkeypatch.setenv("OX_BB_HOME", str(elsewhere))
    monkeypatch.chdir(tmp_path)  # ./data, the home without OX_BB_HOME, would be here
    home = tmp_path / "home"
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("connections", [CONNECTION])

    with SandboxServer(TINY) as server:
        connections = server.write_connections(tmp_path / "connections.yaml")
        resources = {
            "bitbucket": BitbucketResource(connections_file=str(connections)),
            "storage": StorageResource(home=str(home)),
            "io_manager": step_io_manager,
        }
        stages = dg.materialize(
            [bitbucket_raw_tables, scan_findings, bitbucket_raw_expectations, scanning_findings_expectations],
            partition_key=CONNECTION,
            instance=instance,
            resources=resources,
        )
        assert stages.success
        warehouse = [warehouse_models, warehouse_expectations, exports, compliance_report]
        reports = dg.materialize(
            [*warehouse, sarif, cyclonedx, explorer, workflows], instance=instance, resources=resources
        )
        assert reports.success

    repositories = lake.read_partition("raw", "repositories", CONNECTION, home)
    assert repositories and lake.read_partition(lake.SCANS_ZONE, "scan_runs", CONNECTION, home)
    assert (home / "cache" / "state" / f"extract-{CONNECTION}.json").is_file()
    assert step_io_path(home).is_dir()  # the shard numbers went through the home (and were removed after)
    checks = [*stages.get_asset_check_evaluations(), *reports.get_asset_check_evaluations()]
    assert checks and all(c.passed for c in checks)
    assert (home / "warehouse.duckdb").is_file() and (home / "dbt" / "target" / "run_results.json").is_file()
    assert {p.name for p in (home / "reports").iterdir()} >= {"explorer.html", "compliance.html", "compliance.csv"}
    assert {"cyclonedx", "sarif", "findings_queue.parquet"} <= {p.name for p in (home / "exports").iterdir()}
    assert list((home / "exports" / "sarif").glob("*.sarif"))
    assert not elsewhere.exists() and not (tmp_path / "data").exists()
