"""Failed runs recorded for analysts: one file per run (recording it again replaces it), the
connection's partition or `_pipeline`, and error texts with tokens masked and cut short."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow.parquet as pq

from ox_bb_pipeline.run_failures import MAX_ERROR_CHARS, failure_path, record_run_failure

WHEN = datetime(2026, 11, 2, 2, 17, tzinfo=UTC)
TOKEN = "ATATT3xFfGF0q7Rb2LpZ9kWm4NcV8sTy"


def record(home, **overrides):
    fields = {
        "run_id": "run-1",
        "job_name": "nightly_scan",
        "connection": "cloud-a",
        "trigger": "nightly_scan_schedule",
        "night": "2026-11-02",
        "failed_steps": ["scan_findings", "bitbucket_raw_tables"],
        "error": f"git refused token {TOKEN} on acme/api.git",
        "failed_at": WHEN,
        "home": home,
    }
    return record_run_failure(**{**fields, **overrides})


def test_a_failure_is_one_file_in_its_connections_partition_with_the_token_masked(tmp_path):
    path = record(tmp_path)

    assert path == failure_path("cloud-a", "run-1", tmp_path)
    [row] = pq.read_table(path).to_pylist()
    assert row["failed_steps"] == ["bitbucket_raw_tables", "scan_findings"]
    assert TOKEN not in row["error"] and row["error"].startswith("git refused token ATAT…")
    assert row["failed_at"] == WHEN


def test_recording_the_same_run_again_replaces_its_record(tmp_path):
    record(tmp_path, error="first")
    record(tmp_path, error="second")

    files = list((tmp_path / "lake" / "ops" / "run_failures").rglob("*.parquet"))
    assert len(files) == 1
    assert pq.read_table(files[0]).to_pylist()[0]["error"] == "second"


def test_a_run_of_no_connection_goes_to_the_pipeline_partition_and_long_errors_are_cut(tmp_path):
    path = record(tmp_path, connection=None, job_name="build_warehouse", error="x " * 5000)

    assert path.parent.name == "connection=_pipeline"
    [row] = pq.read_table(path).to_pylist()
    assert row["connection"] == "_pipeline"
    assert len(row["error"]) <= MAX_ERROR_CHARS + 2
