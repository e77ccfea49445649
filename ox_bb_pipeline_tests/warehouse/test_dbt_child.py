"""The dbt child of a build (project.start / dbt_child): started before the copy and its inputs are made, it runs
with the parsed manifest it keeps per project version (no parse per build), yet every build gets its own vars at run
time and a changed model's new SQL; a child that is never run leaves the database alone."""

from __future__ import annotations

import shutil

from ox_bb_pipeline.scanners import registry
from ox_bb_pipeline.warehouse.models import SQL_DIR
from ox_bb_pipeline.warehouse.project import dbt_home, manifest_path, start


def test_builds_reuse_the_parsed_manifest_with_their_own_vars_and_a_changed_model_is_built_anew(lake, tmp_path):
    project = tmp_path / "sql"
    shutil.copytree(SQL_DIR, project)
    probe = project / "models" / "marts" / "zz_probe.sql"
    probe.write_text("SELECT '{{ var(\"memory_limit\") }}' AS memory_limit, 1 AS version\n")
    cache = dbt_home(lake.home) / "parsed"

    lake.build(sql_dir=project, memory_limit="900MB")
    assert lake.rows("SELECT * FROM zz_probe") == [{"memory_limit": "900MB", "version": 1}]
    [parsed] = cache.iterdir()
    written = parsed.stat().st_mtime_ns

    result = lake.build(sql_dir=project, memory_limit="800MB")  # a var the manifest does not hold: no parse
    assert lake.rows("SELECT * FROM zz_probe") == [{"memory_limit": "800MB", "version": 1}]
    assert list(cache.iterdir()) == [parsed] and parsed.stat().st_mtime_ns == written
    assert "zz_probe" in [m.name for m in result.models]
    # tests still name their model (a test that reads two models, the one it is attached to)
    assert result.test_models["equal_rowcount_findings_queue_ref_findings_queue_base_"] == "findings_queue"

    probe.write_text("SELECT '{{ var(\"memory_limit\") }}' AS memory_limit, 2 AS version\n")
    lake.build(sql_dir=project, memory_limit="800MB")
    assert lake.rows("SELECT * FROM zz_probe") == [{"memory_limit": "800MB", "version": 2}]
    assert len(list(cache.iterdir())) == 2  # another project version: another manifest


def test_a_build_uses_the_manifest_the_definitions_load_parsed_into_its_home(lake):
    repo = lake.repository("api")
    fid = lake.finding(repo, "bandit", "B105", file_path="a.py")
    manifest_path(dbt_home(lake.home), scanners=tuple(registry.names()))  # as defs/warehouse/assets.py does
    [parsed] = (dbt_home(lake.home) / "parsed").iterdir()
    written = parsed.stat().st_mtime_ns

    lake.build()

    assert list(parsed.parent.iterdir()) == [parsed] and parsed.stat().st_mtime_ns == written  # loaded, not parsed
    assert lake.rows("SELECT finding_id, status FROM findings_queue") == [{"finding_id": fid, "status": "new"}]


def test_a_child_that_is_never_run_stops_without_opening_its_database(tmp_path):
    database = tmp_path / "never.duckdb"
    dbt_dir = tmp_path / "dbt"
    with start(["build"], vars={"warehouse_path": str(database)}, dbt_dir=dbt_dir) as child:
        pass  # the caller failed while preparing the inputs
    assert child.process.returncode == 3
    assert not database.exists()
    assert not (dbt_dir / "target" / "run_results.json").exists()
