"""The history scanner through the real Dagster scan asset: a connection that enables `history_scan` and
`live_checks` gets a live Bitbucket token deleted from the tip as a `secret_in_history` finding in the lake
(validity active, with the asset's commit counts as metadata), and in the warehouse raised to Critical."""

from __future__ import annotations

import dagster as dg
import duckdb

from ox_bb_pipeline import lake
from ox_bb_pipeline.defs.bitbucket.assets import bitbucket_raw_tables
from ox_bb_pipeline.defs.bitbucket.resources import BitbucketResource
from ox_bb_pipeline.defs.scanning.assets import scan_findings
from ox_bb_pipeline.defs.storage.resources import StorageResource
from ox_bb_pipeline.warehouse import runner
from ox_bb_pipeline_tests.scanners.test_history import _repository, commit

CONNECTION = "sandbox-token"


def test_history_findings_reach_the_lake_and_the_warehouse_with_their_validity(fresh_sandbox, isolated_home, tmp_path):
    ws, repo = _repository(fresh_sandbox)
    live = fresh_sandbox.world.plant_access_token(ws.slug, repo.slug, live=True)
    introduced = commit(repo, tmp_path / "work", {"deploy.env": f"BITBUCKET_TOKEN={live}\n"}, "deploy token")
    commit(repo, tmp_path / "work", {"deploy.env": None}, "remove the token")
    connections = tmp_path / "connections.yaml"
    fresh_sandbox.write_connections(connections, {"history_scan": {"enabled": True}, "live_checks": True})
    resources = {"bitbucket": BitbucketResource(connections_file=str(connections)), "storage": StorageResource()}
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("connections", [CONNECTION])
    assert dg.materialize(
        [bitbucket_raw_tables], partition_key=CONNECTION, instance=instance, resources=resources
    ).success

    result = dg.materialize([scan_findings], partition_key=CONNECTION, instance=instance, resources=resources)

    assert result.success
    rows = [
        r
        for r in lake.read_partition("findings", "git_history", CONNECTION, isolated_home)
        if r["file_path"] == "deploy.env"
    ]
    assert [(r["rule_id"], r["commit"], r["start_line"], r["validity"]) for r in rows] == [
        ("secret_in_history", introduced, 1, "active")
    ]
    history_meta = next(
        e.event_specific_data.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["scanning", "git_history_findings"])
    )
    assert history_meta["commits_scanned"].value >= 2 and history_meta["commits_pending"].value == 0
    assert history_meta["live_checks"].value >= 1
    runs = [
        r
        for r in lake.read_partition(lake.SCANS_ZONE, "scan_runs", CONNECTION, isolated_home)
        if r["scanner"] == "git_history"
    ]
    assert runs and {r["status"] for r in runs} == {"ok"}
    assert live not in str(lake.read_partition("findings", "git_history", CONNECTION, isolated_home)) + str(
        history_meta
    )

    built = runner.build(isolated_home)
    con = duckdb.connect(str(built.path), read_only=True)
    try:
        found = con.execute(
            "SELECT f.rule_id, f.validity, e.final_severity FROM findings AS f JOIN enriched_findings AS e "
            "USING (finding_id) WHERE finding_id = ?",
            [rows[0]["finding_id"]],
        ).fetchall()
    finally:
        con.close()
    assert found == [("secret_in_history", "active", "critical")]
