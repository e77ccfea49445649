"""finding_id stays unique through incremental builds, checked at the cost of what a night wrote: the tables written
incrementally group only the keys of the rows the build wrote (unique_incremental; every row on a full refresh),
and the views over them only count their rows against their base table's (equal_rowcount)."""

from __future__ import annotations

import json
from datetime import timedelta

import duckdb
import pytest

from ox_bb_pipeline.warehouse import replay
from ox_bb_pipeline.warehouse.project import DbtError, dbt_home, node_name

from .conftest import NOW, Lake, where, writable

FINDINGS_CHECK = "unique_incremental_findings_finding_id__changed_repositories"


def two_nights(lake: Lake) -> dict[str, str]:
    """api and web, one bandit finding each; the second night web gets another (both nights run dbt: the second
    records the plan a third replays)."""
    api, web = lake.repository("api"), lake.repository("web")
    ids = {"api": lake.finding(api, "bandit", "B105", file_path="a.py")}
    lake.finding(web, "bandit", "B101", file_path="w.py")
    lake.build()
    ids["web"] = lake.finding(web, "bandit", "B311", file_path="r.py")
    lake.build(now=NOW + timedelta(days=1))
    return ids


def night_check(lake: Lake, test: str) -> str:
    """The statement a night sends for the dbt test `test` (the replay plan's; it returns failures, should_warn,
    should_error)."""
    plan = json.loads(replay.plan_path(dbt_home(lake.home)).read_text())
    [sql] = {
        s["sql"]
        for s in plan["statements"]
        if s["node"].startswith("test.") and node_name(s["node"]) == test and "should_error" in (s.get("sql") or "")
    }
    return sql


def failures(con: duckdb.DuckDBPyConnection, check: str) -> int:
    return con.execute(check).fetchone()[0]


@pytest.mark.parametrize("replayed", [True, False], ids=["replayed", "dbt"])
def test_a_rebuilt_repository_reporting_a_finding_id_stored_for_another_fails_the_build(lake, replayed):
    ids = two_nights(lake)
    # web's scan reports api's finding_id (as a scanner that fingerprints without the repository would): web is
    # rebuilt, api's stored row is kept
    rows = {r["finding_id"]: r for r in lake.tables[("findings", "bandit", "main")]}
    lake.add("findings", "bandit", {**rows[ids["api"]], **where(rows[ids["web"]])})
    plan = replay.plan_path(dbt_home(lake.home))
    stored = lake.rows("SELECT finding_id, repository_uuid FROM findings ORDER BY ALL")

    with pytest.raises(DbtError, match=f"{FINDINGS_CHECK}: Got 1 result, configured to fail if != 0"):
        lake.build(now=NOW + timedelta(days=2), replay=replayed)
    assert plan.exists() is not replayed  # a failed replay leaves the next build to dbt
    assert lake.rows("SELECT finding_id, repository_uuid FROM findings ORDER BY ALL") == stored


def test_a_night_checks_the_keys_it_wrote_and_a_full_refresh_checks_every_row(lake):
    ids = two_nights(lake)
    lake.build(now=NOW + timedelta(days=2), full_refresh=True)
    run = dbt_home(lake.home) / "target" / "run" / "ox_bb_warehouse" / "models" / "staging" / "schema.yml"
    full_refresh_check = (run / f"{FINDINGS_CHECK}.sql").read_text()
    con = writable(lake)
    try:
        # a night that rebuilds nothing (the previous digests are this build's), over a stored duplicate: the
        # night trusts the rows earlier nights checked, a full refresh checks them all
        con.execute("CREATE TABLE previous_findings_repository_digests AS FROM findings_repository_digests")
        assert failures(con, night_check(lake, FINDINGS_CHECK)) == 0
        assert failures(con, full_refresh_check) == 0
        con.execute("INSERT INTO findings SELECT * FROM findings WHERE finding_id = ?", [ids["api"]])
        assert failures(con, night_check(lake, FINDINGS_CHECK)) == 0
        assert failures(con, full_refresh_check) == 1
    finally:
        con.close()


def test_the_queue_base_check_finds_a_kept_row_sharing_a_key_with_a_row_the_build_computed(lake):
    ids = two_nights(lake)
    check = night_check(lake, "unique_incremental_findings_queue_base_finding_id__computed_in_this_build")
    con = writable(lake)
    try:
        computed = con.execute(
            "SELECT finding_id FROM findings_queue_base "
            "WHERE computed_in = (SELECT max(build_number) FROM findings_queue_digests)"
        ).fetchall()
        assert (ids["web"],) in computed
        assert failures(con, check) == 0
        con.execute(
            "INSERT INTO findings_queue_base SELECT * REPLACE (computed_in - 1 AS computed_in) "
            "FROM findings_queue_base WHERE finding_id = ?",
            [ids["web"]],
        )
        assert failures(con, check) == 1
    finally:
        con.close()


@pytest.mark.parametrize(
    ("view", "base", "fan_out"),
    [
        # every SLA length twice: each finding joins two of its severity's
        ("findings_queue", "findings_queue_base", "INSERT INTO config_sla SELECT * FROM config_sla"),
        # two inactive_repository evidence rows of one repository: each of its findings joins both
        (
            "finding_severities",
            "finding_severities_base",
            "INSERT INTO severity_evidence BY NAME SELECT 'repository' AS scope, repository_uuid AS subject, "
            "'inactive_repository' AS condition, (400 + i) || ' days' AS evidence "
            "FROM (SELECT repository_uuid FROM repositories WHERE repository = 'web'), range(2) AS t(i)",
        ),
    ],
)
def test_a_view_whose_join_fans_a_row_out_fails_its_row_count_check(lake, view, base, fan_out):
    two_nights(lake)
    check = night_check(lake, f"equal_rowcount_{view}_ref_{base}_")
    con = writable(lake)
    try:
        assert failures(con, check) == 0
        con.execute(fan_out)
        assert con.execute(f"SELECT count(DISTINCT finding_id) < count(*) FROM {view}").fetchone() == (True,)
        assert failures(con, check) == 1
    finally:
        con.close()
