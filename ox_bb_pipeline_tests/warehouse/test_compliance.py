"""Compliance per application and control: pass, fail and not_evaluable with their evidence, accepted
risk apart, repository and workspace settings shared by the applications they cover, and scores."""

from __future__ import annotations

import shutil
from datetime import timedelta

from ox_bb_pipeline.warehouse.runner import build as full_build

from .conftest import NOW, Lake, writable

NOTHING = "no posture check or complete scan covers this control for the application"


def build(lake):
    return lake.build(settings=lake.small_settings())


def report(lake, application: str) -> dict[str, tuple]:
    """control -> (status, failing ids, accepted ids, passed_by, evidence)."""
    return {
        r["control_id"]: (
            r["status"],
            r["failing_finding_ids"],
            r["accepted_finding_ids"],
            r["passed_by"],
            r["evidence"],
        )
        for r in lake.rows("SELECT * FROM compliance_report WHERE application = ?", application)
    }


def night_and_full_build(lake: Lake, tmp_path, now) -> Lake:
    """The lake as changed, built as a night and, in a twin of the home, with every row computed (full refresh);
    returns the twin."""
    lake.write()
    twin = Lake(tmp_path / "full")
    shutil.copytree(lake.home, twin.home)
    lake.build(now, settings=lake.small_settings())
    full_build(twin.home, now=now, settings=twin.small_settings(), full_refresh=True)
    return twin


def test_statuses_evidence_and_scores(lake, small_catalog):
    api, web = lake.repository("api"), lake.repository("web")
    force = lake.finding(
        api,
        "posture",
        "BB-004",
        anchor="bb-004",
        title="Main branch can be deleted",
        severity="medium",
        controls=["CIS-SSC-1.1.17", "SSDF-PS.1.1", "CICD-SEC-1"],
    )
    lake.posture(api, "BB-003", "pass", "force pushes prevented")
    lake.posture(api, "BB-004", "fail", "no delete restriction", finding_id=force)
    lake.posture(web, "BB-003", "not_evaluable", "branch_restrictions could not be read (forbidden)")
    lake.posture(None, "BB-M01", "not_evaluable", "requires admin attestation")
    lake.scan(api, "secrets", "bandit")
    lake.scan(web, "secrets", status="error", error="timed out")
    accepted = lake.finding(
        api,
        "bandit",
        "B105",
        title="Hard-coded password",
        file_path="app/settings.py",
        controls=["CIS-SSC-1.5.4", "SSDF-PW.7.2"],
    )
    lake.config(
        "suppressions.yaml",
        f"""
        suppressions:
          - {{fingerprint: {accepted}, reason: rotated, owner: alice, expires: 2027-01-01}}
    """,
    )
    build(lake)

    assert report(lake, "acme/api") == {
        "CICD-SEC-1": ("fail", [force], [], ["BB-003"], ["BB-004 medium: Main branch can be deleted (api)"]),
        "CIS-SSC-1.1.16": ("pass", [], [], ["BB-003"], []),
        "CIS-SSC-1.1.17": ("fail", [force], [], [], ["BB-004 medium: Main branch can be deleted (api)"]),
        "CIS-SSC-1.3.5": ("not_evaluable", [], [], [], ["BB-M01 not_evaluable on acme: requires admin attestation"]),
        "CIS-SSC-1.5.1": ("pass", [], [], ["secrets"], []),
        "CIS-SSC-1.5.4": (
            "pass",
            [],
            [accepted],
            ["bandit"],
            ["B105 high: Hard-coded password, suppressed: rotated (api/app/settings.py)"],
        ),
        "CIS-SSC-2.4.5": ("not_evaluable", [], [], [], [NOTHING]),
        "SSDF-PS.1.1": (
            "fail",
            [force],
            [],
            ["BB-003"],
            [
                "BB-004 medium: Main branch can be deleted (api)",
                "BB-M01 not_evaluable on acme: requires admin attestation",
            ],
        ),
        "SSDF-PW.7.2": (
            "pass",
            [],
            [accepted],
            ["bandit"],
            ["B105 high: Hard-coded password, suppressed: rotated (api/app/settings.py)"],
        ),
    }
    web_rows = report(lake, "acme/web")
    assert {c: s for c, (s, *_) in web_rows.items()} == dict.fromkeys(
        [
            "CICD-SEC-1",
            "CIS-SSC-1.1.16",
            "CIS-SSC-1.1.17",
            "CIS-SSC-1.3.5",
            "CIS-SSC-1.5.1",
            "CIS-SSC-1.5.4",
            "CIS-SSC-2.4.5",
            "SSDF-PS.1.1",
            "SSDF-PW.7.2",
        ],
        "not_evaluable",
    )
    assert web_rows["CIS-SSC-1.5.1"][4] == ["secrets failed on acme/web: timed out"]
    assert web_rows["CIS-SSC-1.1.16"][4] == [
        "BB-003 not_evaluable on acme/web: branch_restrictions could not be read (forbidden)"
    ]

    assert lake.rows(
        "SELECT application, framework, controls, passed, failed, not_evaluable, score "
        "FROM compliance_scores ORDER BY application, framework"
    ) == [
        {
            "application": "acme/api",
            "framework": "cis_ssc",
            "controls": 6,
            "passed": 3,
            "failed": 1,
            "not_evaluable": 2,
            "score": 75.0,
        },
        {
            "application": "acme/api",
            "framework": "owasp_cicd",
            "controls": 1,
            "passed": 0,
            "failed": 1,
            "not_evaluable": 0,
            "score": 0.0,
        },
        {
            "application": "acme/api",
            "framework": "ssdf",
            "controls": 2,
            "passed": 1,
            "failed": 1,
            "not_evaluable": 0,
            "score": 50.0,
        },
        {
            "application": "acme/web",
            "framework": "cis_ssc",
            "controls": 6,
            "passed": 0,
            "failed": 0,
            "not_evaluable": 6,
            "score": None,
        },
        {
            "application": "acme/web",
            "framework": "owasp_cicd",
            "controls": 1,
            "passed": 0,
            "failed": 0,
            "not_evaluable": 1,
            "score": None,
        },
        {
            "application": "acme/web",
            "framework": "ssdf",
            "controls": 2,
            "passed": 0,
            "failed": 0,
            "not_evaluable": 2,
            "score": None,
        },
    ]


def test_repository_settings_count_for_every_part_of_a_monorepo_and_files_for_their_own(lake, small_catalog):
    lake.config(
        "applications.yaml",
        """
        applications:
          - name: mono
            repositories: [{repository: mono}]
            children:
              - {name: mono-api, paths: ["api/*"]}
    """,
    )
    mono = lake.repository("mono")
    setting = lake.finding(mono, "posture", "BB-003", anchor="bb-003", controls=["CIS-SSC-1.1.16"])
    code = lake.finding(mono, "bandit", "B105", file_path="api/settings.py", controls=["CIS-SSC-1.5.4"])
    lake.scan(mono, "bandit")
    build(lake)
    rows = {
        (r["application"], r["control_id"]): (r["status"], r["failing_finding_ids"])
        for r in lake.rows("SELECT * FROM compliance_report WHERE control_id IN ('CIS-SSC-1.1.16', 'CIS-SSC-1.5.4')")
    }
    assert rows == {
        ("mono", "CIS-SSC-1.1.16"): ("fail", [setting]),
        ("mono-api", "CIS-SSC-1.1.16"): ("fail", [setting]),
        ("mono", "CIS-SSC-1.5.4"): ("pass", []),
        ("mono-api", "CIS-SSC-1.5.4"): ("fail", [code]),
    }


def test_resolved_findings_no_longer_fail(lake, small_catalog):
    repo = lake.repository("api")
    lake.scan(repo, "bandit")
    lake.finding(repo, "bandit", "B105", file_path="a.py", controls=["CIS-SSC-1.5.4"])
    build(lake)
    assert report(lake, "acme/api")["CIS-SSC-1.5.4"][0] == "fail"
    lake.clear("findings", "bandit")
    build(lake)
    assert report(lake, "acme/api")["CIS-SSC-1.5.4"] == ("pass", [], [], ["bandit"], [])


def test_findings_of_one_rule_read_as_one_line_of_evidence(lake, small_catalog):
    repo = lake.repository("api")
    lake.scan(repo, "bandit")
    ids = sorted(
        lake.finding(repo, "bandit", "B105", title="Hard-coded password", file_path=path, controls=["CIS-SSC-1.5.4"])
        for path in ("b.py", "a.py")
    )
    build(lake)
    assert report(lake, "acme/api")["CIS-SSC-1.5.4"] == (
        "fail",
        ids,
        [],
        ["bandit"],
        ["B105 high: Hard-coded password (2 findings, e.g. api/a.py)"],
    )


def test_a_night_gives_the_rows_of_a_full_build_for_the_applications_it_rebuilds(lake, small_catalog, tmp_path):
    """A night recomputes the compliance rows of the applications whose inputs changed and reads only what can count
    for them: their files' findings, and the settings of their repositories and workspaces. The night after one
    application changed, its rows (a repository and a workspace setting failing next to its files) and every other
    application's equal those of a build that computes them all."""
    api, web = lake.repository("api"), lake.repository("web")
    acme = {"workspace": "acme", "repository_uuid": "", "repository": "", "main_head": None}  # the workspace itself
    for repo in (api, web):
        lake.scan(repo, "bandit")
        lake.finding(repo, "posture", "BB-003", anchor=f"{repo['repository']}-bb-003", controls=["CIS-SSC-1.1.16"])
    lake.finding(web, "bandit", "B105", file_path="w.py", controls=["CIS-SSC-1.5.4"])  # the controls findings carry
    workspace_setting = lake.finding(acme, "posture", "BB-001", anchor="acme-bb-001", controls=["CIS-SSC-1.5.4"])
    build(lake)
    digests = {r["application"]: r["digest"] for r in lake.rows("SELECT * FROM compliance_digests")}

    code = lake.finding(api, "bandit", "B105", file_path="a.py", controls=["CIS-SSC-1.5.4"])  # only api changes
    later = NOW + timedelta(days=1)
    twin = night_and_full_build(lake, tmp_path, later)
    changed = {
        r["application"]
        for r in lake.rows("SELECT * FROM compliance_digests")
        if digests[r["application"]] != r["digest"]
    }
    assert changed == {"acme/api"}
    assert report(lake, "acme/api")["CIS-SSC-1.5.4"][1] == sorted([code, workspace_setting])
    rows = "SELECT * FROM compliance_report ORDER BY application, control_id"
    assert lake.rows(rows) == twin.rows(rows)


def test_controls_and_open_finding_sums_of_a_night_equal_a_full_builds_and_are_recomputed_whole_after_an_sql_change(
    lake, small_catalog, tmp_path
):
    """repository_controls (the controls findings carry) and compliance_finding_digests (the open findings' hashes
    per repository) are computed again on a night only for the repositories whose findings or queue rows changed:
    after a control's last finding is fixed in one repository and a new control appears in another, both equal a full
    build's. A row planted in a repository nothing changed in stays, until a change of the model's SQL (its stored
    digest altered as one would leave it) has every repository computed again."""
    api, web, ops = lake.repository("api"), lake.repository("web"), lake.repository("ops")
    acme = {"workspace": "acme", "repository_uuid": "", "repository": "", "main_head": None}
    for repo in (api, web, ops):
        lake.scan(repo, "bandit")
    lake.finding(api, "bandit", "B105", file_path="a.py", controls=["CIS-SSC-1.5.4"])
    fixed = lake.finding(web, "bandit", "B602", file_path="w.py", controls=["CIS-SSC-1.1.16"])
    lake.finding(ops, "bandit", "B105", file_path="o.py", controls=["CIS-SSC-1.5.4"])
    lake.finding(acme, "posture", "BB-001", anchor="acme-bb-001", controls=["CIS-SSC-1.5.4"])
    build(lake)

    lake.tables[("findings", "bandit", "main")] = [
        r for r in lake.tables[("findings", "bandit", "main")] if r["finding_id"] != fixed
    ]
    lake.finding(api, "bandit", "B602", file_path="b.py", controls=["SSDF-PW.7.2"])
    later = NOW + timedelta(days=1)
    twin = night_and_full_build(lake, tmp_path, later)
    for model in ("repository_controls", "compliance_finding_digests"):
        rows = f"SELECT * FROM {model} ORDER BY ALL"
        assert lake.rows(rows) == twin.rows(rows), model
    controls = {(r["repository_uuid"], r["control_id"]) for r in lake.rows("SELECT * FROM repository_controls")}
    assert (api["repository_uuid"], "SSDF-PW.7.2") in controls
    assert not any(repository == web["repository_uuid"] for repository, _ in controls)

    planted = {
        "repository_controls": f"('{ops['repository_uuid']}', 'bandit', 'CICD-SEC-9')",
        "compliance_finding_digests": f"('{ops['repository_uuid']}', 'acme/ops', 'acme', true, 7)",
    }
    with writable(lake) as con:
        for model, row in planted.items():
            con.execute(f"INSERT INTO {model} VALUES {row}")
    lake.build(later + timedelta(days=1), settings=lake.small_settings())
    for model in planted:  # nothing changed in ops: its rows are kept, the planted one too
        assert lake.rows(f"SELECT count(*) AS n FROM {model}")[0]["n"] == len(twin.rows(f"SELECT * FROM {model}")) + 1
    with writable(lake) as con:
        con.execute("UPDATE incremental_digests SET digest = digest + 1 WHERE model IN ?", [list(planted)])
    lake.build(later + timedelta(days=2), settings=lake.small_settings())
    for model in planted:
        rows = f"SELECT * FROM {model} ORDER BY ALL"
        assert lake.rows(rows) == twin.rows(rows), model
