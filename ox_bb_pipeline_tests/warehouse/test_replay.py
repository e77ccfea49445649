"""A night's build replays the statements dbt sent in the last build (warehouse/replay.py) when dbt would send the
same ones: exactly dbt's rows and test outcomes; dbt runs instead after any change of what decides its statements;
a replay that fails keeps the last warehouse and leaves the next build to dbt."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta

import pytest

from ox_bb_pipeline.warehouse import compaction, replay
from ox_bb_pipeline.warehouse.models import SQL_DIR
from ox_bb_pipeline.warehouse.project import DbtError, dbt_home

from .conftest import NOW, Lake


def relations(lake: Lake) -> dict[str, list[tuple]]:
    """Every table and view of the warehouse: its columns and its rows (sorted)."""
    names = [
        r["name"]
        for r in lake.rows(
            "SELECT table_name AS name FROM duckdb_tables() WHERE schema_name = 'main' "
            "UNION ALL SELECT view_name FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal"
        )
    ]
    return {
        name: [tuple(r.values()) for r in lake.rows(f'DESCRIBE "{name}"')]
        + sorted(tuple(map(repr, r.values())) for r in lake.rows(f'SELECT * FROM "{name}"'))
        for name in names
    }


def two_nights(lake: Lake) -> tuple[dict, dict]:
    """A first build and a night after a change (both dbt: the second records the plan of the third)."""
    web, ops = lake.repository("web"), lake.repository("ops")
    gone = lake.finding(web, "semgrep", "sqli", severity="low", file_path="src/q.js", cwe="CWE-89")
    lake.finding(ops, "secrets", "aws-secret-key", severity="critical", file_path="app/settings.py")
    lake.scan(web, "semgrep")
    lake.scan(ops, "secrets")
    first = lake.build()
    lake.tables[("findings", "semgrep", "main")] = [
        r for r in lake.tables[("findings", "semgrep", "main")] if r["finding_id"] != gone
    ]
    lake.finding(web, "semgrep", "xss", severity="medium", file_path="src/view.js", cwe="CWE-79")
    second = lake.build(now=NOW + timedelta(days=1))
    return first, second


def test_a_replayed_night_gives_exactly_the_rows_and_test_outcomes_of_dbt(lake, tmp_path):
    first, second = two_nights(lake)
    assert not first.replayed and not second.replayed
    assert replay.plan_path(dbt_home(lake.home)).is_file()
    lake.finding(lake.repository("ops"), "secrets", "generic-api-key", file_path="app/db.py")
    lake.write()
    before = tmp_path / "before"
    shutil.copytree(lake.home, before)

    replayed = lake.build(now=NOW + timedelta(days=2))
    assert replayed.replayed and "dbt_ready" not in replayed.step_seconds
    rows = relations(lake)

    shutil.rmtree(lake.home)
    shutil.copytree(before, lake.home)  # the same home, path included: the same plan applies
    ran = lake.build(now=NOW + timedelta(days=2), replay=False)
    assert not ran.replayed
    assert relations(lake) == rows
    assert replayed.tests == ran.tests and set(ran.tests.values()) == {"pass"}
    assert replayed.test_models == ran.test_models
    assert [m.name for m in replayed.models] == [m.name for m in ran.models]
    assert replayed.rows == ran.rows
    assert set(replayed.model_seconds) == set(ran.model_seconds)


def test_dbt_runs_when_the_catalog_the_project_or_a_full_refresh_differs_and_records_again(lake, tmp_path):
    two_nights(lake)
    assert lake.build(now=NOW + timedelta(days=2)).replayed
    # a lake table written for the first time: its input is a view over Parquet, no longer an empty table
    lake.posture(lake.repository("web"), "BB-001", "fail")
    assert not lake.build(now=NOW + timedelta(days=3)).replayed
    assert lake.build(now=NOW + timedelta(days=4)).replayed  # the plan recorded by that build
    assert not lake.build(now=NOW + timedelta(days=5), full_refresh=True).replayed
    assert lake.build(now=NOW + timedelta(days=6)).replayed  # a full refresh does not spoil the plan

    project = tmp_path / "sql"
    shutil.copytree(SQL_DIR, project)
    model = project / "models" / "marts" / "remediation_summary.sql"
    model.write_text(model.read_text() + "\n-- changed\n")
    assert not lake.build(now=NOW + timedelta(days=7), sql_dir=project).replayed


@pytest.mark.parametrize("failure", ["statement", "test"])
def test_a_failed_replay_keeps_the_last_warehouse_and_the_next_build_runs_dbt(lake, failure):
    two_nights(lake)
    plan_file = replay.plan_path(dbt_home(lake.home))
    plan = json.loads(plan_file.read_text())
    statements = plan["statements"]
    if failure == "statement":  # e.g. a model's SQL that no longer runs on this database
        index = next(i for i, s in enumerate(statements) if s["node"].endswith(".findings") and "sql" in s)
        statements[index]["sql"] = "SELECT * FROM no_such_relation"
        expected = "findings: Catalog Error"
    else:  # a dbt test whose query finds rows (its severity is error)
        index = next(
            i for i, s in enumerate(statements) if s["node"].startswith("test.") and "should_error" in s.get("sql", "")
        )
        statements[index]["sql"] = "SELECT 2 AS failures, true AS should_warn, true AS should_error"
        expected = "Got 2 results, configured to fail if != 0"
    plan_file.write_text(json.dumps(plan))
    before = relations(lake)

    with pytest.raises(DbtError, match="the previous warehouse is unchanged") as raised:
        lake.build(now=NOW + timedelta(days=2))
    assert expected in str(raised.value)
    assert relations(lake) == before
    assert not plan_file.exists()
    again = lake.build(now=NOW + timedelta(days=2))
    assert not again.replayed and set(again.tests.values()) == {"pass"}


def test_a_replayed_night_compacts_only_when_due_and_the_state_counts_the_builds(lake):
    two_nights(lake)  # dbt builds: dbt's connections vacuum, so each counts as a compaction
    state = compaction.state_path(dbt_home(lake.home))
    assert json.loads(state.read_text())["builds_since"] == 0
    lines = []
    night = lake.build(now=NOW + timedelta(days=2), progress=lines.append)
    assert night.replayed and not night.compacted
    assert json.loads(state.read_text())["builds_since"] == 1
    assert any("compaction: no, due in 6 builds" in line for line in lines)

    asked = lake.build(now=NOW + timedelta(days=3), compact=True, progress=lines.append)
    assert asked.replayed and asked.compacted
    assert json.loads(state.read_text())["builds_since"] == 0
    assert any("compaction: yes, asked for" in line for line in lines)
    assert not list(lake.home.glob(".warehouse.duckdb*"))  # the copy renamed into place, no WAL left beside it


def _node(name: str, *sql: str, thread: int = 1) -> list[dict]:
    """One node's statements as dbt sends them: in a transaction, on a connection closed after the node."""
    return [{"node": name, "thread": thread, "sql": s, "bindings": None} for s in ("BEGIN", *sql, "COMMIT")] + [
        {"node": name, "thread": thread, "op": "close"}
    ]


def _plan(*groups: list[dict], tests: dict[str, str] | None = None) -> replay.Plan:
    statements = [s for group in groups for s in group]
    nodes = {
        s["node"]: {"kind": "test" if s["node"].startswith("test.") else "model", "attached_node": None}
        for s in statements
        if s["node"] != "master"
    }
    for test, attached in (tests or {}).items():
        nodes[test]["attached_node"] = attached
    return replay.Plan(key="k", catalog="c", nodes=nodes, statements=statements)


def test_a_node_starts_only_after_the_nodes_whose_relations_it_reads_or_that_read_its_relation(tmp_path):
    import duckdb

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE TABLE stored AS SELECT 1 AS n")  # an incremental model's table, kept from the last build
    model = "model.p.{}".format
    plan = _plan(
        _node("master", "SELECT 1"),
        # a slow first model: a node that started before it committed would find no relation "a"
        _node(model("a"), 'CREATE TABLE "main"."a" AS SELECT count(*) AS n FROM range(20000000) GROUP BY range % 7'),
        _node(model("reader"), 'CREATE TABLE "main"."reader" AS SELECT sum(n) AS n FROM "main"."stored"'),
        _node(model("v"), 'create view "main"."v" as (SELECT sum(n) AS n FROM "main"."a")'),
        _node(model("b"), 'CREATE TABLE "main"."b" AS SELECT n FROM "main"."v"'),
        _node(model("c"), 'CREATE TABLE "main"."c" AS SELECT 42 AS n'),
        _node(model("stored"), 'INSERT INTO "main"."stored" SELECT n FROM "main"."c"'),
        _node(
            "test.p.b_counts_every_row",
            "select count(*) as failures, count(*) != 0 as should_warn, count(*) != 0 as should_error "
            'from "main"."b" where n <> 20000000',
        ),
        _node("master", "SELECT 2"),
        tests={"test.p.b_counts_every_row": model("b")},
    )

    prefix, groups, suffix = replay._segments(plan)
    assert [s["sql"] for s in prefix if "sql" in s] == ["BEGIN", "SELECT 1", "COMMIT"] and len(suffix) == 4
    names = [node.rsplit(".", 1)[-1] for node, _ in groups]
    follows = {names[i]: {names[j] for j in earlier} for i, earlier in enumerate(replay._follows(groups, plan.nodes))}
    assert follows == {
        "a": set(),
        "reader": set(),
        "v": {"a"},
        "b": {"a", "v"},  # a through the view
        "c": set(),
        "stored": {"reader", "c"},  # it must not change what reader (earlier in dbt's order) read
        "b_counts_every_row": {"b"},
    }

    runs = replay.run(con, plan, lanes=2)
    assert [(r.unique_id.rsplit(".", 1)[-1], r.status) for r in runs] == [
        ("a", "success"),
        ("reader", "success"),
        ("v", "success"),
        ("b", "success"),
        ("c", "success"),
        ("stored", "success"),
        ("b_counts_every_row", "pass"),
    ]
    assert con.execute('SELECT n FROM "reader"').fetchall() == [(1,)]
    assert con.execute('SELECT n FROM "b"').fetchall() == [(20000000,)]
    assert sorted(con.execute('SELECT n FROM "stored"').fetchall()) == [(1,), (42,)]


def test_a_failed_test_starts_nothing_after_it_and_dbts_statements_interleaved_run_one_by_one(tmp_path):
    import duckdb

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    failing = "select 3 as failures, true as should_warn, true as should_error"
    plan = _plan(
        _node("model.p.a", 'CREATE TABLE "main"."a" AS SELECT 1 AS n'),
        _node("test.p.a_fails", failing),
        _node("model.p.b", 'CREATE TABLE "main"."b" AS SELECT n FROM "main"."a"'),
        tests={"test.p.a_fails": "model.p.a"},
    )
    runs = replay.run(con, plan, lanes=1)
    assert [(r.unique_id, r.status) for r in runs] == [("model.p.a", "success"), ("test.p.a_fails", "fail")]
    assert runs[-1].message == "Got 3 results, configured to fail if != 0"
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'b'").fetchone() == (0,)
    # two lanes: b (which reads a, not the test) may run beside the test; the failure is reported all the same
    runs = replay.run(duckdb.connect(str(tmp_path / "w2.duckdb")), plan, lanes=2)
    assert ("test.p.a_fails", "fail") in [(r.unique_id, r.status) for r in runs]
    assert [r.unique_id for r in runs][:2] == ["model.p.a", "test.p.a_fails"]

    # two dbt threads' statements interleaved: no groups, sent in the recorded order
    a, b = (
        _node("model.p.x", 'CREATE TABLE "main"."x" AS SELECT 1 AS n'),
        _node("model.p.y", 'CREATE TABLE "main"."y" AS SELECT 2 AS n', thread=2),
    )
    interleaved = _plan([a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3]])
    assert replay._segments(interleaved)[1] is None
    assert [r.unique_id for r in replay.run(con, interleaved, lanes=2)] == ["model.p.x", "model.p.y"]
    assert con.execute('SELECT n FROM "y"').fetchall() == [(2,)]
