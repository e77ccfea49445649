"""Bitbucket posture checks on real extracted tables: the session sandbox, extracted by the real
extractor with an admin and a non-admin credential, evaluated at the sandbox's anchor date."""

from __future__ import annotations

import re
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from ox_bb_pipeline.bitbucket.client import BitbucketClient
from ox_bb_pipeline.bitbucket.extract import Extractor
from ox_bb_pipeline.bitbucket.git import GitAccess
from ox_bb_pipeline.bitbucket.tables import schema
from ox_bb_pipeline.config import load_connections
from ox_bb_pipeline.scanners.posture import (
    RESULT_SCHEMA,
    SQL_DIR,
    catalog_table,
    evaluate,
    load_catalog,
    scanner_version,
)
from ox_bb_pipeline.scanners.posture.checks import CHECKS, main_branch_restrictions
from ox_bb_pipeline.scanners.secrets import redact_text
from ox_bb_pipeline_tests.conftest import ANCHOR

NOW = ANCHOR + timedelta(days=1)
POSTURE_KINDS = ("setting", "webhook", "pipeline_variable", "repository")
PIPELINE_CHECKS = {f"BB-0{n}" for n in range(26, 34)}
RESTRICTION_CHECKS = {f"BB-0{n:02d}" for n in range(1, 14)}
CLEAN_PROFILES = ("clean-python", "clean-node", "docs")
# What a non-admin cannot read: restrictions, hooks and deploy keys (403) → never pass or fail.
ADMIN_ONLY_CHECKS = RESTRICTION_CHECKS | {"BB-022", "BB-023", "BB-024"}


def _extract(home: Path, name: str) -> dict[str, list[dict]]:
    conn = load_connections(home / "connections.yaml").get(name)
    client = BitbucketClient(conn)
    git = GitAccess(conn.name, conn.git_url, client.auth.git_credentials)
    return Extractor(client, git, redact_yml=redact_text, previous={}, state={"repositories": {}}, home=home).run().rows


@pytest.fixture(scope="module")
def extracted(sandbox, tmp_path_factory) -> dict[str, dict[str, list[dict]]]:
    """Two full admin extractions (for identity; the second through the OAuth app, which acts as alice
    from its own rate-limit bucket) and one as bob, a member without admin rights."""
    home = tmp_path_factory.mktemp("posture-home")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OX_BB_HOME", str(home))
        sandbox.write_connections(home / "connections.yaml")
        yield {
            "admin": _extract(home, "sandbox-token"),
            "admin-again": _extract(home, "sandbox-app"),
            "member": _extract(home, "sandbox-token-member"),
        }


@pytest.fixture(scope="module")
def repository_files(snapshots) -> list[dict]:
    """Paths at each main head, as the scan stage's snapshots list them (BB-019 reads them)."""
    return [
        {
            "connection": "sandbox-token",
            "workspace": s.repo.workspace,
            "repository_uuid": s.repo.repository_uuid,
            "repository": s.repo.repository,
            "path": path,
        }
        for s in snapshots.values()
        for path in s.paths()
    ]


@pytest.fixture(scope="module")
def admin(extracted, repository_files):
    return evaluate({**extracted["admin"], "repository_files": repository_files}, connection="sandbox-token", now=NOW)


@pytest.fixture(scope="module")
def member(extracted):
    return evaluate(extracted["member"], connection="sandbox-token-member", now=NOW)


def _uuids(rows: dict) -> dict[tuple[str, str], str]:
    return {(r["workspace"], r["repository"]): r["repository_uuid"] for r in rows["repositories"]}


def _status(result) -> dict[tuple[str, str | None], str]:
    return {(r["check_id"], r["repository_uuid"] or r["workspace"]): r["status"] for r in result.results}


def _expected_planted(planted: list[dict]) -> list[dict]:
    return [
        p
        for p in planted
        if (p["kind"] in POSTURE_KINDS and re.fullmatch(r"BB-0\d\d", p["rule"]))
        or (p["kind"] == "pipeline" and p["rule"] in PIPELINE_CHECKS)
    ]


# -- recall and precision on the sandbox -----------------------------------------------------------
def test_every_planted_posture_issue_fails_its_check(admin, extracted, planted):
    uuids, status = _uuids(extracted["admin"]), _status(admin)
    per_check: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    missed = []
    for p in _expected_planted(planted):
        target = uuids[(p["workspace"], p["repository"])] if p["repository"] else p["workspace"]
        found = status.get((p["rule"], target)) == "fail"
        per_check[p["rule"]][0] += found
        per_check[p["rule"]][1] += 1
        if not found:
            missed.append(
                f"{p['rule']} {p['workspace']}/{p['repository']}: {status.get((p['rule'], target))} ({p.get('detail')})"
            )
    table = "\n".join(
        f"{rule}  recall {hit}/{total} = {hit / total:.2f}" for rule, (hit, total) in sorted(per_check.items())
    )
    assert not missed, f"per-check recall:\n{table}\nmissed:\n" + "\n".join(missed)
    # The manifest plants every check but these, so recall covers the catalog rather than a sample.
    assert {f"BB-0{n:02d}" for n in range(1, 34)} - set(per_check) <= {"BB-005", "BB-009", "BB-010", "BB-011"}


def test_unapproved_history_names_each_planted_commit(admin, extracted, planted):
    evidence = {r["repository_uuid"]: r["evidence"] for r in admin.results if r["check_id"] == "BB-014"}
    uuids = _uuids(extracted["admin"])
    for p in (p for p in planted if p["rule"] == "BB-014"):
        assert p["commit"][:12] in evidence[uuids[(p["workspace"], p["repository"])]], p


def test_clean_repositories_pass_restriction_and_pipeline_checks(admin):
    dirty = [
        (r["check_id"], r["repository"], r["status"], r["evidence"])
        for r in admin.results
        if r["repository"] in CLEAN_PROFILES
        and r["check_id"] in RESTRICTION_CHECKS | PIPELINE_CHECKS
        and r["status"] != "pass"
    ]
    assert not dirty


def test_one_result_per_check_and_selected_repository_or_workspace(admin, extracted):
    repos = {r["repository_uuid"] for r in extracted["admin"]["repositories"] if r["selected"]}
    workspaces = {w["workspace"] for w in extracted["admin"]["workspaces"]}
    rows = defaultdict(list)
    for r in admin.results:
        rows[r["check_id"]].append(r["repository_uuid"] or r["workspace"])
    for check in load_catalog():
        expected = (repos if "repository" in check.scope else set()) | (
            workspaces if "workspace" in check.scope else set()
        )
        assert sorted(rows[check.id]) == sorted(expected), check.id
    assert not [r for r in admin.results if r["evidence"].startswith("check failed")]
    assert {r["status"] for r in admin.results} <= {"pass", "fail", "not_evaluable"}
    # Only the manual attestation stays unknown for an admin credential.
    assert {r["check_id"] for r in admin.results if r["status"] == "not_evaluable"} == {"BB-M01"}
    assert admin.results_table().schema == RESULT_SCHEMA


def test_deselected_repositories_are_not_evaluated(extracted):
    rows = dict(extracted["admin"])
    dropped = rows["repositories"][0]
    rows["repositories"] = [{**r, "selected": r is not dropped} for r in rows["repositories"]]
    result = evaluate(rows, connection="sandbox-token", now=NOW)
    assert dropped["repository_uuid"] not in {r["repository_uuid"] for r in result.results}
    assert {r["repository_uuid"] for r in result.results} - {None}


# -- a credential without admin rights --------------------------------------------------------------
def test_member_gets_not_evaluable_where_admin_endpoints_were_refused(member, extracted):
    refused = {s["table_name"] for s in extracted["member"]["extraction_status"]}
    assert refused >= {"branch_restrictions", "webhooks", "deploy_keys", "pipeline_configs"}
    for r in member.results:
        if r["check_id"] in ADMIN_ONLY_CHECKS or r["check_id"] in ("BB-020", "BB-021"):
            assert r["status"] == "not_evaluable", r
            assert "could not be read (forbidden" in r["evidence"], r
    # The pipelines file comes from git, so its checks still run for bob despite the 403 on /pipelines_config.
    pipeline_statuses = {r["status"] for r in member.results if r["check_id"] in PIPELINE_CHECKS}
    assert pipeline_statuses == {"pass", "fail"}


def test_member_and_admin_agree_wherever_both_could_evaluate(member, admin):
    admin_status = _status(admin)
    disagree = []
    for r in member.results:
        key = (r["check_id"], r["repository_uuid"] or r["workspace"])
        if r["status"] != "not_evaluable" and admin_status[key] != r["status"]:
            disagree.append((*key, r["status"], admin_status[key]))
    assert not disagree


# -- identity and metadata ------------------------------------------------------------------------
def test_finding_identities_are_equal_across_two_extractions(admin, extracted, repository_files):
    again = evaluate(
        {**extracted["admin-again"], "repository_files": repository_files}, connection="sandbox-app", now=NOW
    )
    first = {f.finding_id: (f.rule_id, f.repository_uuid, f.anchor) for f in admin.findings}
    second = {f.finding_id: (f.rule_id, f.repository_uuid, f.anchor) for f in again.findings}
    assert first == second
    assert len(first) == len(admin.findings)  # one finding per failing check and repository or workspace


def test_findings_carry_catalog_metadata_and_setting_anchors(admin, extracted):
    catalog = {c.id: c for c in load_catalog()}
    commits = {c["commit"] for c in extracted["admin"]["main_branch_commits"]}
    failing = {
        (r["check_id"], r["repository_uuid"] or r["workspace"]): r["finding_id"]
        for r in admin.results
        if r["status"] == "fail"
    }
    assert len(failing) == len(admin.findings)
    for f in admin.findings:
        check = catalog[f.rule_id]
        assert (f.scanner, f.scanner_version) == ("posture", scanner_version())
        assert (f.title, f.category, f.base_severity, f.controls) == (
            check.title,
            check.category,
            check.severity,
            check.control_ids,
        )
        assert f.evidence and f.remediation == check.remediation
        assert not any(c[:12] in f.anchor for c in commits) and not re.search(r"\d+:\d+", f.anchor)
        assert f.file_path == ("bitbucket-pipelines.yml" if f.rule_id in PIPELINE_CHECKS else None)
        assert f.start_line is None
        assert failing[(f.rule_id, f.repository_uuid or f.workspace)] == f.finding_id
        if not f.repository_uuid:
            assert f.anchor.startswith(f"workspace:{f.workspace}:")
    table = admin.findings_table()
    assert table.num_rows == len(admin.findings)


def test_evidence_never_holds_a_planted_secret(admin, member, planted):
    values = [p["value"] for p in planted if p.get("value") and p["kind"] in ("pipeline", "pipeline_variable")]
    assert values
    for r in admin.results + member.results:
        assert not any(v in r["evidence"] for v in values), r


def test_arrow_tables_give_the_same_results_as_row_lists(admin, extracted, repository_files):
    tables = {name: pa.Table.from_pylist(rows, schema=schema(name)) for name, rows in extracted["admin"].items()}
    result = evaluate({**tables, "repository_files": repository_files}, connection="sandbox-token", now=NOW)
    assert result.results == admin.results


def test_a_failing_check_reports_not_evaluable_and_spares_the_others(extracted, monkeypatch):
    def broken(ctx, params):
        raise RuntimeError("boom")

    load_catalog()  # validated (and cached) with the real function before it is swapped out
    monkeypatch.setitem(CHECKS, "BB-027", broken)
    result = evaluate(extracted["admin"], connection="sandbox-token", now=NOW)
    statuses = defaultdict(set)
    for r in result.results:
        statuses[r["check_id"]].add((r["status"], r["evidence"] if r["check_id"] == "BB-027" else ""))
    assert statuses["BB-027"] == {("not_evaluable", "check failed: RuntimeError: boom")}
    assert ("fail", "") in statuses["BB-026"]


def test_time_based_checks_read_the_injected_now(extracted):
    later = evaluate(extracted["admin"], connection="sandbox-token", now=NOW + timedelta(days=400))
    assert {r["status"] for r in later.results if r["check_id"] == "BB-017"} == {"fail"}
    assert {r["checked_at"] for r in later.results} == {NOW + timedelta(days=400)}


def test_unparseable_pipelines_file_is_not_evaluable_with_the_error(extracted):
    rows = dict(extracted["admin"])
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(9)
    )
    victims = {
        r["repository_uuid"]: text
        for r, text in zip([c for c in rows["pipeline_configs"] if c["yml_present"]], ["pipelines: [unclosed\n", bomb])
    }
    rows["pipeline_configs"] = [
        {**c, "yml": victims.get(c["repository_uuid"], c["yml"])} for c in rows["pipeline_configs"]
    ]
    started = time.perf_counter()
    result = evaluate(rows, connection="sandbox-token", now=NOW)
    assert time.perf_counter() - started < 10
    for r in result.results:
        if r["repository_uuid"] in victims and r["check_id"] in PIPELINE_CHECKS:
            assert r["status"] == "not_evaluable" and r["evidence"].startswith("bitbucket-pipelines.yml: "), r
    evidence = {r["evidence"] for r in result.results if r["repository_uuid"] in victims and r["check_id"] == "BB-027"}
    assert any("invalid YAML" in e for e in evidence) and any("YAML bomb" in e for e in evidence)


# -- the catalog and the branch matching ------------------------------------------------------------
def test_catalog_is_complete_and_every_check_has_logic():
    catalog = load_catalog()
    ids = [c.id for c in catalog]
    assert [i for i in ids if i.startswith("BB-0")] == [f"BB-0{n:02d}" for n in range(1, 34)]
    for check in catalog:
        assert check.severity in ("info", "low", "medium", "high", "critical") and check.title and check.remediation
        assert check.control_ids and check.category in ("scm_posture", "cicd_posture")
        if check.logic.endswith(".sql"):
            assert (SQL_DIR / check.logic).is_file()
        elif check.logic != "manual":
            assert CHECKS[check.id].__name__ == check.logic
    severities = {c.id: c.severity for c in catalog}
    assert (severities["BB-015"], severities["BB-026"], severities["BB-001"], severities["BB-033"]) == (
        "critical",
        "critical",
        "high",
        "low",
    )
    assert "CIS-SSC-1.1.16" in {c.id: c for c in catalog}["BB-003"].control_ids
    assert catalog_table().num_rows == len(catalog)


def test_restrictions_match_main_by_glob_and_by_branching_model():
    con = duckdb.connect()
    keys = {"connection": "c", "workspace": "ws"}
    con.register(
        "selected_repositories",
        pa.Table.from_pylist(
            [
                {**keys, "repository_uuid": "{1}", "repository": "a", "mainbranch": "release/2.0"},
                {**keys, "repository_uuid": "{2}", "repository": "b", "mainbranch": "trunk"},
            ]
        ),
    )
    con.register(
        "branching_models",
        pa.Table.from_pylist(
            [
                {
                    **keys,
                    "repository_uuid": "{2}",
                    "repository": "b",
                    "development_branch": "trunk",
                    "production_branch": None,
                    "branch_types": '[{"kind": "release", "prefix": "release/"}]',
                },
                {
                    **keys,
                    "repository_uuid": "{1}",
                    "repository": "a",
                    "development_branch": "develop",
                    "production_branch": "main",
                    "branch_types": '[{"kind": "release", "prefix": "release/"}]',
                },
            ],
            schema=schema("branching_models"),
        ),
    )

    def rule(uuid, rid, **kw):
        return {
            **keys,
            "repository_uuid": uuid,
            "restriction_id": rid,
            "kind": "force",
            "branch_match_kind": "glob",
            **kw,
        }

    con.register(
        "branch_restrictions",
        pa.Table.from_pylist(
            [
                rule("{1}", 1, pattern="release/*"),
                rule("{1}", 2, pattern="main"),
                rule("{1}", 3, branch_match_kind="branching_model", branch_type="release"),
                rule("{1}", 4, branch_match_kind="branching_model", branch_type="production"),
                rule("{2}", 5, branch_match_kind="branching_model", branch_type="development"),
                rule("{2}", 6, pattern="t*k"),
                rule("{2}", 7, pattern="Trunk"),
            ],
            schema=schema("branch_restrictions"),
        ),
    )
    matched = {(r["restriction_id"], r["matched_by"]) for r in main_branch_restrictions(con).to_pylist()}
    assert matched == {
        (1, "pattern 'release/*'"),
        (3, "branching model type release"),
        (5, "branching model type development"),
        (6, "pattern 't*k'"),
    }
