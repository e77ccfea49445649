"""The `advisories/osv` asset: it syncs from the configured mirror and says what it holds (records per
ecosystem, age, source); the scan assets depend on it; a daily schedule runs it."""

from __future__ import annotations

import dagster as dg

from ox_bb_pipeline.definitions import defs
from ox_bb_pipeline.defs.advisories.assets import advisories_schedule, osv
from ox_bb_pipeline.defs.storage.resources import StorageResource


def test_the_asset_syncs_from_the_mirror_with_its_metadata(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("OX_BB_HOME", str(tmp_path / "env-home"))  # the storage resource's home wins
    for name, value in sandbox.advisory_settings().items():
        monkeypatch.setenv(name, value)
    result = dg.materialize(
        [osv],
        instance=dg.DagsterInstance.ephemeral(),
        resources={"storage": StorageResource(home=str(tmp_path / "home"))},
    )
    assert result.success
    [materialization] = result.asset_materializations_for_node("advisories__osv")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert meta["records"] == {
        "PyPI": 9,
        "npm": 4,
        "Maven": 4,
        "Go": 3,
        "RubyGems": 1,
        "crates.io": 1,
        "NuGet": 0,
        "Packagist": 0,
    }
    assert meta["source"] == f"{sandbox.base_url}/osv"
    assert (meta["known_exploited_feed"], meta["epss_feed"], meta["warnings"]) == (True, True, [])
    assert 0 <= meta["age_days"] < 1 and len(meta["digest"]) == 12
    assert (tmp_path / "home" / "advisories" / "index.sqlite").is_file()
    assert not (tmp_path / "env-home").exists()


def test_the_scan_assets_are_downstream_and_a_schedule_runs_it_daily():
    graph = defs().resolve_asset_graph()
    sca = graph.get(dg.AssetKey(["scanning", "sca_findings"]))
    assert dg.AssetKey(["advisories", "osv"]) in sca.parent_keys
    assert graph.get(dg.AssetKey(["advisories", "osv"])).group_name == "advisories"
    assert (advisories_schedule.cron_schedule, advisories_schedule.job_name) == ("0 1 * * *", "advisories_sync")
