"""The SQL runner: typed inputs over a partial lake, models in dependency order with their headers
checked, column comments, atomic replacement of the warehouse, and de-duplication across connections."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from datetime import timedelta

import duckdb
import pyarrow as pa
import pytest

from ox_bb_pipeline.lake import write_partition
from ox_bb_pipeline.warehouse.models import SQL_DIR, discover
from ox_bb_pipeline.warehouse.project import DbtError
from ox_bb_pipeline.warehouse.runner import build, warehouse_path

from .conftest import NOW


def test_an_empty_lake_builds_every_model_with_typed_empty_tables(lake):
    result = lake.build()
    assert set(result.rows) == {m.name for m in discover() if m.materialized != "view"}  # views are not counted
    assert set(result.rows.values()) == {0}
    assert lake.rows(
        "SELECT data_type FROM duckdb_columns() WHERE table_name = 'findings_queue' "
        "AND column_name IN ('first_seen', 'sla_due_at')"
    ) == [{"data_type": "TIMESTAMP WITH TIME ZONE"}, {"data_type": "TIMESTAMP WITH TIME ZONE"}]


def test_older_partitions_missing_columns_read_as_nulls(lake):
    old_schema = pa.schema(
        [
            ("workspace", pa.string()),
            ("repository_uuid", pa.string()),
            ("repository", pa.string()),
            ("full_name", pa.string()),
            ("is_private", pa.bool_()),
        ]
    )
    write_partition(
        "raw",
        "repositories",
        "legacy",
        [
            {
                "workspace": "acme",
                "repository_uuid": "{1}",
                "repository": "old",
                "full_name": "acme/old",
                "is_private": True,
            }
        ],
        old_schema,
        home=lake.home,
    )
    lake.repository("new")
    lake.build()
    assert lake.rows("SELECT connection, full_name, main_head, selected FROM repositories ORDER BY 2") == [
        {"connection": "main", "full_name": "acme/new", "main_head": "head-new", "selected": True},
        {"connection": "legacy", "full_name": "acme/old", "main_head": None, "selected": True},
    ]


def test_the_same_repository_and_finding_through_two_connections_are_one_row(lake):
    admin = lake.repository("api", connection="admin")
    lake.repository("api", connection="member")
    lake.finding(admin, "bandit", "B105", file_path="a.py", connection="admin")
    lake.finding(admin, "bandit", "B105", file_path="a.py", connection="member")
    lake.build()
    assert lake.value("SELECT count(*) FROM repositories") == 1
    assert lake.value("SELECT count(*) FROM findings") == 1
    assert lake.value("SELECT count(*) FROM findings_queue") == 1


def test_columns_carry_their_documentation_as_comments(lake):
    lake.build()
    assert lake.rows(
        "SELECT comment FROM duckdb_columns() WHERE table_name = 'findings_queue' AND column_name = 'status'"
    ) == [{"comment": "new | open | resolved | reopened | suppressed | excluded | correlated"}]
    assert lake.value("SELECT comment FROM duckdb_views() WHERE view_name = 'findings_queue'").startswith(
        "The unified queue: one row per fingerprint ever seen"
    )


def test_a_failed_build_leaves_the_previous_warehouse_untouched(lake, tmp_path):
    repo = lake.repository("api")
    fid = lake.finding(repo, "bandit", "B105", file_path="a.py")
    lake.build()
    before = warehouse_path(lake.home).read_bytes()
    broken = tmp_path / "sql"
    shutil.copytree(SQL_DIR, broken)
    (broken / "models" / "marts" / "zz_broken.sql").write_text(  # breaks at run time
        "SELECT CAST(finding_id AS INTEGER) AS n FROM {{ ref('findings') }}\n"
    )
    with pytest.raises(DbtError, match=r"zz_broken: Runtime Error in model zz_broken(.|\n)*Could not convert"):
        lake.build(sql_dir=broken)
    assert warehouse_path(lake.home).read_bytes() == before
    assert [p.name for p in lake.home.iterdir() if "building" in p.name] == []
    assert lake.rows("SELECT finding_id, status FROM findings_queue") == [{"finding_id": fid, "status": "new"}]


def test_readers_keep_the_old_warehouse_while_a_build_replaces_it(lake):
    repo = lake.repository("api")
    lake.finding(repo, "bandit", "B105", file_path="a.py")
    lake.build()
    reader = duckdb.connect(str(warehouse_path(lake.home)), read_only=True)
    try:
        lake.finding(repo, "bandit", "B106", file_path="b.py")
        lake.build()
        assert reader.execute("SELECT count(*) FROM findings").fetchone() == (1,)
    finally:
        reader.close()
    assert lake.value("SELECT count(*) FROM findings") == 2


def test_tables_other_code_keeps_in_the_warehouse_survive_a_rebuild(lake):
    lake.build()
    con = duckdb.connect(str(warehouse_path(lake.home)))
    con.execute("CREATE TABLE workflow_actions AS SELECT 'rule-1' AS rule, 'abc' AS finding_id")
    con.close()
    lake.build()
    assert lake.rows("SELECT * FROM workflow_actions") == [{"rule": "rule-1", "finding_id": "abc"}]


def test_now_is_the_injected_clock(lake):
    lake.build(NOW)
    assert lake.rows("SELECT build_id, now FROM build_context") == [{"build_id": "20261102T060000.000000Z", "now": NOW}]


def test_build_uses_the_given_home_only(lake, tmp_path):
    other = tmp_path / "elsewhere"
    result = build(other, now=NOW)
    assert result.path == other / "warehouse.duckdb" and result.path.exists()
    assert not (lake.home / "warehouse.duckdb").exists()


def test_two_builds_at_once_keep_both_builds_history(lake):
    """A second build started while the first one runs waits for it, then builds on its result: neither
    build's `findings_history` rows are lost (without the lock, the later rename dropped the other's)."""
    repo = lake.repository("api")
    first_id = lake.finding(repo, "bandit", "B105", file_path="a.py")
    second: dict = {}
    started = threading.Event()

    def second_build() -> None:
        try:
            second["result"] = build(lake.home, now=NOW + timedelta(hours=1), progress=second_progress)
        finally:
            started.set()

    def second_progress(line: str) -> None:
        if "waiting" in line:
            second["waited"] = line
            started.set()

    def first_progress(line: str) -> None:
        if line.startswith("warehouse  findings:") and "thread" not in second:
            second["finding"] = lake.finding(repo, "bandit", "B106", file_path="b.py")
            lake.write()
            second["thread"] = threading.Thread(target=second_build)
            second["thread"].start()
            assert started.wait(300)  # the second build finished, or waits for this one

    first = lake.build(progress=first_progress)
    second["thread"].join(300)

    assert f"(pid {os.getpid()})" in second["waited"] and str(lake.home) in second["waited"]
    later = second["result"].build_id
    assert sorted(
        tuple(r.values()) for r in lake.rows("SELECT build_id, finding_id, change FROM findings_history")
    ) == sorted([(first.build_id, first_id, "new"), (later, first_id, "open"), (later, second["finding"], "new")])
    assert [p.name for p in lake.home.iterdir() if "building" in p.name] == []


def test_a_build_removes_the_files_left_by_a_killed_build(lake):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = lake.home / f".warehouse.duckdb.{dead.pid}.building"
    lake.home.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"half a database")
    stale.with_name(stale.name + ".wal").write_bytes(b"wal")
    live = lake.home / f".warehouse.duckdb.{os.getppid()}.building"  # a live process's build is left alone
    live.write_bytes(b"in progress")
    killed = lake.home / ".warehouse.duckdb.current.building"  # today's name: only the lock's holder uses it
    killed.write_bytes(b"half a database")
    killed.with_name(killed.name + ".wal").write_bytes(b"wal")

    lake.build()

    assert sorted(p.name for p in lake.home.iterdir() if "building" in p.name) == [live.name]


def _input_schemas() -> dict[str, pa.Schema]:
    from ox_bb_pipeline.warehouse import pipelines
    from ox_bb_pipeline.warehouse.decisions import DECISION_SCHEMA
    from ox_bb_pipeline.warehouse.runner import CONFIG_SCHEMAS, lake_inputs
    from ox_bb_pipeline.warehouse.triage import TRIAGE_SCHEMA

    schemas = {name: schema for name, (_, _, schema) in lake_inputs().items()} | CONFIG_SCHEMAS
    return schemas | {
        "pipeline_definitions": pipelines.SCHEMA,
        "workflow_decisions": DECISION_SCHEMA,
        "triage_decisions": TRIAGE_SCHEMA,
    }


@pytest.mark.parametrize("name", sorted(_input_schemas()))
def test_inputs_made_without_arrow_have_the_types_duckdb_reads_from_arrow(name):
    # the runner types empty inputs and rows from the schemas by runner.duckdb_type, not through Arrow tables
    from ox_bb_pipeline.warehouse.runner import create_table

    schema = _input_schemas()[name]
    con = duckdb.connect()
    con.register("arrow", schema.empty_table())
    create_table(con, "direct", [], schema)
    assert con.execute("DESCRIBE direct").fetchall() == con.execute("DESCRIBE arrow").fetchall()


def test_rows_as_dicts_give_the_table_arrow_gives():
    from datetime import UTC, date, datetime

    from ox_bb_pipeline.warehouse.runner import CONFIG_SCHEMAS, create_table

    schema = pa.schema(
        [
            *CONFIG_SCHEMAS["config_severity_factors"],
            ("owners", pa.list_(pa.string())),
            ("expires", pa.date32()),
            ("now", pa.timestamp("us", tz="UTC")),
            ("naive", pa.timestamp("us", tz="UTC")),
            ("score", pa.float64()),
        ]
    )
    rows = [
        {
            "factor_order": 1,
            "name": "it's",
            "applies_to": [{"category": "sast", "exploitable_only": True}, {"category": None}],
            "except_when": [],
            "owners": ["a", None, "ü"],
            "expires": date(2026, 1, 31),
            "now": datetime(2026, 12, 5, 3, 4, 5, 678901, tzinfo=UTC),
            "naive": datetime(2026, 12, 5, 3, 4, 5),
            "score": 0.1,
            "ignored": "a key the schema lacks",
        },
        {"name": None, "applies_to": None, "except_when": None, "owners": []},
        {},
    ]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("arrow", pa.Table.from_pylist(rows, schema=schema))
    create_table(con, "direct", rows, schema)
    assert con.execute("DESCRIBE direct").fetchall() == con.execute("DESCRIBE arrow").fetchall()
    assert con.execute("SELECT count(*) FROM direct").fetchone() == (3,)
    assert con.execute("SELECT count(*) FROM (FROM direct EXCEPT ALL FROM arrow)").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM (FROM arrow EXCEPT ALL FROM direct)").fetchone() == (0,)


def test_the_posture_catalog_rows_are_those_of_its_table():
    from ox_bb_pipeline.scanners.posture import catalog_table
    from ox_bb_pipeline.warehouse.runner import posture_check_rows

    assert posture_check_rows() == catalog_table().to_pylist()
