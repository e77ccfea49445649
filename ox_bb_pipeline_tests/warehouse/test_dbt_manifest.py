"""The dbt manifest Dagster's definitions are made from: `dbt parse` into the dbt folder its caller names (the code
location names the storage resource's default home), once per project version and scanner list, never into the
home OX_BB_HOME happens to name."""

from __future__ import annotations

import json

from ox_bb_pipeline.scanners import registry
from ox_bb_pipeline.warehouse.project import manifest_path, project_digest


def test_the_manifest_is_parsed_once_into_the_folder_the_caller_names(tmp_path, monkeypatch):
    monkeypatch.setenv("OX_BB_HOME", str(tmp_path / "env-home"))
    monkeypatch.chdir(tmp_path)  # ./data, the home without OX_BB_HOME, would be here
    scanners = tuple(registry.names())
    dbt_dir = tmp_path / "given" / "dbt"

    manifest = manifest_path(dbt_dir, scanners=scanners)

    digest = project_digest(vars={"scanners": list(scanners)})
    assert manifest == dbt_dir / "manifests" / digest / "manifest.json"
    assert "model.ox_bb_warehouse.findings_queue" in json.loads(manifest.read_text())["nodes"]
    assert [p.name for p in (dbt_dir / "manifests").iterdir()] == [digest]  # no parse scratch folder left
    assert [p.name for p in manifest.parent.iterdir()] == ["manifest.json"]  # dbt's other outputs dropped
    written = manifest.stat().st_mtime_ns
    assert manifest_path(dbt_dir, scanners=scanners) == manifest  # the same version: no second parse
    assert manifest.stat().st_mtime_ns == written
    assert project_digest(vars={"scanners": [*scanners, "toy"]}) != digest  # another scanner list: another one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["given"]


def test_the_code_location_parses_into_the_storage_resources_default_home():
    from ox_bb_pipeline.defs.storage.resources import StorageResource
    from ox_bb_pipeline.defs.warehouse import assets

    assert assets.MANIFEST_DIR == StorageResource().home_path() / "dbt"
    digest = project_digest(vars={"scanners": list(assets.SCANNERS)})
    assert (assets.MANIFEST_DIR / "manifests" / digest / "manifest.json").is_file()
