"""The incremental findings model (dbt, by repository): a build after a change recomputes only the changed
repositories, and its rows are exactly those of a full build from the same lake."""

from __future__ import annotations

import shutil
from datetime import timedelta

from ox_bb_pipeline.warehouse.runner import build

from .conftest import NOW, Lake

# Every model whose rows depend on the lake and settings only (not on earlier builds' state).
STATELESS = (
    "findings",
    "findings_repository_digests",
    "severity_evidence",
    "finding_severities",
    "enriched_findings",
    "finding_correlations",
    "applications",
    "application_mapping",
    "repositories",
)


def table(lake: Lake, name: str) -> list[tuple]:
    return sorted(tuple(map(repr, row.values())) for row in lake.rows(f'SELECT * FROM "{name}"'))


def test_an_incremental_build_equals_a_full_build_and_rebuilds_only_changed_repositories(lake, tmp_path):
    api, web, ops = (lake.repository(slug) for slug in ("api", "web", "ops"))
    lake.finding(api, "bandit", "B105", file_path="a.py")
    kept = lake.finding(web, "semgrep", "S1", file_path="w.py")
    gone = lake.finding(ops, "secrets", "K1", file_path="k.env", severity="critical")
    lake.finding(api, "bandit", "B106", file_path="b.py", connection="other")
    lake.build()

    # the next night: api gets a new finding, ops's only finding is fixed; web is unchanged
    lake.finding(api, "checkov", "CKV_1", file_path="main.tf")
    lake.tables[("findings", "secrets", "main")] = [
        r for r in lake.tables[("findings", "secrets", "main")] if r["finding_id"] != gone
    ]
    later = NOW + timedelta(days=1)
    incremental = lake.build(now=later)
    reported = {
        row["repository"]
        for row in lake.rows(
            "SELECT repository FROM findings_repository_digests JOIN repositories USING (repository_uuid)"
        )
    }
    assert reported == {"api", "web"}
    assert gone not in {r["finding_id"] for r in lake.rows("SELECT finding_id FROM findings")}
    assert kept in {r["finding_id"] for r in lake.rows("SELECT finding_id FROM findings")}
    assert incremental.rows["findings"] == 4

    full = Lake(tmp_path / "full")
    full.home.mkdir()
    shutil.copytree(lake.home / "lake", full.home / "lake")
    build(full.home, now=later)
    for name in STATELESS:
        assert table(lake, name) == table(full, name), name


def test_a_catalog_change_rebuilds_every_repository(lake):
    api = lake.repository("api")
    lake.finding(api, "bandit", "B105", file_path="vendor/lib/a.py")
    lake.build()
    assert lake.value("SELECT code_context FROM findings") == "vendored"
    settings = lake.small_settings()
    settings = settings.model_copy(
        update={"code_context": [r for r in settings.code_context if r["context"] != "vendored"]}
    )
    lake.build(now=NOW + timedelta(days=1), settings=settings)
    assert lake.value("SELECT code_context FROM findings") is None
