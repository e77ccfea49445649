"""The expectation suites without Dagster: every suite passes on a good frame and fails on a
targeted corruption, naming the expectation and showing examples; the row-count rule; the loaders
read only what a suite needs (the mart suites on a real warehouse build: test_expectations_on_build.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from ox_bb_pipeline import lake as lake_io
from ox_bb_pipeline.bitbucket import tables
from ox_bb_pipeline.quality.expectations import (
    EXAMPLE_WIDTH,
    MAX_EXAMPLES,
    SUITES,
    WAREHOUSE_SUITES,
    row_count_floor,
    suite,
    validate,
)
from ox_bb_pipeline.quality.frames import (
    MissingTableError,
    lake_frame,
    open_warehouse,
)
from ox_bb_pipeline.warehouse.models import discover

DUE = pd.Timestamp("2026-12-01", tz="UTC")


def good_frame(name: str, rows: int = 6) -> pd.DataFrame:
    """A frame that satisfies the suite: unique keys, allowed values (cycled), checks true."""
    spec = suite(name)
    required = dict(spec.required_when)
    data = {}
    for column in spec.columns:
        if column in spec.allowed:
            values = spec.allowed[column]
            data[column] = [values[i % len(values)] for i in range(rows)]
        elif column in spec.true_columns:
            data[column] = [True] * rows
        elif column in required:
            data[column] = [DUE] * rows
        else:
            data[column] = [f"{column}-{i}" for i in range(rows)]
    return pd.DataFrame(data)


def failure(result, expectation: str, column: str | None = None):
    """The one failed expectation of that type (and column), or an assertion naming what failed."""
    matches = [f for f in result.failed if f.expectation == expectation and (column is None or f.column == column)]
    assert matches, f"{expectation} on {column} did not fail:\n{result.summary()}"
    return matches[0]


@pytest.mark.parametrize("name", sorted(SUITES))
def test_every_suite_passes_on_a_good_frame(name):
    result = validate(name, good_frame(name), previous_row_count=6)

    assert result.passed, result.summary()
    assert result.success_percent == 100.0
    assert result.failed == ()


@pytest.mark.parametrize("name", sorted(SUITES))
def test_every_expectation_of_a_suite_fails_on_its_targeted_corruption(name):
    """One frame, one corruption per expectation: a duplicated key (row 2 twice), a missing key
    value (row 3), an unknown value in each allowed column (row 1); each reported with examples."""
    spec = suite(name)
    good = good_frame(name)
    frame = pd.concat([good, good.iloc[[2]]]).reset_index(drop=True).astype(object)
    required = next(c for c in spec.key if c not in spec.nullable)
    frame.loc[3, required] = None
    for column in spec.allowed:
        frame.loc[1, column] = "urgent"

    result = validate(name, frame)

    assert not result.passed and result.success_percent < 100
    unique = "expect_column_values_to_be_unique" if len(spec.key) == 1 else "expect_compound_columns_to_be_unique"
    duplicated = failure(result, unique)
    assert duplicated.unexpected_count == 2
    assert f"{spec.key[0]}={good[spec.key[0]][2]!r}" in duplicated.examples[0]
    missing = failure(result, "expect_column_values_to_not_be_null", required)
    assert missing.unexpected_count == 1 and missing.examples[0].startswith(f"{required}=null")
    for column in spec.allowed:
        unknown = failure(result, "expect_column_values_to_be_in_set", column)
        assert unknown.unexpected_count == 1
        assert unknown.examples[0].startswith(f"{column}='urgent'")
        assert unknown.detail == "allowed: " + ", ".join(spec.allowed[column])


def test_the_allowed_values_follow_the_data_model():
    assert SUITES["findings/secrets"].allowed["base_severity"] == (
        "info",
        "low",
        "medium",
        "high",
        "critical",
    )
    assert SUITES["warehouse/enriched_findings"].allowed["final_severity"] == (
        "info",
        "low",
        "medium",
        "high",
        "critical",
    )
    assert SUITES["warehouse/compliance_report"].allowed["status"] == (
        "pass",
        "fail",
        "not_evaluable",
    )
    assert set(SUITES["warehouse/findings_queue"].allowed["status"]) == {
        "new",
        "open",
        "reopened",
        "resolved",
        "suppressed",
        "excluded",
        "correlated",
    }
    assert set(SUITES["findings/sca"].allowed["category"]) == {
        "secrets",
        "sast",
        "iac",
        "sca",
        "scm_posture",
        "cicd_posture",
        "external",
    }


def test_an_unmapped_finding_fails_and_names_the_finding_and_its_application():
    frame = good_frame("warehouse/findings")
    frame.loc[4, ["application", "application_mapped"]] = ["acme/orphan", False]

    failed = failure(
        validate("warehouse/findings", frame),
        "expect_column_values_to_be_in_set",
        "application_mapped",
    )

    assert failed.unexpected_count == 1
    assert failed.examples == ("finding_id='finding_id-4', application='acme/orphan'",)


def test_an_open_queue_row_needs_an_sla_due_date_but_info_and_resolved_rows_do_not():
    frame = pd.DataFrame(
        {
            "finding_id": ["a", "b", "c", "d"],
            "status": ["open", "resolved", "new", "reopened"],
            "final_severity": ["high", "high", "info", "critical"],
            "sla_due_at": [DUE, None, None, DUE],
        }
    )
    assert validate("warehouse/findings_queue", frame).passed

    frame.loc[3, "sla_due_at"] = None
    failed = failure(
        validate("warehouse/findings_queue", frame),
        "expect_column_values_to_not_be_null",
        "sla_due_at",
    )

    assert failed.unexpected_count == 1
    assert failed.examples == ("sla_due_at=null, finding_id='d', status='reopened'",)
    assert failed.detail == (
        "where status in (new, open, reopened) and final_severity in (low, medium, high, critical)"
    )


def test_a_missing_column_fails_and_says_which():
    frame = good_frame("raw/repositories").rename(columns={"repository_uuid": "uuid"})

    result = validate("raw/repositories", frame)

    assert not result.passed
    assert all("could not evaluate" in f.detail and '"repository_uuid"' in f.detail for f in result.failed)


def test_examples_are_few_and_short():
    frame = good_frame("findings/bandit", rows=40)
    frame["base_severity"] = "x" * 500  # every row wrong, and far too long to show

    failed = failure(validate("findings/bandit", frame), "expect_column_values_to_be_in_set", "base_severity")

    assert failed.unexpected_count == 40
    assert len(failed.examples) == MAX_EXAMPLES
    assert all(len(e) <= EXAMPLE_WIDTH for e in failed.examples)
    assert failed.examples[0] == f"base_severity='{'x' * 38}…, finding_id='finding_id-0', rule_id='rule_id-0'"


def test_an_unknown_table_is_named_with_the_known_ones():
    with pytest.raises(KeyError, match="no expectation suite for table 'raw/nope'.*raw/repositories"):
        validate("raw/nope", pd.DataFrame())


# -- row counts against the previous good run ---------------------------------------------------
def test_the_row_count_floor():
    assert row_count_floor(None) is None  # first run
    assert row_count_floor(0) is None  # nothing to lose
    assert row_count_floor(100) == 50
    assert row_count_floor(101) == 51
    assert row_count_floor(3) == 2
    assert row_count_floor(100, max_drop=0.1) == 90
    assert row_count_floor(100, max_drop=1.0) == 1  # never empty
    with pytest.raises(ValueError, match="max_row_count_drop must be between 0 and 1, not 1.5"):
        row_count_floor(100, max_drop=1.5)


def test_losing_more_than_half_the_rows_fails_half_passes():
    assert validate("raw/repositories", good_frame("raw/repositories", rows=5), previous_row_count=10).passed

    result = validate("raw/repositories", good_frame("raw/repositories", rows=4), previous_row_count=10)

    failed = failure(result, "expect_table_row_count_to_be_between")
    assert failed.detail == "4 rows, expected at least 5 (previous good run: 10)"
    assert result.previous_row_count == 10 and result.row_count == 4


def test_an_empty_table_fails_when_it_had_rows_even_when_any_drop_is_allowed():
    empty = good_frame("findings/secrets").iloc[0:0]

    assert validate("findings/secrets", empty).passed  # no previous run
    result = validate("findings/secrets", empty, previous_row_count=3, max_drop=1.0)

    assert failure(result, "expect_table_row_count_to_be_between").detail.startswith("0 rows, expected at least 1")


def test_tables_that_may_shrink_for_good_reasons_have_no_row_count_guard():
    for name in (
        "raw/extraction_status",
        "warehouse/applications",
    ):  # permissions fixed; apps regrouped
        assert validate(name, good_frame(name).iloc[0:0], previous_row_count=70).passed


# -- loaders ------------------------------------------------------------------------------------
def test_a_lake_frame_reads_only_the_suites_columns(tmp_path):
    spec = suite("raw/pipeline_configs")
    rows = [
        {
            "connection": "c",
            "workspace": "acme",
            "repository_uuid": "{1}",
            "repository": "api",
            "yml": "image: python",
        }
    ]
    lake_io.write_partition("raw", "pipeline_configs", "c", rows, tables.schema("pipeline_configs"), home=tmp_path)

    frame = lake_frame(spec, "c", home=tmp_path)

    assert list(frame.columns) == ["repository_uuid"]
    assert validate(spec.name, frame).passed


def test_a_partition_never_written_is_an_empty_frame(tmp_path):
    frame = lake_frame(suite("findings/sarif"), "nowhere", home=tmp_path)

    assert frame.empty and list(frame.columns) == [
        "finding_id",
        "base_severity",
        "category",
        "rule_id",
    ]
    assert validate("findings/sarif", frame).passed


def test_every_mart_suite_names_a_model_and_columns_of_sql():
    models = {m.name: m for m in discover()}
    for spec in WAREHOUSE_SUITES:
        assert spec.table in models, f"{spec.name}: no sql/{spec.table}.sql"
        computed = set(spec.true_columns)
        missing = [c for c in spec.columns if c not in computed and c not in models[spec.table].columns]
        assert not missing, f"{spec.name}: sql/{spec.table}.sql declares no column {missing}"


def test_a_missing_warehouse_says_to_build_it(tmp_path):
    with pytest.raises(MissingTableError, match="warehouse.duckdb does not exist: materialize the warehouse"):
        open_warehouse(tmp_path)
