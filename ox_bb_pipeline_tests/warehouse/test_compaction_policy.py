"""When a build compacts (warehouse/compaction.py): the decision from the recorded state, the state each build
leaves, and the DuckDB behaviour the policy rests on (a checkpoint vacuums deleted rows only with max_vacuum_tasks
above 0). No warehouse build: a small DuckDB file."""

from __future__ import annotations

import json

import duckdb
import pytest

from ox_bb_pipeline.warehouse import compaction


def write_state(tmp_path, since, dead):
    compaction.state_path(tmp_path).write_text(json.dumps({"builds_since": since, "dead_share": dead}))


def test_without_a_readable_state_a_build_compacts(tmp_path):
    assert compaction.decide(tmp_path).compact
    compaction.state_path(tmp_path).write_text("{not json")
    decision = compaction.decide(tmp_path)
    assert decision.compact and decision.reason == "no compaction recorded"


@pytest.mark.parametrize(
    ("since", "dead", "compact", "reason"),
    [
        (0, {}, False, "due in 6 builds"),
        (5, {"findings": 0.05}, False, "due in 1 builds"),
        (6, {}, True, "6 builds since the last compaction"),
        (2, {"findings_queue_base": 0.2, "findings": 0.01}, True, "20% of findings_queue_base's stored rows"),
        (2, {"findings_queue_base": 0.149}, False, "due in 4 builds"),
    ],
)
def test_a_build_compacts_every_seventh_build_or_when_a_table_holds_many_deleted_rows(
    tmp_path, since, dead, compact, reason
):
    write_state(tmp_path, since, dead)
    decision = compaction.decide(tmp_path)
    assert decision.compact is compact
    assert decision.reason.startswith(reason)


def test_asking_decides_whatever_the_state(tmp_path):
    write_state(tmp_path, 6, {"findings": 0.9})
    assert not compaction.decide(tmp_path, force=False).compact
    write_state(tmp_path, 0, {})
    assert compaction.decide(tmp_path, force=True).compact


def test_the_state_counts_builds_since_the_last_compaction(tmp_path):
    compaction.record(tmp_path, compacted=False, dead={"findings": 0.01})  # no state before: one build without
    assert json.loads(compaction.state_path(tmp_path).read_text()) == {
        "builds_since": 1,
        "dead_share": {"findings": 0.01},
    }
    compaction.record(tmp_path, compacted=False, dead={"findings": 0.02})
    assert json.loads(compaction.state_path(tmp_path).read_text())["builds_since"] == 2
    compaction.record(tmp_path, compacted=True, dead={"findings": 0.0})
    assert json.loads(compaction.state_path(tmp_path).read_text())["builds_since"] == 0
    assert [p.name for p in tmp_path.iterdir()] == [compaction.STATE_FILE]  # no scratch file left


def _table_with_deleted_rows(path, vacuum_tasks: int) -> duckdb.DuckDBPyConnection:
    """Four row groups; half of the rows deleted, spread over all of them, and a night's rows appended."""
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t AS SELECT i, 'finding-' || i AS finding_id FROM range(4 * 122880) r(i)")
    con.execute("CHECKPOINT")
    con.execute(f"SET max_vacuum_tasks = {vacuum_tasks}")
    con.execute("DELETE FROM t WHERE i % 2 = 0")
    con.execute("INSERT INTO t SELECT i, 'finding-' || i FROM range(10000) r(i)")
    con.execute("CHECKPOINT")
    return con


def test_a_checkpoint_without_vacuum_tasks_keeps_deleted_rows_and_one_with_them_drops_them(tmp_path):
    kept = _table_with_deleted_rows(tmp_path / "kept.duckdb", 0)
    live = kept.execute("SELECT count(*) FROM t").fetchone()[0]
    assert live == 4 * 122880 // 2 + 10000
    shares = compaction.dead_shares(kept, {"t": live})
    assert shares["t"] == pytest.approx(0.49, abs=0.01)  # deleted rows still stored

    vacuumed = _table_with_deleted_rows(tmp_path / "vacuumed.duckdb", compaction.VACUUM_TASKS)
    assert compaction.dead_shares(vacuumed, {"t": live}).get("t", 0.0) < 0.1


def test_only_tables_of_more_than_one_row_group_and_counted_are_reported(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE TABLE small AS SELECT * FROM range(1000)")
    con.execute("CREATE TABLE big AS SELECT * FROM range(200000)")
    con.execute("CREATE TABLE uncounted AS SELECT * FROM range(200000)")
    assert compaction.dead_shares(con, {"small": 1000, "big": 200000}) == {"big": 0.0}
