"""The scanner registry is the one list: every list that names scanners (the scan stage's code scanners,
the lake tables and their Dagster assets, the warehouse inputs and the findings UNION, the expectation
suites and their checks) agrees with it, and a toy scanner added through the registry alone (no other
edit) reaches the lake, its expectation suite and the warehouse `findings` table in a real run: the
real sandbox over HTTP, real git clones, the real Dagster scan asset and check, a real DuckDB build."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from ox_bb_pipeline import lake
from ox_bb_pipeline.config import data_home
from ox_bb_pipeline.definitions import defs
from ox_bb_pipeline.defs.bitbucket.assets import bitbucket_raw_tables
from ox_bb_pipeline.defs.bitbucket.resources import BitbucketResource
from ox_bb_pipeline.defs.quality.checks import (
    scanning_findings_expectations,
    scanning_findings_expectations_check,
)
from ox_bb_pipeline.defs.scanning.assets import FINDING_TABLES, scan_findings, scan_findings_asset
from ox_bb_pipeline.defs.storage.resources import StorageResource
from ox_bb_pipeline.findings import CATEGORIES, Finding
from ox_bb_pipeline.quality.expectations import FINDING_SUITES, finding_suites, suite, validate
from ox_bb_pipeline.quality.frames import lake_frame
from ox_bb_pipeline.scanners import registry
from ox_bb_pipeline.scanners.base import PACKAGE_DIR, ScanOutput
from ox_bb_pipeline.scanners.stage import default_scanners
from ox_bb_pipeline.warehouse import runner
from ox_bb_pipeline.warehouse.project import lake_source_tables
from ox_bb_pipeline.warehouse.settings import load_cwe_families, load_scanner_controls
from ox_bb_pipeline_tests.conftest import TINY
from ox_bb_sandbox.server import SandboxServer

CONNECTION = "sandbox-token"


# -- every derived list agrees with the registry ---------------------------------------------------------
def test_every_list_that_names_scanners_is_the_registry():
    names = registry.names()
    code = [s.name for s in registry.code_scanners()]
    assert set(code) <= set(names) and len(set(names)) == len(names)

    # the scan stage: one instance per code scanner, named and categorised as its entry says
    instances = default_scanners()
    assert [s.name for s in instances] == code
    for instance in instances:
        assert instance.category in registry.get(instance.name).categories
    # lake tables, scan assets (in the definitions) and the warehouse's upstream keys
    assert FINDING_TABLES == registry.finding_tables() == names
    graph = defs().resolve_asset_graph()
    scanning = {k.to_user_string() for k in graph.get_all_asset_keys() if k.path[0] == "scanning"}
    assert {k for k in scanning if k.endswith("_findings")} == {f"scanning/{n}_findings" for n in names}
    # the warehouse: the dbt findings model reads every scanner (var `scanners`), with a lineage edge from each
    assert {k for k in runner.lake_inputs() if k.startswith("findings_")} == {f"findings_{n}" for n in names}
    assert runner.SCANNERS == names
    assert registry.dbt_vars() == {"scanners": list(names)}
    assert {f"findings_{n}" for n in names} <= set(lake_source_tables())
    upstream = {k.to_user_string() for k in graph.get(dg.AssetKey(["warehouse", "findings"])).parent_keys}
    assert {k for k in upstream if k.startswith("scanning/")} == {f"scanning/{n}_findings" for n in names}
    # expectation suites and their blocking checks
    assert [s.name for s in FINDING_SUITES] == [s.name for s in finding_suites()] == [f"findings/{n}" for n in names]
    checked = {k.asset_key.to_user_string() for k in scanning_findings_expectations.check_keys}
    assert checked == {f"scanning/{n}_findings" for n in names}
    # the warehouse's per-scanner settings name registered scanners only (a typo would be ignored silently)
    assert set(load_scanner_controls()) <= set(names)
    assert {key.partition("/")[0] for key in load_cwe_families().rules} <= set(names)
    # each entry's own facts hold
    for entry in registry.scanners():
        assert set(entry.categories) <= set(CATEGORIES), entry.name
        if entry.severity_map:
            assert (PACKAGE_DIR / entry.severity_map).is_file(), entry.name


def test_a_bad_entry_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="lower-case identifier"):
        registry.Scanner("Bad-Name", "code", ("sast",), ".x:Y")
    with pytest.raises(ValueError, match="code scanner needs a factory"):
        registry.Scanner("nofactory", "code", ("sast",))
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.Scanner("bandit", "connection", ("sast",)))
    with pytest.raises(ImportError, match="cannot load its factory '.nothing:Here'"):
        registry.Scanner("ghost", "code", ("sast",), ".nothing:Here").create()
    with pytest.raises(KeyError, match="no scanner 'ghost' in the registry"):
        registry.get("ghost")
    assert registry.names() == FINDING_TABLES  # nothing was left registered


# -- a toy scanner through the registry alone ------------------------------------------------------------
class ToyScanner:
    """Reports each repository's README as a low SAST finding (one per scanned snapshot)."""

    name = "toy"
    category = "sast"

    def version(self) -> str:
        return "toy 1"

    def scan(self, snapshots) -> list[ScanOutput]:
        outputs = []
        for snapshot in snapshots:
            found = [
                Finding.at(
                    snapshot.repo,
                    scanner="toy",
                    scanner_version="toy 1",
                    rule_id="TOY-1",
                    title="a README",
                    category="sast",
                    base_severity="low",
                    anchor=path,
                    file_path=path,
                    start_line=1,
                    end_line=1,
                )
                for path in snapshot.paths()
                if path.lower().startswith("readme")
            ]
            outputs.append(
                ScanOutput(
                    repository_uuid=snapshot.repo.repository_uuid, findings=found, files_scanned=len(snapshot.files)
                )
            )
        return outputs


@pytest.fixture
def toy():
    with registry.registered(
        registry.Scanner("toy", "code", ("sast",), ToyScanner, description="A test scanner.")
    ) as entry:
        yield entry


@pytest.fixture(scope="module")
def tiny_sandbox():
    with SandboxServer(TINY) as server:
        yield server


def test_a_toy_scanner_added_to_the_registry_reaches_the_lake_its_suite_and_the_warehouse(
    toy, tiny_sandbox, isolated_home, tmp_path
):
    connections = tmp_path / "connections.yaml"
    tiny_sandbox.write_connections(connections)
    resources = {"bitbucket": BitbucketResource(connections_file=str(connections)), "storage": StorageResource()}
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("connections", [CONNECTION])
    assert dg.materialize(
        [bitbucket_raw_tables], partition_key=CONNECTION, instance=instance, resources=resources
    ).success

    # The definitions rebuilt from the registry: the scan asset and its check now have the toy scanner.
    scan, check = scan_findings_asset(), scanning_findings_expectations_check()
    assert dg.AssetKey(["scanning", "toy_findings"]) in scan.keys
    assert dg.AssetKey(["scanning", "toy_findings"]) not in scan_findings.keys  # loaded before it existed
    result = dg.materialize([scan, check], partition_key=CONNECTION, instance=instance, resources=resources)
    assert result.success

    # the lake: one finding per repository with a README, in the one finding schema
    rows = lake.read_partition("findings", "toy", CONNECTION, home=data_home())
    repositories = [
        r for r in lake.read_partition("raw", "repositories", CONNECTION, home=data_home()) if r.get("selected")
    ]
    assert rows and {r["repository_uuid"] for r in rows} <= {r["repository_uuid"] for r in repositories}
    assert {(r["scanner"], r["rule_id"], r["base_severity"]) for r in rows} == {("toy", "TOY-1", "low")}
    runs = [
        r
        for r in lake.read_partition(lake.SCANS_ZONE, "scan_runs", CONNECTION, home=data_home())
        if r["scanner"] == "toy"
    ]
    assert {r["status"] for r in runs} == {"ok"} and len(runs) == len(repositories)

    # its expectation suite: run as the blocking check, and it catches a bad row of the toy's table
    evaluation = {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}
    assert evaluation["scanning/toy_findings"].passed
    spec = suite("findings/toy")
    assert validate(spec.name, lake_frame(spec, CONNECTION, home=data_home())).passed
    broken = lake_frame(spec, CONNECTION, home=data_home()).assign(base_severity="urgent")
    assert not validate(spec.name, broken).passed

    # the warehouse: the findings model unions the toy's input with the others
    built = runner.build(isolated_home)
    con = duckdb.connect(str(built.path), read_only=True)
    try:
        in_warehouse = con.execute(
            "SELECT finding_id, rule_id FROM findings WHERE scanner = 'toy' ORDER BY finding_id"
        ).fetchall()
        others = con.execute("SELECT count(DISTINCT scanner) FROM findings WHERE scanner <> 'toy'").fetchone()[0]
    finally:
        con.close()
    assert in_warehouse == sorted((r["finding_id"], "TOY-1") for r in rows)
    assert others >= 1  # the real scanners' findings are still there beside it


def test_no_scanner_input_takes_the_name_of_a_warehouse_model():
    """A scanner's warehouse input is a view named findings_<scanner> in the same schema as the models: a
    scanner named `history` made the view `findings_history`, the append-only mart, and broke the history."""
    from ox_bb_pipeline.warehouse.models import discover

    models = {m.name for m in discover()}
    assert "findings_history" in models
    assert set(registry.warehouse_inputs()) & models == set()
