"""`ox-bb query` reads the warehouse and the lake, and nothing else: no file outside the lake is read or
listed, no file is written (not even into the lake), and each refusal says so in one line."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ox_bb_pipeline.app.warehouse_cli import QueryRefused, query, query_command
from ox_bb_pipeline.lake import lake_root, partition_path


@pytest.fixture
def built(lake):
    repo = lake.repository("api")
    lake.finding(repo, "bandit", "B105", file_path="a.py")
    lake.build()
    return lake


def test_selects_over_the_warehouse_and_the_lake_still_work(built):
    assert query("SELECT count(*) AS n FROM findings", "csv", home=built.home) == "n\n1\n"
    # the input views read the lake's Parquet
    assert query("SELECT count(*) AS n FROM findings_bandit", "csv", home=built.home) == "n\n1\n"
    parquet = partition_path("findings", "bandit", "main", built.home)
    assert query(f"SELECT count(*) AS n FROM read_parquet('{parquet}')", "csv", home=built.home) == "n\n1\n"
    assert query("WITH q AS (FROM findings_queue) SELECT status FROM q", "csv", home=built.home) == "status\nnew\n"
    assert query("DESCRIBE findings", "csv", home=built.home).startswith("column_name,")


def test_copy_to_a_lake_partition_is_refused_and_the_partition_is_untouched(built):
    parquet = partition_path("findings", "bandit", "main", built.home)
    before = parquet.read_bytes()
    for sql in (
        f"COPY (SELECT * FROM findings_bandit WHERE false) TO '{parquet}' (FORMAT parquet)",
        f"SELECT 1; COPY findings TO '{built.home / 'out.csv'}'",
        f"EXPORT DATABASE '{built.home / 'dump'}'",
        f"ATTACH '{built.home / 'other.duckdb'}' AS other",
        "SET enable_external_access = true",
        "INSTALL httpfs",
    ):
        with pytest.raises(QueryRefused, match="read-only: only SELECT"):
            query(sql, home=built.home)
    assert parquet.read_bytes() == before
    assert not (built.home / "out.csv").exists() and not (built.home / "dump").exists()


@pytest.mark.parametrize(
    "reader",
    [
        "read_csv('/etc/passwd')",
        "read_text('{home}/connections.env')",
        "glob('/root/*')",
        "read_blob('{lake}/../connections.env')",
        "read_csv('{home}/connections.env', header=false)",
    ],
)
def test_files_outside_the_lake_cannot_be_read_or_listed(built, reader):
    (built.home / "connections.env").write_text("OX_BB_TOKEN=ATATT3xFfGF0-secret\n")
    sql = "SELECT * FROM " + reader.format(home=built.home, lake=lake_root(built.home))
    with pytest.raises(QueryRefused, match="reads only the warehouse and the lake"):
        query(sql, home=built.home)


def test_the_command_prints_one_line_for_a_refusal(built):
    runner = CliRunner()
    result = runner.invoke(query_command, ["SELECT * FROM read_csv('/etc/passwd')"])
    assert result.exit_code == 1 and "root:" not in result.output
    assert "reads only the warehouse and the lake" in result.output and "Traceback" not in result.output
    result = runner.invoke(query_command, [f"COPY findings TO '{built.home / 'x.csv'}'"])
    assert result.exit_code == 1 and "read-only: only SELECT" in result.output
    assert not (built.home / "x.csv").exists()
