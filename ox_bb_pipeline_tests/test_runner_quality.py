"""`ox-bb run` runs the blocking data-quality checks too: a bad row stops that stage, says which
expectation failed, and the reports that depend on it are not written."""

import dagster as dg
import pytest

from ox_bb_pipeline.app.runner import run_warehouse
from ox_bb_pipeline.findings import Finding
from ox_bb_pipeline_tests.warehouse.conftest import NOW, Lake

CONNECTION = "sandbox-token"


@pytest.fixture
def home(isolated_home):
    return isolated_home


def lake_with(home, severity: str) -> None:
    lake = Lake(home)
    web = lake.repository("web", connection=CONNECTION)
    lake.scan(web, "bandit", connection=CONNECTION)
    row = Finding(
        scanner="bandit",
        scanner_version="1",
        rule_id="B105",
        title="hardcoded password",
        category="sast",
        base_severity="high",
        connection=CONNECTION,
        workspace="acme",
        repository_uuid=web["repository_uuid"],
        repository="web",
        anchor="x",
        file_path="x.py",
        scanned_at=NOW,
    ).row()
    lake.add("findings", "bandit", {**row, "base_severity": severity}, connection=CONNECTION)
    lake.write()


def test_the_warehouse_stage_passes_its_checks_and_writes_the_reports(home):
    lake_with(home, "high")

    result = run_warehouse(dg.DagsterInstance.ephemeral(), progress=lambda line: None)

    assert result.success, result.error
    assert (home / "reports" / "compliance.html").exists()
    assert (home / "reports" / "explorer.html").exists()
    assert {"findings_queue", "exports", "compliance_report", "explorer", "workflows"} <= set(result.metadata)


def test_a_failing_mart_check_fails_the_stage_names_the_expectation_and_blocks_the_reports(home):
    lake_with(home, "urgent")
    lines = []

    result = run_warehouse(dg.DagsterInstance.ephemeral(), progress=lines.append)

    assert not result.success
    assert result.error == (
        "data-quality check failed on warehouse/findings: expect_column_values_to_be_in_set(base_severity)"
    )
    assert lines[-1] == f"warehouse FAILED: {result.error}"
    assert (home / "warehouse.duckdb").exists()  # the build ran; what depends on it did not
    assert not (home / "reports" / "compliance.html").exists()
    assert not (home / "reports" / "explorer.html").exists()
    assert not (home / "exports").exists() or not any((home / "exports").iterdir())
