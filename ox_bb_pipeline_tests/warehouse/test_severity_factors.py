"""Severity factors: each factor of the catalog on its own, with its exact sentence and the findings it
is relevant to (and not), then together; the one-step cap on raising, the floor, `at_least`; and the
catalog itself (data validated against the conditions SQL knows, a rationale for every factor)."""

from __future__ import annotations

import re

import pytest

from ox_bb_pipeline.config import ConfigError
from ox_bb_pipeline.warehouse.models import SQL_DIR
from ox_bb_pipeline.warehouse.settings import CONDITIONS, SeverityFactorCatalog, load_factor_catalog, load_settings


def test_no_factor_keeps_the_base_severity_and_says_so(lake):
    repo = lake.repository("api")
    fid = lake.finding(repo, "bandit", "B608", severity="high", file_path="app/db.py")
    lake.build()
    assert lake.severity(fid) == {
        "final_severity": "high",
        "severity_steps": 0,
        "severity_factors": [],
        "severity_explanation": "High: the base severity of rule B608; no severity factor applies",
    }


def test_public_repository_raises_secrets_sca_and_exploitable_sast_only(lake):
    repo = lake.repository("site", private=False)
    sqli = lake.finding(repo, "bandit", "B608", severity="medium", file_path="app/db.py", cwe="CWE-89")
    key = lake.finding(repo, "secrets", "aws-access-key", severity="high", file_path="app/settings.py")
    dep = lake.finding(
        repo, "sca", "GHSA-1", severity="medium", file_path="requirements.txt", package="requests", version="2.19.0"
    )
    md5 = lake.finding(repo, "bandit", "B324", severity="medium", file_path="app/auth.py", cwe="CWE-327")
    docker = lake.finding(repo, "checkov", "CKV_DOCKER_4", severity="low", file_path="Dockerfile")
    admins = lake.finding(repo, "posture", "BB-020", severity="medium", anchor="admins")
    lake.build()
    assert lake.severity(sqli) == {
        "final_severity": "high",
        "severity_steps": 1,
        "severity_factors": [{"name": "public_repository", "direction": "up", "steps": 1, "evidence": "acme/site"}],
        "severity_explanation": "Medium → High: repository acme/site is public",
    }
    assert lake.severity(key)["severity_explanation"] == "High → Critical: repository acme/site is public"
    assert lake.severity(dep)["severity_explanation"] == "Medium → High: repository acme/site is public"
    for hygiene, base in ((md5, "Medium"), (docker, "Low"), (admins, "Medium")):
        assert lake.severity(hygiene)["severity_factors"] == []
        assert lake.severity(hygiene)["severity_explanation"].startswith(f"{base}: the base severity of rule")


def test_production_deployment_raises_and_staging_only_lowers_code_not_secrets(lake):
    prod, staging = lake.repository("prod-app"), lake.repository("staging-app")
    lake.pipelines(
        prod,
        """
        pipelines:
          branches:
            main:
              - step: {name: Build, script: [make]}
              - step: {name: Ship, deployment: live-eu, script: [./ship.sh]}
    """,
    )
    lake.environment(prod, "live-eu", "Production")
    lake.pipelines(
        staging,
        """
        pipelines:
          default:
            - step: {name: Preview, deployment: staging, script: [./preview.sh]}
    """,
    )
    in_prod = lake.finding(prod, "semgrep", "sqli", severity="medium", file_path="src/q.js", cwe="CWE-89")
    copy_not_add = lake.finding(prod, "checkov", "CKV_DOCKER_4", severity="low", file_path="Dockerfile")
    in_staging = lake.finding(staging, "semgrep", "sqli", severity="medium", file_path="src/q.js", cwe="CWE-89")
    staging_key = lake.finding(staging, "secrets", "slack-token", severity="high", file_path="src/notify.js")
    lake.build()
    assert (
        lake.severity(in_prod)["severity_explanation"]
        == "Medium → High: deployed to production (branches:main → live-eu)"
    )
    assert lake.severity(copy_not_add)["final_severity"] == "low"
    assert (
        lake.severity(in_staging)["severity_explanation"]
        == "Medium → Low: application not deployed to production (deploys to staging only)"
    )
    assert lake.severity(staging_key)["final_severity"] == "high"  # a credential works wherever it was meant for


def test_business_priority_set_by_hand_raises_and_low_lowers_code_not_secrets(lake):
    lake.config(
        "applications.yaml",
        """
        applications:
          - name: core
            repositories: [{repository: core}]
            business_priority: critical
          - name: sandbox
            repositories: [{repository: sandbox}]
            business_priority: low
    """,
    )
    core, sandbox = lake.repository("core"), lake.repository("sandbox")
    high = lake.finding(core, "bandit", "B602", severity="medium", file_path="core/run.py")
    low = lake.finding(sandbox, "bandit", "B602", severity="medium", file_path="run.py")
    key = lake.finding(sandbox, "secrets", "aws-secret-key", severity="critical", file_path="run.py")
    lake.build()
    assert (
        lake.severity(high)["severity_explanation"]
        == "Medium → High: business-critical application (set in applications.yaml)"
    )
    assert (
        lake.severity(low)["severity_explanation"] == "Medium → Low: low business priority (set in applications.yaml)"
    )
    assert lake.severity(key)["final_severity"] == "critical"


def test_computed_business_priority_does_not_count_production_deployment_twice(lake):
    lake.config(
        "applications.yaml",
        """
        defaults: {data_classification: restricted}
    """,
    )
    prod = lake.repository("prod-app")
    lake.pipelines(
        prod,
        """
        pipelines:
          branches:
            main:
              - step: {name: Ship, deployment: production, script: [./ship.sh]}
    """,
    )
    lake.environment(prod, "production", "Production")
    fid = lake.finding(prod, "bandit", "B602", severity="medium", file_path="run.py", cwe="CWE-78")
    lake.build()
    assert lake.value("SELECT business_priority FROM applications") == "critical"  # production 2 + restricted 2
    assert [k["name"] for k in lake.severity(fid)["severity_factors"]] == ["production_deployment"]


@pytest.mark.parametrize(
    ("path", "evidence"),
    [
        ("tests/fixtures/legacy_settings.py", "test code under tests/fixtures/"),
        ("src/test/java/com/example/HasherTest.java", "test code under src/test/"),
        ("examples/quickstart.py", "example code under examples/"),
        ("tests/integration/fixtures/db/seed.sql", "test code under tests/"),
        ("pkg/worker_test.go", "test code pkg/worker_test.go"),
        ("web/src/app.spec.ts", "test code web/src/app.spec.ts"),
        ("api/v1/types.pb.go", "generated code api/v1/types.pb.go"),
    ],
)
def test_test_example_and_generated_code_lowers_sast(lake, path, evidence):
    repo = lake.repository("svc")
    fid = lake.finding(repo, "semgrep", "eval", severity="critical", file_path=path, cwe="CWE-95")
    lake.build()
    assert lake.severity(fid)["severity_explanation"] == f"Critical → High: only in {evidence}"


def test_code_context_lowers_sast_and_iac_never_secrets_and_no_exposure_factor_cancels_it(lake):
    repo = lake.repository("portal", private=False)
    lake.pipelines(
        repo,
        """
        pipelines:
          branches:
            main:
              - step: {name: Ship, deployment: production, script: [./ship.sh]}
    """,
    )
    lake.environment(repo, "production", "Production")
    lake.add(
        "raw",
        "pipeline_variables",
        {
            "workspace": "acme",
            "repository_uuid": repo["repository_uuid"],
            "repository": "portal",
            "key": "TOKEN",
            "level": "repository",
            "secured": False,
            "value_looks_secret": True,
        },
    )
    sast = lake.finding(repo, "semgrep", "sqli", severity="high", file_path="tests/fixtures/db.py", cwe="CWE-89")
    iac = lake.finding(repo, "checkov", "CKV_K8S_1", severity="medium", file_path="tests/k8s/pod.yaml")
    token = lake.finding(repo, "secrets", "slack-token", severity="high", file_path="tests/fixtures/settings.py")
    lake.build()
    assert lake.severity(sast) == {
        "final_severity": "medium",
        "severity_steps": -1,
        "severity_factors": [
            {"name": "code_context", "direction": "down", "steps": 1, "evidence": "test code under tests/fixtures/"}
        ],
        "severity_explanation": "High → Medium: only in test code under tests/fixtures/",
    }
    assert lake.severity(iac)["severity_explanation"] == "Medium → Low: only in test code under tests/"
    # a credential is exposed wherever it sits: public and in production, the test path lowers nothing;
    # the unsecured variable is its own finding and raises nothing else
    assert lake.severity(token)["severity_explanation"] == (
        "High → Critical: repository acme/portal is public; deployed to production (branches:main → production)"
    )


def test_development_only_dependency_lowers_and_fix_is_explained(lake):
    repo = lake.repository("shop")
    # black 23.1.0 is a development dependency in one manifest and not in the other: not development-only
    for manifest, name, version, dev in (
        ("requirements-dev.txt", "pytest", "7.0.0", True),
        ("requirements.txt", "requests", "2.19.0", False),
        ("requirements-dev.txt", "black", "23.1.0", True),
        ("requirements.txt", "black", "23.1.0", False),
    ):
        lake.add(
            "inventory",
            "components",
            {
                "workspace": "acme",
                "repository_uuid": repo["repository_uuid"],
                "repository": "shop",
                "ecosystem": "PyPI",
                "name": name,
                "version": version,
                "manifest": manifest,
                "direct": True,
                "dev_only": dev,
            },
        )
    dev_dep = lake.finding(
        repo, "sca", "GHSA-dev", severity="high", file_path="requirements-dev.txt", package="pytest", version="7.0.0"
    )
    fixable = lake.finding(
        repo,
        "sca",
        "GHSA-fix",
        severity="high",
        file_path="requirements.txt",
        package="requests",
        version="2.19.0",
        fixed_version="2.32.0",
    )
    mixed = lake.finding(
        repo, "sca", "GHSA-mix", severity="high", file_path="requirements.txt", package="black", version="23.1.0"
    )
    lake.build()
    assert lake.severity(mixed)["severity_factors"] == []
    assert lake.severity(dev_dep) == {
        "final_severity": "medium",
        "severity_steps": -1,
        "severity_factors": [
            {"name": "development_dependency", "direction": "down", "steps": 1, "evidence": "pytest@7.0.0"}
        ],
        "severity_explanation": "High → Medium: development-only dependency pytest@7.0.0",
    }
    assert lake.severity(fixable) == {
        "final_severity": "high",
        "severity_steps": 0,
        "severity_factors": [
            {"name": "fix_available", "direction": "explain", "steps": 0, "evidence": "requests to 2.32.0"}
        ],
        "severity_explanation": "High (unchanged): fix available: upgrade requests to 2.32.0",
    }


def test_inactive_repository_lowers_code_but_never_a_secret_or_posture(lake):
    repo = lake.repository("dusty", changed_days_ago=1142)
    code = lake.finding(repo, "bandit", "B105", severity="high", file_path="app.py")
    key = lake.finding(repo, "secrets", "aws-secret-key", severity="critical", file_path="app/settings.py")
    writable = lake.finding(repo, "posture", "BB-017", severity="low", anchor="writable")
    lake.build()
    assert lake.severity(code)["severity_explanation"] == "High → Medium: no code change for 1142 days"
    assert lake.severity(key) == {
        "final_severity": "critical",
        "severity_steps": 0,
        "severity_factors": [],
        "severity_explanation": "Critical: the base severity of rule aws-secret-key; no severity factor applies",
    }
    assert lake.severity(writable)["severity_factors"] == []


def test_raising_stops_one_step_above_the_base_and_lowering_may_go_further(lake):
    lake.config(
        "applications.yaml",
        """
        applications:
          - {name: shop, repositories: [{repository: shop}], business_priority: critical}
          - {name: lab, repositories: [{repository: lab}], business_priority: low}
    """,
    )
    shop, lab = lake.repository("shop", private=False), lake.repository("lab", changed_days_ago=400)
    lake.pipelines(
        lab,
        """
        pipelines:
          default:
            - step: {name: Preview, deployment: staging, script: [./preview.sh]}
    """,
    )
    raised = lake.finding(shop, "semgrep", "sqli", severity="low", file_path="src/q.js", cwe="CWE-89")
    lowered = lake.finding(lab, "semgrep", "sqli", severity="critical", file_path="src/q.js", cwe="CWE-89")
    lake.build()
    assert lake.severity(raised) == {
        "final_severity": "medium",
        "severity_steps": 2,
        "severity_factors": [
            {"name": "public_repository", "direction": "up", "steps": 1, "evidence": "acme/shop"},
            {"name": "business_critical", "direction": "up", "steps": 1, "evidence": "set in applications.yaml"},
        ],
        "severity_explanation": "Low → Medium: repository acme/shop is public; business-critical application "
        "(set in applications.yaml) (raised one step at most)",
    }
    assert lake.severity(lowered)["severity_explanation"] == (
        "Critical → Low: application not deployed to production (deploys to staging only); "
        "low business priority (set in applications.yaml); no code change for 400 days"
    )


def test_severity_stays_within_low_and_critical(lake):
    public = lake.repository("open", private=False)
    dusty = lake.repository("dusty", changed_days_ago=365)
    capped = lake.finding(public, "secrets", "aws-key", severity="critical", file_path="app.py")
    floored = lake.finding(dusty, "bandit", "B101", severity="low", file_path="tests/test_x.py")
    info = lake.finding(dusty, "bandit", "B999", severity="info", file_path="app.py")
    lake.build()
    assert lake.severity(capped)["severity_explanation"] == "Critical (unchanged): repository acme/open is public"
    assert (
        lake.severity(floored)["severity_explanation"]
        == "Low (unchanged): only in test code under tests/; no code change for 365 days"
    )
    assert lake.severity(info)["final_severity"] == "info"


def test_at_least_lifts_past_the_cap(lake):
    catalog = load_factor_catalog().model_dump()
    catalog["factors"].append(
        {
            "name": "exploited",
            "condition": "fix_available",
            "direction": "up",
            "steps": 1,
            "at_least": "critical",
            "applies_to": [{"category": "sca"}],
            "sentence": "stand-in for a known-exploited vulnerability",
            "rationale": "test",
        }
    )
    settings = load_settings(lake.home).model_copy(update={"factors": SeverityFactorCatalog.model_validate(catalog)})
    repo = lake.repository("shop")
    fid = lake.finding(
        repo,
        "sca",
        "GHSA-x",
        severity="low",
        file_path="requirements.txt",
        package="requests",
        version="2.19.0",
        fixed_version="2.32.0",
    )
    lake.build(settings=settings)
    assert lake.severity(fid)["severity_explanation"] == (
        "Low → Critical: fix available: upgrade requests to 2.32.0; stand-in for a known-exploited vulnerability"
    )


def test_every_factor_has_a_rationale_and_a_scope():
    for factor in load_factor_catalog().factors:
        assert len(factor.rationale) > 40, factor.name
        assert factor.applies_to, factor.name


def test_catalog_conditions_are_exactly_those_the_sql_evaluates():
    sql = (SQL_DIR / "models" / "intermediate" / "severity_evidence.sql").read_text()
    assert set(re.findall(r"'([a-z_]+)' AS condition", sql)) == set(CONDITIONS)
    assert {f.condition for f in load_factor_catalog().factors} == set(CONDITIONS)


def test_a_bad_factor_catalog_lists_every_problem(tmp_path):
    path = tmp_path / "factors.yaml"
    path.write_text("""
factors:
  - {name: a, condition: moon_phase, direction: up, steps: 1, sentence: x, rationale: r, applies_to: [{category: sast}]}
  - {name: b, condition: fix_available, direction: explain, steps: 2, sentence: x, rationale: r,
     applies_to: [{category: sca}]}
  - {name: a, condition: fix_available, direction: sideways, steps: 1, sentence: x, rationale: r,
     applies_to: [{category: sca}]}
  - {name: c, condition: fix_available, direction: up, steps: 1, sentence: x, applies_to: []}
""")
    with pytest.raises(ConfigError) as caught:
        load_factor_catalog(path)
    assert caught.value.problems == [
        "factors[0] (a).condition: unknown condition 'moon_phase'; sql/severity_evidence.sql knows "
        + ", ".join(CONDITIONS),
        "factors[1] (b): 'explain' factors take 0 steps; 'up' and 'down' factors at least 1",
        "factors[2] (a).direction: Input should be 'up', 'down' or 'explain'",
        "factors[3] (c).applies_to: List should have at least 1 item after validation, not 0",
        "factors[3] (c).rationale: is required",
    ]
