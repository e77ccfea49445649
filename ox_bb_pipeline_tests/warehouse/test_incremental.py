"""The incremental findings model (dbt, by repository): a build after a change recomputes only the changed
repositories, and its rows are exactly those of a full build from the same lake."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import duckdb
import pytest

from ox_bb_pipeline.warehouse.models import dbt_models
from ox_bb_pipeline.warehouse.runner import build
from ox_bb_pipeline.warehouse.settings import load_settings
from ox_bb_pipeline.warehouse.triage import record_triage

from .conftest import NOW, Lake

# Every model whose rows depend on the lake and settings only (not on earlier builds' state).
STATELESS = (
    "findings",
    "findings_partition_digests",
    "findings_repository_digests",
    "severity_evidence",
    "finding_severity_digests",
    "finding_severities_base",
    "finding_severities",
    "enriched_findings",
    "finding_correlations",
    "applications",
    "application_mapping",
    "repositories",
)


# Base tables whose rows also say when they were computed (a kept row differs there from a recomputed one, its view
# does not): compared through the views that read them (findings_queue).
STORED_AS_COMPUTED = ("findings_queue_base",)


def table(lake: Lake, name: str) -> list[tuple]:
    return sorted(tuple(map(repr, row.values())) for row in lake.rows(f'SELECT * FROM "{name}"'))


def test_an_incremental_build_equals_a_full_build_and_rebuilds_only_changed_repositories(lake, tmp_path):
    api, web, ops = (lake.repository(slug) for slug in ("api", "web", "ops"))
    lake.finding(api, "bandit", "B105", file_path="a.py")
    kept = lake.finding(web, "semgrep", "S1", file_path="w.py")
    gone = lake.finding(ops, "secrets", "K1", file_path="k.env", severity="critical")
    lake.finding(api, "bandit", "B106", file_path="b.py", connection="other")
    lake.build()

    # the next night: api gets a new finding, ops's only finding is fixed; web is unchanged
    lake.finding(api, "checkov", "CKV_1", file_path="main.tf")
    lake.tables[("findings", "secrets", "main")] = [
        r for r in lake.tables[("findings", "secrets", "main")] if r["finding_id"] != gone
    ]
    later = NOW + timedelta(days=1)
    incremental = lake.build(now=later)
    reported = {
        row["repository"]
        for row in lake.rows(
            "SELECT repository FROM findings_repository_digests JOIN repositories USING (repository_uuid)"
        )
    }
    assert reported == {"api", "web"}
    assert gone not in {r["finding_id"] for r in lake.rows("SELECT finding_id FROM findings")}
    assert kept in {r["finding_id"] for r in lake.rows("SELECT finding_id FROM findings")}
    assert incremental.rows["findings"] == 4

    full = Lake(tmp_path / "full")
    full.home.mkdir()
    shutil.copytree(lake.home / "lake", full.home / "lake")
    build(full.home, now=later)
    for name in STATELESS:
        assert table(lake, name) == table(full, name), name


def test_a_catalog_change_rebuilds_every_repository(lake):
    api = lake.repository("api")
    lake.finding(api, "bandit", "B105", file_path="vendor/lib/a.py")
    lake.build()
    assert lake.value("SELECT code_context FROM findings") == "vendored"
    settings = lake.small_settings()
    settings = settings.model_copy(
        update={"code_context": [r for r in settings.code_context if r["context"] != "vendored"]}
    )
    lake.build(now=NOW + timedelta(days=1), settings=settings)
    assert lake.value("SELECT code_context FROM findings") is None


def test_incremental_builds_give_the_rows_of_full_builds_after_a_change_and_a_day_later(lake, tmp_path):
    """Every model, the time-dependent ones included: the night after one repository's findings changed, and two
    nights after that with no change in the lake (the inactive repository's "N days", ages and SLA states moved on;
    a suppression and a triage decision expired on the second; nothing moved on the third), an incremental build
    gives exactly the rows of a build that computes every row (--full-refresh) from the same warehouse and lake at
    the same `now`."""
    dusty = lake.repository("dusty", changed_days_ago=400)  # inactive: its severity evidence changes daily
    web, ops = lake.repository("web", private=False), lake.repository("ops")
    lowered = lake.finding(dusty, "bandit", "B105", severity="high", file_path="app.py")
    lake.finding(
        dusty,
        "sca",
        "GHSA-1",
        file_path="requirements.txt",
        package="requests",
        version="2.0.0",
        fixed_version="2.32.0",
    )
    fixed = lake.finding(web, "semgrep", "sqli", severity="low", file_path="src/q.js", cwe="CWE-89")
    lake.finding(web, "bandit", "B608", file_path="src/q.py", cwe="CWE-89")
    accepted = lake.finding(ops, "secrets", "aws-secret-key", severity="critical", file_path="app/settings.py")
    lake.finding(ops, "bandit", "B101", severity="low", file_path="tests/test_app.py")
    for repo in (dusty, web, ops):
        lake.scan(repo, "secrets", "bandit", "semgrep", "sca")
    lake.config(  # holds the first night, not the second: every finding it matches reopens then
        "suppressions.yaml",
        """
        suppressions:
          - rule_id: B101
            path: "tests/*"
            repository: "*"
            reason: asserts are fine in tests
            owner: security-team
            expires: 2026-11-03
        """,
    )
    lake.build()
    # a triage decision that holds the first night only (2026-11-03), recorded after the first build
    record_triage(
        accepted, "accepted_risk", reason="rotated", owner="sec", expires=date(2026, 11, 3), now=NOW, home=lake.home
    )

    # the next night only web changed: one finding fixed, one new; the night after nothing changed
    lake.tables[("findings", "semgrep", "main")] = [
        r for r in lake.tables[("findings", "semgrep", "main")] if r["finding_id"] != fixed
    ]
    lake.finding(web, "semgrep", "xss", severity="medium", file_path="src/view.js", cwe="CWE-79")
    lake.write()
    digests = []
    for day in (1, 2, 3):
        later = NOW + timedelta(days=day)
        twin = Lake(tmp_path / f"full-{day}")
        shutil.copytree(lake.home, twin.home)
        lake.build(now=later)
        build(twin.home, now=later, full_refresh=True)
        for model in dbt_models():
            if model.name not in STORED_AS_COMPUTED:
                assert table(lake, model.name) == table(twin, model.name), (day, model.name)
        assert lake.severity(lowered)["severity_explanation"] == f"High → Medium: no code change for {400 + day} days"
        digests.append(table(lake, "finding_severity_digests"))
        statuses = {r["rule_id"]: r["status"] for r in lake.rows("SELECT rule_id, status FROM findings_queue")}
        expected = {1: "suppressed", 2: "reopened", 3: "open"}[day]
        assert (statuses["aws-secret-key"], statuses["B101"]) == (expected, expected)
    assert digests[0] == digests[1] == digests[2]  # nothing to recompute after the first night, though days pass
    assert lake.value("SELECT count(DISTINCT day) FROM findings_daily") == 4
    # the third night computed only the queue rows of ops (its reopened findings become open); the others are kept,
    # and the view moved their last_seen and SLA states on
    computed = lake.rows("SELECT DISTINCT repository FROM findings_queue_base WHERE computed_in = 4")
    assert computed == [{"repository": "ops"}]
    assert lake.value("SELECT min(last_seen) FROM findings_queue WHERE seen") == NOW + timedelta(days=3)


def test_partitions_read_again_only_when_their_files_or_the_views_columns_change(lake, tmp_path):
    import pyarrow as pa

    from ox_bb_pipeline.findings import FINDING_SCHEMA
    from ox_bb_pipeline.lake import write_partition

    api, web = lake.repository("api"), lake.repository("web", connection="other")
    lake.finding(api, "bandit", "B105", file_path="a.py")
    lake.finding(web, "bandit", "B106", file_path="w.py", connection="other")
    lake.finding(web, "semgrep", "S1", file_path="w.py", connection="other")
    lake.build()
    digests = {
        (r["input"], r["connection"]): r["partition_digest"]
        for r in lake.rows("SELECT DISTINCT input, connection, partition_digest FROM findings_partition_digests")
    }
    assert set(digests) == {("findings_bandit", "main"), ("findings_bandit", "other"), ("findings_semgrep", "other")}

    def same_as_a_first_build(now) -> None:
        full = Lake(tmp_path / f"full-{now.day}")
        full.home.mkdir()
        shutil.copytree(lake.home / "lake", full.home / "lake")
        build(full.home, now=now)
        for name in STATELESS:
            assert table(lake, name) == table(full, name), name

    # one partition changes: only its digest moves; another partition is gone
    lake.finding(api, "bandit", "B107", file_path="b.py")
    lake.clear("findings", "semgrep", "other")
    (lake.home / "lake" / "findings" / "semgrep" / "connection=other" / "data.parquet").unlink()
    lake.build(now=NOW + timedelta(days=1))
    now = {
        (r["input"], r["connection"]): r["partition_digest"]
        for r in lake.rows("SELECT DISTINCT input, connection, partition_digest FROM findings_partition_digests")
    }
    assert set(now) == {("findings_bandit", "main"), ("findings_bandit", "other")}
    assert now[("findings_bandit", "other")] == digests[("findings_bandit", "other")]
    assert now[("findings_bandit", "main")] != digests[("findings_bandit", "main")]
    same_as_a_first_build(NOW + timedelta(days=1))

    # a column only one partition has: every row of the view gains it, so every partition is read again
    rows = lake.tables[("findings", "bandit", "main")]
    wider = pa.schema([*FINDING_SCHEMA, ("extra_column", pa.string())])
    lake.write()
    write_partition("findings", "bandit", "main", rows, wider, home=lake.home)
    lake.write = lambda: None  # keep the wider file
    lake.build(now=NOW + timedelta(days=2))
    later = {
        (r["input"], r["connection"]): r["partition_digest"]
        for r in lake.rows("SELECT DISTINCT input, connection, partition_digest FROM findings_partition_digests")
    }
    assert later[("findings_bandit", "other")] != now[("findings_bandit", "other")]
    same_as_a_first_build(NOW + timedelta(days=2))


def test_a_resolved_finding_is_kept_while_its_repository_changes_and_recomputed_when_its_scope_does(lake, tmp_path):
    """A finding not seen (resolved, or open while its scan is incomplete) is a fixed point of the lifecycle but for
    its scan scope: a night that recomputes its repository for other findings keeps its row; a night its repository's
    scans change recomputes it (the resolved one's scope_complete moves). Each night the rows are those of a full
    refresh."""
    api = lake.repository("api")
    lake.finding(api, "bandit", "B105", file_path="a.py")
    fixed = lake.finding(api, "secrets", "K1", file_path="k.env", severity="critical")
    stuck = lake.finding(api, "checkov", "CKV_1", file_path="main.tf")  # its scan failed: not resolved when gone
    lake.scan(api, "secrets", "bandit")
    lake.scan(api, "checkov", status="error", error="timeout")
    lake.build()

    def night(day: int) -> None:
        later = NOW + timedelta(days=day)
        twin = Lake(tmp_path / f"full-{day}")
        shutil.copytree(lake.home, twin.home)
        twin.tables = lake.tables
        lake.build(now=later)
        twin.build(now=later, full_refresh=True)
        for model in dbt_models():
            if model.name not in STORED_AS_COMPUTED:
                assert table(lake, model.name) == table(twin, model.name), (day, model.name)

    def row(finding_id: str) -> tuple:
        return tuple(
            lake.rows(
                "SELECT q.status, q.scope_complete, b.computed_in FROM findings_queue AS q "
                "JOIN findings_queue_base AS b USING (finding_id) WHERE finding_id = ?",
                finding_id,
            )[0].values()
        )

    lake.tables[("findings", "secrets", "main")] = []  # fixed: resolved the first night
    lake.tables[("findings", "checkov", "main")] = []  # not seen, but its scan is incomplete: still open
    night(1)
    assert (row(fixed), row(stuck)) == (("resolved", True, 2), ("open", False, 2))
    lake.finding(api, "bandit", "B106", file_path="b.py")  # api recomputed for another finding: the rows are kept
    night(2)
    assert (row(fixed), row(stuck)) == (("resolved", True, 2), ("open", False, 2))
    assert lake.value("SELECT max(computed_in) FROM findings_queue_base WHERE repository = 'api'") == 3
    for run in lake.tables[("scans", "scan_runs", "main")]:  # the secrets scan fails: the scope moved
        if run["scanner"] == "secrets":
            run.update(status="error", files_scanned=0, error="timeout")
    night(3)
    assert (row(fixed), row(stuck)) == (("resolved", False, 4), ("open", False, 4))


def test_a_warehouse_with_the_findings_queue_table_keeps_each_lifecycle(lake, tmp_path):
    """A warehouse built before findings_queue_base existed holds findings_queue as a table (the lifecycle): the first
    build after the upgrade starts the base from its rows, so no finding is new again, and gives the rows of a
    warehouse that had the base all along."""
    api = lake.repository("api")
    kept = lake.finding(api, "bandit", "B105", file_path="a.py")
    fixed = lake.finding(api, "secrets", "K1", file_path="k.env", severity="critical")
    lake.scan(api, "secrets", "bandit")
    lake.build()
    twin = Lake(tmp_path / "twin")
    shutil.copytree(lake.home, twin.home)
    con = duckdb.connect(str(lake.home / "warehouse.duckdb"))  # as the warehouse of the last release left it
    con.execute("CREATE TABLE queue AS SELECT * FROM findings_queue")
    con.execute("DROP VIEW findings_queue")
    con.execute("ALTER TABLE queue RENAME TO findings_queue")
    con.execute("DROP TABLE findings_queue_base")
    con.execute("DROP TABLE findings_queue_digests")
    con.close()

    lake.tables[("findings", "secrets", "main")] = []
    later = NOW + timedelta(days=1)
    lake.build(now=later)
    twin.tables = lake.tables
    twin.build(now=later)
    statuses = {r["finding_id"]: (r["status"], r["first_seen"]) for r in lake.rows("SELECT * FROM findings_queue")}
    assert statuses == {kept: ("open", NOW), fixed: ("resolved", NOW)}
    for name in ("findings_queue", "findings_history"):
        assert table(lake, name) == table(twin, name), name
    assert not lake.rows("SELECT * FROM duckdb_tables() WHERE table_name = 'previous_findings_queue'")


# -- severity_evidence: incremental by repository -----------------------------------------------------------------
SEVERITY_MODELS = ("severity_evidence", "finding_severity_digests", "finding_severities_base", "enriched_findings")
KEPT = " [kept]"


def component(repo: dict, name: str, version: str, dev_only: bool | None, manifest: str = "requirements.txt") -> dict:
    return {
        "workspace": repo["workspace"],
        "repository_uuid": repo["repository_uuid"],
        "repository": repo["repository"],
        "ecosystem": "PyPI",
        "name": name,
        "version": version,
        "manifest": manifest,
        "direct": True,
        "dev_only": dev_only,
    }


def mark_evidence(lake: Lake, where_sql: str) -> None:
    """Alters the stored evidence of the rows `where_sql` selects, as no build computes it: a row a night computes
    again loses the mark, a row it keeps still has it."""
    con = duckdb.connect(str(lake.home / "warehouse.duckdb"))
    try:
        assert con.execute(f"SELECT count(*) FROM severity_evidence WHERE {where_sql}").fetchone()[0] > 0
        con.execute(f"UPDATE severity_evidence SET evidence = coalesce(evidence, '') || '{KEPT}' WHERE {where_sql}")
    finally:
        con.close()


def evidence_night(lake: Lake, tmp_path, day: int, *, settings=None, kept: str = "false") -> Lake:
    """Builds night `day` incrementally, and a twin of the warehouse and lake with --full-refresh (every row computed);
    severity_evidence's rows are the twin's but for those `kept` selects (as mark_evidence marked them). Returns
    the twin."""
    lake.write()
    twin = Lake(tmp_path / f"full-{day}")
    shutil.copytree(lake.home, twin.home)
    kwargs = {"settings": settings} if settings is not None else {}
    lake.build(now=NOW + timedelta(days=day), **kwargs)
    build(twin.home, now=NOW + timedelta(days=day), full_refresh=True, **kwargs)
    expected = twin.rows(
        f"SELECT scope, subject, condition, CASE WHEN {kept} THEN coalesce(evidence, '') || '{KEPT}' ELSE evidence END "
        "AS evidence, repository_uuid FROM severity_evidence"
    )
    assert sorted(map(repr, map(tuple, (r.values() for r in lake.rows("SELECT * FROM severity_evidence"))))) == sorted(
        map(repr, map(tuple, (r.values() for r in expected)))
    ), day
    return twin


def test_a_night_where_only_components_changed_gives_the_severity_evidence_of_a_full_build(lake, tmp_path):
    """A package's dev_only flips in the lake's components while the repository's findings stay as they were (the
    findings model keeps them): its dev_dependency evidence goes, and comes back when it flips back."""
    shop, web = lake.repository("shop"), lake.repository("web")
    lake.add(
        "inventory",
        "components",
        component(shop, "pytest", "7.0.0", True, "requirements-dev.txt"),
        component(shop, "requests", "2.19.0", False),
        component(web, "pytest", "7.0.0", True, "requirements-dev.txt"),
    )
    dev = lake.finding(shop, "sca", "GHSA-dev", file_path="requirements-dev.txt", package="pytest", version="7.0.0")
    lake.finding(shop, "sca", "GHSA-fix", file_path="requirements.txt", package="requests", version="2.19.0")
    lake.finding(web, "sca", "GHSA-web", file_path="requirements-dev.txt", package="pytest", version="7.0.0")
    lake.build()

    def dev_dependencies() -> set[str]:
        return {
            r["subject"] for r in lake.rows("SELECT subject FROM severity_evidence WHERE condition = 'dev_dependency'")
        }

    findings_digests = table(lake, "findings_repository_digests")
    assert dev in dev_dependencies() and len(dev_dependencies()) == 2
    components = lake.tables[("inventory", "components", "main")]
    components[0]["dev_only"] = False  # shop's pytest is no longer development-only
    twin = evidence_night(lake, tmp_path, 1)
    assert table(lake, "findings_repository_digests") == findings_digests  # the findings were not rebuilt
    assert dev not in dev_dependencies() and len(dev_dependencies()) == 1
    for name in SEVERITY_MODELS:
        assert table(lake, name) == table(twin, name), name
    assert lake.severity(dev)["severity_factors"] == []

    components[0]["dev_only"] = True
    twin = evidence_night(lake, tmp_path, 2)
    assert dev in dev_dependencies() and len(dev_dependencies()) == 2
    for name in SEVERITY_MODELS:
        assert table(lake, name) == table(twin, name), name


def test_a_night_computes_the_severity_evidence_of_changed_repositories_only(lake, tmp_path):
    """One repository's findings change: its finding rows are computed again, the other repository's are kept (their
    stored evidence, marked, stays as it was), those of a repository whose findings are all gone go, every repository
    and application row is computed again; the rows equal a full build's but for the kept marks."""
    lake.config(
        "applications.yaml",
        """
        applications:
          - {name: payments, repositories: [{repository: api}], business_priority: critical}
        """,
    )
    api, web = lake.repository("api", private=False), lake.repository("web", changed_days_ago=400)
    lake.finding(api, "bandit", "B105", file_path="tests/fixtures/a.py")
    lake.finding(
        api, "sca", "GHSA-1", file_path="requirements.txt", package="requests", version="2.0.0", fixed_version="2.32.0"
    )
    lake.finding(web, "bandit", "B106", file_path="tests/w.py")
    lake.finding(
        web, "sca", "GHSA-2", file_path="requirements.txt", package="flask", version="1.0.0", fixed_version="3.0.0"
    )
    ops = lake.repository("ops")
    lake.finding(ops, "semgrep", "S2", file_path="tests/o.py")
    lake.build()
    gone = f"repository_uuid = '{ops['repository_uuid']}'"
    assert lake.value(f"SELECT count(*) FROM severity_evidence WHERE scope = 'finding' AND {gone}") == 1
    assert {r["scope"] for r in lake.rows("SELECT DISTINCT scope FROM severity_evidence")} == {
        "repository",
        "application",
        "finding",
    }
    mark_evidence(lake, "true")
    lake.clear("findings", "semgrep")  # ops's only finding is gone
    new = lake.finding(api, "semgrep", "S1", file_path="examples/x.py")
    kept = f"scope = 'finding' AND repository_uuid = '{web['repository_uuid']}'"
    evidence_night(lake, tmp_path, 1, kept=kept)
    assert lake.value("SELECT count(*) FROM severity_evidence WHERE subject = ?", new) == 1
    assert lake.value(f"SELECT count(*) FROM severity_evidence WHERE {kept}") == 2
    assert lake.value(f"SELECT count(*) FROM severity_evidence WHERE scope = 'finding' AND {gone}") == 0


def test_a_change_of_the_code_context_rules_computes_the_severity_evidence_of_every_repository(lake, tmp_path):
    api, web = lake.repository("api"), lake.repository("web")
    lake.finding(api, "bandit", "B105", file_path="tests/fixtures/a.py")
    lake.finding(web, "semgrep", "S1", file_path="tests/fixtures/w.py")
    lake.finding(
        web, "sca", "GHSA-2", file_path="requirements.txt", package="flask", version="1.0.0", fixed_version="3.0.0"
    )
    lake.build()
    assert {r["evidence"] for r in lake.rows("SELECT evidence FROM severity_evidence WHERE scope = 'finding'")} == {
        "test code under tests/fixtures/",
        "flask to 3.0.0",
    }
    mark_evidence(lake, "true")
    settings = load_settings(lake.home)
    rules = [  # a fixtures folder no longer a test folder of its own: the evidence names its parent
        {**r, "path": r["path"].replace("fixtures?|", "")} if r["name"] == "test-directory" else r
        for r in settings.code_context
    ]
    twin = evidence_night(lake, tmp_path, 1, settings=settings.model_copy(update={"code_context": rules}))
    assert {r["evidence"] for r in lake.rows("SELECT evidence FROM severity_evidence WHERE scope = 'finding'")} == {
        "test code under tests/",
        "flask to 3.0.0",
    }
    for name in SEVERITY_MODELS:
        assert table(lake, name) == table(twin, name), name


@pytest.mark.parametrize("before", ["digests", "repository_uuid"])
def test_a_warehouse_from_before_incremental_severity_evidence_computes_it_all_once(lake, tmp_path, before):
    """A warehouse without severity_evidence_digests (severity_evidence was computed whole every build), or from
    before its rows carried their repository (no repository_uuid column either): the next build computes every
    repository's finding rows, and drops those of a repository whose findings went that night (no digest of it, last
    build's or this one's, says so)."""
    api, web = lake.repository("api"), lake.repository("web")
    lake.finding(api, "bandit", "B105", file_path="tests/fixtures/a.py")
    lake.finding(web, "semgrep", "S1", file_path="tests/fixtures/w.py")
    lake.build()
    mark_evidence(lake, "true")
    with duckdb.connect(str(lake.home / "warehouse.duckdb")) as con:
        con.execute("DROP TABLE severity_evidence_digests")
        if before == "repository_uuid":
            con.execute("ALTER TABLE severity_evidence DROP COLUMN repository_uuid")
    lake.clear("findings", "semgrep")
    evidence_night(lake, tmp_path, 1)
    assert lake.value("SELECT count(*) FROM severity_evidence WHERE scope = 'finding'") == 1
