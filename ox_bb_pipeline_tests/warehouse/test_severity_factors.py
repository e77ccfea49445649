"""Severity factors: each factor of the catalog on its own, with its exact sentence, then together;
the floor and the cap; and the catalog itself (data validated against the conditions SQL knows)."""

from __future__ import annotations

import re

import pytest

from ox_bb_pipeline.config import ConfigError
from ox_bb_pipeline.warehouse.models import SQL_DIR
from ox_bb_pipeline.warehouse.settings import CONDITIONS, load_factor_catalog


def enriched(lake, finding_id: str) -> dict:
    return lake.rows("SELECT final_severity, severity_steps, severity_explanation, severity_factors "
                     "FROM enriched_findings WHERE finding_id = ?", finding_id)[0]


def test_no_factor_keeps_the_base_severity_and_says_so(lake):
    repo = lake.repository("api")
    fid = lake.finding(repo, "bandit", "B608", severity="high", file_path="app/db.py")
    lake.build()
    assert enriched(lake, fid) == {
        "final_severity": "high", "severity_steps": 0, "severity_factors": [],
        "severity_explanation": "High: the base severity of rule B608; no severity factor applies"}


def test_public_repository_raises(lake):
    repo = lake.repository("site", private=False)
    fid = lake.finding(repo, "bandit", "B608", severity="medium", file_path="app/db.py")
    lake.build()
    assert enriched(lake, fid) == {
        "final_severity": "high", "severity_steps": 1,
        "severity_factors": [{"name": "public_repository", "direction": "up", "steps": 1, "evidence": "acme/site"}],
        "severity_explanation": "Medium → High: repository acme/site is public"}


def test_production_deployment_raises_and_staging_only_lowers(lake):
    prod, staging = lake.repository("prod-app"), lake.repository("staging-app")
    lake.pipelines(prod, """
        pipelines:
          branches:
            main:
              - step: {name: Build, script: [make]}
              - step: {name: Ship, deployment: live-eu, script: [./ship.sh]}
    """)
    lake.environment(prod, "live-eu", "Production")
    lake.pipelines(staging, """
        pipelines:
          default:
            - step: {name: Preview, deployment: staging, script: [./preview.sh]}
    """)
    in_prod = lake.finding(prod, "semgrep", "sqli", severity="medium", file_path="src/q.js")
    in_staging = lake.finding(staging, "semgrep", "sqli", severity="medium", file_path="src/q.js")
    lake.build()
    assert enriched(lake, in_prod)["severity_explanation"] == \
        "Medium → High: deployed to production (branches:main → live-eu)"
    assert enriched(lake, in_staging)["severity_explanation"] == \
        "Medium → Low: application not deployed to production (deploys to staging only)"


def test_business_priority_critical_raises_and_low_lowers(lake):
    lake.config("applications.yaml", """
        applications:
          - name: core
            repositories: [{repository: core}]
            business_priority: critical
          - name: sandbox
            repositories: [{repository: sandbox}]
            business_priority: low
    """)
    core, sandbox = lake.repository("core"), lake.repository("sandbox")
    high = lake.finding(core, "bandit", "B602", severity="medium", file_path="core/run.py")
    low = lake.finding(sandbox, "bandit", "B602", severity="medium", file_path="run.py")
    lake.build()
    assert enriched(lake, high)["severity_explanation"] == \
        "Medium → High: business-critical application (set in applications.yaml)"
    assert enriched(lake, low)["severity_explanation"] == \
        "Medium → Low: low business priority (set in applications.yaml)"


@pytest.mark.parametrize(("path", "evidence"), [
    ("tests/fixtures/legacy_settings.py", "tests/fixtures/"),
    ("src/test/java/com/example/HasherTest.java", "src/test/"),
    ("examples/quickstart.py", "examples/"),
    ("tests/integration/fixtures/db/seed.sql", "tests/"),
    ("pkg/worker_test.go", "pkg/worker_test.go"),
    ("web/src/app.spec.ts", "web/src/app.spec.ts"),
])
def test_test_example_and_fixture_paths_lower(lake, path, evidence):
    repo = lake.repository("svc")
    fid = lake.finding(repo, "secrets", "aws-key", severity="critical", file_path=path)
    lake.build()
    assert enriched(lake, fid)["severity_explanation"] == f"Critical → High: only under {evidence}"


def test_development_only_dependency_lowers_and_fix_is_explained(lake):
    repo = lake.repository("shop")
    for manifest, dev in (("requirements-dev.txt", True), ("requirements.txt", False)):
        lake.add("inventory", "components", {
            "workspace": "acme", "repository_uuid": repo["repository_uuid"], "repository": "shop",
            "ecosystem": "PyPI", "name": "pytest" if dev else "requests", "version": "7.0.0" if dev else "2.19.0",
            "manifest": manifest, "direct": True, "dev_only": dev})
    dev_dep = lake.finding(repo, "sca", "GHSA-dev", severity="high", file_path="requirements-dev.txt",
                           package="pytest", version="7.0.0")
    fixable = lake.finding(repo, "sca", "GHSA-fix", severity="high", file_path="requirements.txt",
                           package="requests", version="2.19.0", fixed_version="2.32.0")
    lake.build()
    assert enriched(lake, dev_dep) == {
        "final_severity": "medium", "severity_steps": -1,
        "severity_factors": [{"name": "development_dependency", "direction": "down", "steps": 1,
                              "evidence": "pytest@7.0.0"}],
        "severity_explanation": "High → Medium: development-only dependency pytest@7.0.0"}
    assert enriched(lake, fixable) == {
        "final_severity": "high", "severity_steps": 0,
        "severity_factors": [{"name": "fix_available", "direction": "explain", "steps": 0,
                              "evidence": "requests to 2.32.0"}],
        "severity_explanation": "High (unchanged): fix available: upgrade requests to 2.32.0"}


def test_inactive_repository_lowers(lake):
    repo = lake.repository("dusty", changed_days_ago=200)
    fid = lake.finding(repo, "bandit", "B105", severity="high", file_path="app.py")
    lake.build()
    assert enriched(lake, fid)["severity_explanation"] == "High → Medium: no code change for 200 days"


def test_unsecured_secret_looking_variable_raises_secrets_findings(lake):
    repo, other = lake.repository("deployer"), lake.repository("quiet")
    variable = {"workspace": "acme", "level": "repository", "secured": False, "value_looks_secret": True}
    lake.add("raw", "pipeline_variables",
             {**variable, "repository_uuid": repo["repository_uuid"], "repository": "deployer", "key": "AWS_SECRET"},
             {**variable, "repository_uuid": None, "repository": None, "level": "workspace", "key": "NPM_TOKEN"},
             {**variable, "repository_uuid": repo["repository_uuid"], "repository": "deployer", "key": "REGION",
              "value_looks_secret": False},
             {**variable, "repository_uuid": repo["repository_uuid"], "repository": "deployer", "key": "DB_PASS",
              "secured": True})
    secret = lake.finding(repo, "secrets", "aws-key", severity="high", file_path="bitbucket-pipelines.yml")
    code = lake.finding(repo, "bandit", "B105", severity="high", file_path="app.py")
    elsewhere = lake.finding(other, "secrets", "aws-key", severity="high", file_path="ci.sh")
    lake.build()
    assert enriched(lake, secret)["severity_explanation"] == \
        "High → Critical: secret-looking pipeline variable AWS_SECRET, NPM_TOKEN is not secured"
    assert enriched(lake, code)["final_severity"] == "high"  # not a secrets finding
    assert enriched(lake, elsewhere)["severity_explanation"] == \
        "High → Critical: secret-looking pipeline variable NPM_TOKEN is not secured"  # the workspace variable


def test_factors_add_up_in_catalog_order_in_one_sentence(lake):
    repo = lake.repository("portal", private=False)
    lake.pipelines(repo, """
        pipelines:
          default:
            - step: {name: Preview, deployment: staging, script: [./preview.sh]}
    """)
    fid = lake.finding(repo, "secrets", "private-key", severity="critical", file_path="tests/fixtures/key.pem")
    lake.build()
    assert enriched(lake, fid) == {
        "final_severity": "high", "severity_steps": -1,
        "severity_factors": [
            {"name": "public_repository", "direction": "up", "steps": 1, "evidence": "acme/portal"},
            {"name": "test_or_example_path", "direction": "down", "steps": 1, "evidence": "tests/fixtures/"},
            {"name": "not_deployed_to_production", "direction": "down", "steps": 1, "evidence": "staging"}],
        "severity_explanation": "Critical → High: repository acme/portal is public; only under tests/fixtures/; "
                                "application not deployed to production (deploys to staging only)"}


def test_severity_stays_within_low_and_critical(lake):
    public = lake.repository("open", private=False)
    dusty = lake.repository("dusty", changed_days_ago=365)
    capped = lake.finding(public, "secrets", "aws-key", severity="critical", file_path="app.py")
    floored = lake.finding(dusty, "bandit", "B101", severity="low", file_path="tests/test_x.py")
    info = lake.finding(dusty, "bandit", "B999", severity="info", file_path="app.py")
    lake.build()
    assert enriched(lake, capped)["severity_explanation"] == "Critical (unchanged): repository acme/open is public"
    assert enriched(lake, floored)["severity_explanation"] == \
        "Low (unchanged): only under tests/; no code change for 365 days"
    assert enriched(lake, info)["final_severity"] == "info"


def test_catalog_conditions_are_exactly_those_the_sql_evaluates():
    sql = (SQL_DIR / "severity_evidence.sql").read_text()
    assert set(re.findall(r"'([a-z_]+)' AS condition", sql)) == set(CONDITIONS)
    assert {f.condition for f in load_factor_catalog().factors} == set(CONDITIONS)


def test_a_bad_factor_catalog_lists_every_problem(tmp_path):
    path = tmp_path / "factors.yaml"
    path.write_text("""
factors:
  - {name: a, condition: moon_phase, direction: up, steps: 1, sentence: x}
  - {name: b, condition: test_path, direction: explain, steps: 2, sentence: x}
  - {name: a, condition: test_path, direction: sideways, steps: 1, sentence: x}
""")
    with pytest.raises(ConfigError) as caught:
        load_factor_catalog(path)
    assert caught.value.problems == [
        "factors[0] (a).condition: unknown condition 'moon_phase'; sql/severity_evidence.sql knows "
        + ", ".join(CONDITIONS),
        "factors[1] (b): 'explain' factors take 0 steps; 'up' and 'down' factors at least 1",
        "factors[2] (a).direction: Input should be 'up', 'down' or 'explain'",
    ]
