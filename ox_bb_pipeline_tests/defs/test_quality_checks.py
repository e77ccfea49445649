"""Blocking Great Expectations checks in Dagster: they pass on real extracts and builds, and a
corrupted table (a duplicated repository, bad findings, a bogus queue status, a bad lake row that
reaches a mart, a table that collapsed since the last good run) fails its check, names the
expectation with examples, and keeps that run's downstream assets from materializing."""

import dagster as dg
import duckdb
import pytest

from ox_bb_pipeline import lake
from ox_bb_pipeline.bitbucket import tables
from ox_bb_pipeline.config import data_home
from ox_bb_pipeline.definitions import defs
from ox_bb_pipeline.defs.bitbucket.assets import bitbucket_raw_tables
from ox_bb_pipeline.defs.bitbucket.resources import BitbucketResource
from ox_bb_pipeline.defs.quality.checks import (
    CHECK_NAME,
    bitbucket_raw_expectations,
    previous_row_count,
    scanning_findings_expectations,
    warehouse_expectations,
)
from ox_bb_pipeline.defs.scanning.assets import scan_findings
from ox_bb_pipeline.defs.storage.resources import StorageResource
from ox_bb_pipeline.defs.warehouse.assets import compliance_report, exports, warehouse_models
from ox_bb_pipeline.findings import FINDING_SCHEMA, Finding
from ox_bb_pipeline.quality.expectations import SUITES
from ox_bb_pipeline_tests.conftest import TINY
from ox_bb_pipeline_tests.warehouse.conftest import NOW, Lake
from ox_bb_sandbox.server import SandboxServer

CONNECTION = "sandbox-token"
REPORTS = {"reports/exports", "reports/compliance_report"}


@pytest.fixture(scope="module")
def tiny_sandbox():
    with SandboxServer(TINY) as server:
        yield server


@pytest.fixture
def home(isolated_home):
    return isolated_home


@pytest.fixture
def instance():
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("connections", [CONNECTION])
    return instance


@pytest.fixture
def bitbucket(tiny_sandbox, tmp_path) -> BitbucketResource:
    path = tmp_path / "connections.yaml"
    tiny_sandbox.write_connections(path)
    return BitbucketResource(connections_file=str(path))


def evaluations(result) -> dict[str, dg.AssetCheckEvaluation]:
    found = {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}
    assert all(e.check_name == CHECK_NAME for e in found.values())
    return found


def materialized(result) -> set[str]:
    return {
        e.event_specific_data.materialization.asset_key.to_user_string()
        for e in result.get_asset_materialization_events()
    }


def failed_expectations(evaluation: dg.AssetCheckEvaluation) -> dict[tuple[str, str | None], dict]:
    return {(f["expectation"], f["column"]): f for f in evaluation.metadata["failed_expectations"].value}


def test_every_raw_table_scanner_table_and_mart_has_a_blocking_check():
    graph = defs().resolve_asset_graph()
    keys = {key.asset_key.to_user_string() for key in graph.asset_check_keys if key.name == CHECK_NAME}

    assert keys == (
        {f"bitbucket/{t}" for t in tables.TABLES}
        | {f"scanning/{s.table}_findings" for s in SUITES.values() if s.zone == "findings"}
        | {f"warehouse/{s.table}" for s in SUITES.values() if s.zone == "warehouse"}
    )
    for check in (
        bitbucket_raw_expectations,
        scanning_findings_expectations,
        warehouse_expectations,
    ):
        assert all(spec.blocking for spec in check.check_specs)


# -- raw tables -----------------------------------------------------------------------------------
def test_raw_checks_pass_on_an_extract_and_a_duplicated_repository_blocks_the_scan(home, instance, bitbucket):
    extracted = dg.materialize(
        [bitbucket_raw_tables, bitbucket_raw_expectations],
        partition_key=CONNECTION,
        instance=instance,
        resources={"bitbucket": bitbucket, "storage": StorageResource()},
    )
    assert extracted.success
    checked = evaluations(extracted)
    assert set(checked) == {f"bitbucket/{t}" for t in tables.TABLES}
    assert all(e.passed for e in checked.values())
    assert checked["bitbucket/repositories"].metadata["success_percent"].value == 100.0
    assert checked["bitbucket/repositories"].partition == CONNECTION

    repositories = lake.read_partition("raw", "repositories", CONNECTION, home=data_home())
    lake.write_partition(
        "raw",
        "repositories",
        CONNECTION,
        repositories + repositories[:1],
        tables.schema("repositories"),
        home=data_home(),
    )
    blocked = dg.materialize(
        [bitbucket_raw_tables, bitbucket_raw_expectations, scan_findings],
        partition_key=CONNECTION,
        instance=instance,
        resources={"bitbucket": bitbucket, "storage": StorageResource()},
        selection=dg.AssetSelection.checks_for_assets(bitbucket_raw_tables) | dg.AssetSelection.assets(scan_findings),
        raise_on_error=False,
    )

    assert not blocked.success
    assert not any(key.startswith("scanning/") for key in materialized(blocked))
    checked = evaluations(blocked)
    assert [k for k, e in checked.items() if not e.passed] == ["bitbucket/repositories"]
    duplicated = failed_expectations(checked["bitbucket/repositories"])[
        ("expect_column_values_to_be_unique", "repository_uuid")
    ]
    assert duplicated["unexpected_count"] == 2
    assert duplicated["examples"] == [f"repository_uuid={repositories[0]['repository_uuid']!r}"]
    assert "expect_column_values_to_be_unique" in checked["bitbucket/repositories"].metadata["failures"].value


def test_a_raw_table_that_collapsed_since_the_last_good_run_fails_until_accepted(home, instance, bitbucket):
    assert dg.materialize(
        [bitbucket_raw_tables, bitbucket_raw_expectations],
        partition_key=CONNECTION,
        instance=instance,
        resources={"bitbucket": bitbucket, "storage": StorageResource()},
    ).success
    lake.write_partition("raw", "repositories", CONNECTION, [], tables.schema("repositories"), home=data_home())

    def check_only(**config):
        # Checks alone: the partition travels as a run tag, as in a launched run (dg.materialize's
        # partition_key= needs a partitioned asset in the selection).
        return dg.materialize(
            [bitbucket_raw_tables, bitbucket_raw_expectations],
            tags={"dagster/partition": CONNECTION},
            instance=instance,
            resources={"bitbucket": bitbucket, "storage": StorageResource()},
            raise_on_error=False,
            selection=dg.AssetSelection.checks_for_assets(bitbucket_raw_tables),
            run_config=dg.RunConfig(ops={"bitbucket_raw_expectations": {"config": config}}),
        )

    collapsed = evaluations(check_only())["bitbucket/repositories"]
    assert not collapsed.passed
    assert collapsed.metadata["previous_row_count"].value == 2
    assert collapsed.metadata["row_count"].value == 0
    assert failed_expectations(collapsed)[("expect_table_row_count_to_be_between", None)]["detail"] == (
        "0 rows, expected at least 1 (previous good run: 2)"
    )

    accepted = check_only(compare_row_counts=False)
    assert accepted.success
    assert evaluations(accepted)["bitbucket/repositories"].passed


# -- scanner findings -----------------------------------------------------------------------------
def test_bad_findings_fail_their_check_and_block_the_warehouse(home, instance, bitbucket):
    repo = {
        "connection": CONNECTION,
        "workspace": "acme",
        "repository_uuid": "{r1}",
        "repository": "api",
    }
    rows = [
        Finding(
            scanner="secrets",
            scanner_version="1",
            rule_id=f"rule-{i}",
            title="t",
            category="secrets",
            base_severity="high",
            anchor=f"a{i}",
            file_path=f"f{i}.py",
            **repo,
        ).row()
        for i in range(3)
    ]
    rows[1]["base_severity"] = "urgent"
    rows.append(dict(rows[0]))  # the same fingerprint twice in one partition
    lake.write_partition("findings", "secrets", CONNECTION, rows, FINDING_SCHEMA, home=data_home())

    result = dg.materialize(
        [scan_findings, scanning_findings_expectations, warehouse_models],
        tags={"dagster/partition": CONNECTION},
        instance=instance,
        resources={"bitbucket": bitbucket, "storage": StorageResource()},
        raise_on_error=False,
        selection=dg.AssetSelection.checks_for_assets(scan_findings) | dg.AssetSelection.assets(warehouse_models),
    )

    assert not result.success
    assert materialized(result) == set()
    assert not (home / "warehouse.duckdb").exists()
    checked = evaluations(result)
    assert [k for k, e in checked.items() if not e.passed] == ["scanning/secrets_findings"]
    failures = failed_expectations(checked["scanning/secrets_findings"])
    assert failures[("expect_column_values_to_be_unique", "finding_id")]["examples"] == [
        f"finding_id={rows[0]['finding_id']!r}, rule_id='rule-0'"
    ]
    assert failures[("expect_column_values_to_be_in_set", "base_severity")]["examples"] == [
        f"base_severity='urgent', finding_id={rows[1]['finding_id']!r}, rule_id='rule-1'"
    ]


# -- marts ----------------------------------------------------------------------------------------
WAREHOUSE_RUN = [warehouse_models, exports, compliance_report, warehouse_expectations]


@pytest.fixture
def small_lake(home) -> Lake:
    built = Lake(home)
    api = built.repository("api", connection=CONNECTION)
    built.scan(api, "bandit", "secrets", connection=CONNECTION)
    built.finding(api, "bandit", "B105", file_path="app/config.py", connection=CONNECTION)
    built.finding(api, "secrets", "aws-key", file_path="deploy.sh", severity="critical", connection=CONNECTION)
    return built


def test_mart_checks_pass_and_a_bogus_queue_status_blocks_the_exports(small_lake, home, instance):
    small_lake.write()
    built = dg.materialize(WAREHOUSE_RUN, instance=instance, resources={"storage": StorageResource()})
    assert built.success
    checked = evaluations(built)
    assert set(checked) == {f"warehouse/{s.table}" for s in SUITES.values() if s.zone == "warehouse"}
    assert all(e.passed for e in checked.values())
    assert REPORTS <= materialized(built)

    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        bogus = con.execute(
            "UPDATE findings_queue_base SET status = 'bogus' WHERE base_severity = 'critical' RETURNING finding_id"
        ).fetchone()[0]
    blocked = dg.materialize(
        WAREHOUSE_RUN,
        instance=instance,
        resources={"storage": StorageResource()},
        raise_on_error=False,
        selection=dg.AssetSelection.checks_for_assets(warehouse_models)
        | dg.AssetSelection.assets(exports, compliance_report),
    )

    assert not blocked.success
    assert materialized(blocked) == set()
    checked = evaluations(blocked)
    assert [k for k, e in checked.items() if not e.passed] == ["warehouse/findings_queue"]
    failure = failed_expectations(checked["warehouse/findings_queue"])[("expect_column_values_to_be_in_set", "status")]
    assert failure["examples"] == [f"status='bogus', finding_id={bogus!r}"]
    assert failure["detail"] == "allowed: new, open, reopened, resolved, suppressed, excluded, correlated"


def test_a_bad_lake_row_that_reaches_a_mart_blocks_the_reports_of_that_run(small_lake, instance):
    api = small_lake.repository("web", connection=CONNECTION)
    row = Finding(
        scanner="bandit",
        scanner_version="1",
        rule_id="B999",
        title="t",
        category="sast",
        base_severity="high",
        connection=CONNECTION,
        workspace="acme",
        repository_uuid=api["repository_uuid"],
        repository="web",
        anchor="x",
        file_path="x.py",
        scanned_at=NOW,
    ).row()
    small_lake.add("findings", "bandit", {**row, "base_severity": "urgent"}, connection=CONNECTION)
    small_lake.write()

    result = dg.materialize(
        WAREHOUSE_RUN, instance=instance, resources={"storage": StorageResource()}, raise_on_error=False
    )

    assert not result.success
    assert "warehouse/findings" in materialized(result)  # the build ran; what depends on it did not
    assert not REPORTS & materialized(result)
    checked = evaluations(result)
    failure = failed_expectations(checked["warehouse/findings"])[("expect_column_values_to_be_in_set", "base_severity")]
    assert failure["examples"] == [f"base_severity='urgent', finding_id={row['finding_id']!r}, application='acme/web'"]
    assert not checked["warehouse/findings"].passed


# -- the row-count baseline -----------------------------------------------------------------------
class Rows(dg.Config):
    rows: int
    fail_later: bool = False


def test_the_baseline_is_the_last_successful_run_not_a_failed_one_nor_the_current_one():
    """A run that failed after materializing a collapsed table must not become the next baseline,
    or the collapse would pass unnoticed the second time."""

    @dg.asset(key=["warehouse", "applications"])
    def table(config: Rows) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"dagster/row_count": config.rows})

    @dg.asset(deps=[table])
    def downstream(config: Rows) -> None:
        if config.fail_later:
            raise RuntimeError("a later step failed")

    @dg.asset_check(asset=table)
    def baseline(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        previous = previous_row_count(context, dg.AssetKey(["warehouse", "applications"]))
        return dg.AssetCheckResult(passed=True, metadata={"previous": -1 if previous is None else previous})

    instance = dg.DagsterInstance.ephemeral()

    def run(rows: int, fail_later: bool = False) -> int:
        config = Rows(rows=rows, fail_later=fail_later)
        result = dg.materialize(
            [table, downstream, baseline],
            instance=instance,
            raise_on_error=False,
            run_config=dg.RunConfig(ops={"warehouse__applications": config, "downstream": config}),
        )
        assert result.success != fail_later
        return result.get_asset_check_evaluations()[0].metadata["previous"].value

    assert run(10) == -1  # first run: nothing before it (its own materialization does not count)
    assert run(12) == 10
    assert run(3, fail_later=True) == 12
    assert run(4) == 12  # the failed run's 3 is not a baseline
    assert run(4) == 4
