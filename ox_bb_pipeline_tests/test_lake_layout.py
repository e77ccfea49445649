"""The lake's layout: each zone's glob reads one schema, and an older lake (scan_runs and posture_results
under findings/) is moved to scans/ by the next build, keeping every row."""

from __future__ import annotations

import duckdb

from ox_bb_pipeline import lake
from ox_bb_pipeline.findings import FINDING_SCHEMA
from ox_bb_pipeline.scanners.posture import RESULT_SCHEMA
from ox_bb_pipeline.scanners.stage import SCAN_RUN_SCHEMA
from ox_bb_pipeline.warehouse.runner import build

from .warehouse.conftest import NOW


def _run(connection: str, status: str = "ok") -> dict:
    return {
        "connection": connection,
        "workspace": "acme",
        "repository_uuid": "{r}",
        "repository": "api",
        "scanner": "bandit",
        "status": status,
        "scanned_at": NOW,
    }


def test_an_older_lake_moves_to_scans_and_the_findings_glob_reads_one_schema(isolated_home):
    home = isolated_home
    # as the previous layout wrote them
    lake.write_partition("findings", "scan_runs", "a", [_run("a")], SCAN_RUN_SCHEMA, home=home)
    lake.write_partition("findings", "scan_runs", "b", [_run("b", "error")], SCAN_RUN_SCHEMA, home=home)
    lake.write_partition(
        "findings",
        "posture_results",
        "a",
        [{"workspace": "acme", "check_id": "BB-003", "status": "fail", "checked_at": NOW}],
        RESULT_SCHEMA,
        home=home,
    )
    lake.write_partition(
        "findings",
        "bandit",
        "a",
        [
            {
                "finding_id": "f1",
                "scanner": "bandit",
                "rule_id": "B105",
                "workspace": "acme",
                "repository_uuid": "{r}",
                "repository": "api",
            }
        ],
        FINDING_SCHEMA,
        home=home,
    )
    # a newer run already wrote connection b under scans/: its partition wins over the old one
    lake.write_partition("scans", "scan_runs", "b", [_run("b", "ok")], SCAN_RUN_SCHEMA, home=home)

    build(home, now=NOW)
    root = lake.lake_root(home)
    assert sorted(p.name for p in (root / "findings").iterdir()) == ["bandit"]
    assert sorted(str(p.relative_to(root)) for p in (root / "scans").rglob("*.parquet")) == [
        "scans/posture_results/connection=a/data.parquet",
        "scans/scan_runs/connection=a/data.parquet",
        "scans/scan_runs/connection=b/data.parquet",
    ]
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT connection, status FROM scan_runs ORDER BY 1").fetchall() == [
            ("a", "ok"),
            ("b", "ok"),
        ]
        assert con.execute("SELECT check_id, status FROM posture_results").fetchall() == [("BB-003", "fail")]
        glob = str(root / "findings" / "*" / "*" / "*.parquet")
        assert con.execute(f"SELECT finding_id, rule_id FROM read_parquet('{glob}')").fetchall() == [("f1", "B105")]
    finally:
        con.close()
    assert lake.migrate_layout(home) == []  # nothing left to move: the next run does nothing
