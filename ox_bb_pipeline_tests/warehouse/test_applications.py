"""Repositories → applications: default mapping, applications.yaml rules, the monorepo split,
business priority (computed with reasons, or overridden) and irrelevant applications."""

from __future__ import annotations

from .conftest import days_ago


def test_each_repository_is_its_own_application_by_default(lake):
    lake.repository("web")
    lake.repository("api", workspace="beta")
    lake.repository("old-fork", selected=False)
    lake.build()
    assert lake.rows(
        "SELECT full_name, application, parent_application, is_monorepo_child, mapped_by "
        "FROM application_mapping ORDER BY 1"
    ) == [
        {
            "full_name": "acme/web",
            "application": "acme/web",
            "parent_application": None,
            "is_monorepo_child": False,
            "mapped_by": "default: one application per repository",
        },
        {
            "full_name": "beta/api",
            "application": "beta/api",
            "parent_application": None,
            "is_monorepo_child": False,
            "mapped_by": "default: one application per repository",
        },
    ]
    assert lake.value("SELECT count(*) FROM repositories") == 3  # the deselected one stays, flagged
    assert lake.value("SELECT selected FROM repositories WHERE repository = 'old-fork'") is False


def test_applications_yaml_groups_repositories_first_matching_entry_wins(lake):
    lake.config(
        "applications.yaml",
        """
        applications:
          - name: payments
            repositories:
              - {workspace: acme, project: PAY}
              - {repository: "ledger-*"}
            team: payments-team
            owners: [alice@example.com]
            data_classification: restricted
          - name: everything-acme
            repositories: [{workspace: acme}]
    """,
    )
    lake.repository("checkout", project="PAY")
    lake.repository("ledger-core", workspace="beta", project="FIN")
    lake.repository("web")
    lake.repository("api", workspace="beta")
    lake.build()
    assert lake.rows("SELECT full_name, application, mapped_by FROM application_mapping ORDER BY 1") == [
        {
            "full_name": "acme/checkout",
            "application": "payments",
            "mapped_by": "applications.yaml: payments (workspace acme, project PAY, repository *)",
        },
        {
            "full_name": "acme/web",
            "application": "everything-acme",
            "mapped_by": "applications.yaml: everything-acme (workspace acme, project *, repository *)",
        },
        {"full_name": "beta/api", "application": "beta/api", "mapped_by": "default: one application per repository"},
        {
            "full_name": "beta/ledger-core",
            "application": "payments",
            "mapped_by": "applications.yaml: payments (workspace *, project *, repository ledger-*)",
        },
    ]
    assert lake.rows(
        "SELECT application, repositories, repository_count, team, owners, data_classification "
        "FROM applications WHERE application = 'payments'"
    ) == [
        {
            "application": "payments",
            "repositories": ["acme/checkout", "beta/ledger-core"],
            "repository_count": 2,
            "team": "payments-team",
            "owners": ["alice@example.com"],
            "data_classification": "restricted",
        }
    ]


def test_monorepo_split_maps_each_finding_to_the_most_specific_child(lake):
    lake.config(
        "applications.yaml",
        """
        applications:
          - name: platform
            repositories: [{repository: mono}]
            team: platform
            children:
              - name: platform-payments
                paths: ["services/payments/*"]
                team: payments
              - name: platform-payments-api
                paths: ["services/payments/api/*"]
              - name: platform-web
                paths: ["web/*", "frontend/*"]
    """,
    )
    mono = lake.repository("mono")
    ids = {
        "api": lake.finding(mono, "bandit", "B105", file_path="services/payments/api/views.py"),
        "payments": lake.finding(mono, "bandit", "B105", file_path="services/payments/db.py"),
        "web": lake.finding(mono, "semgrep", "xss", file_path="frontend/app.js"),
        "root": lake.finding(mono, "bandit", "B105", file_path="scripts/deploy.py"),
        "setting": lake.finding(mono, "posture", "BB-003", file_path=None),
    }
    lake.build()
    assert lake.rows(
        "SELECT application, parent_application, path_glob, path_specificity FROM application_mapping "
        "ORDER BY application, path_glob"
    ) == [
        {"application": "platform", "parent_application": None, "path_glob": None, "path_specificity": None},
        {
            "application": "platform-payments",
            "parent_application": "platform",
            "path_glob": "services/payments/*",
            "path_specificity": 18,
        },
        {
            "application": "platform-payments-api",
            "parent_application": "platform",
            "path_glob": "services/payments/api/*",
            "path_specificity": 22,
        },
        {
            "application": "platform-web",
            "parent_application": "platform",
            "path_glob": "frontend/*",
            "path_specificity": 9,
        },
        {"application": "platform-web", "parent_application": "platform", "path_glob": "web/*", "path_specificity": 4},
    ]
    mapped = {
        r["finding_id"]: (r["application"], r["parent_application"])
        for r in lake.rows("SELECT finding_id, application, parent_application FROM findings")
    }
    assert mapped == {
        ids["api"]: ("platform-payments-api", "platform"),
        ids["payments"]: ("platform-payments", "platform"),
        ids["web"]: ("platform-web", "platform"),
        ids["root"]: ("platform", None),
        ids["setting"]: ("platform", None),
    }
    # children inherit what they do not set
    assert lake.rows("SELECT application, team, is_monorepo_child FROM applications ORDER BY 1") == [
        {"application": "platform", "team": "platform", "is_monorepo_child": False},
        {"application": "platform-payments", "team": "payments", "is_monorepo_child": True},
        {"application": "platform-payments-api", "team": "platform", "is_monorepo_child": True},
        {"application": "platform-web", "team": "platform", "is_monorepo_child": True},
    ]


def test_business_priority_is_computed_from_signals_with_reasons(lake):
    lake.config(
        "applications.yaml",
        """
        applications:
          - name: vault
            repositories: [{repository: vault}]
            data_classification: restricted
          - name: brochure
            repositories: [{repository: brochure}]
            data_classification: public
          - name: pinned
            repositories: [{repository: pinned}]
            business_priority: high
    """,
    )
    shop = lake.repository("shop")
    lake.repository("vault")
    lake.repository("brochure")
    lake.repository("pinned")
    lake.pipelines(
        shop,
        """
        pipelines:
          branches:
            main:
              - step: {name: Deploy, deployment: production, script: [./deploy.sh]}
    """,
    )
    lake.add(
        "raw",
        "main_branch_commits",
        *[
            {
                "workspace": "acme",
                "repository_uuid": shop["repository_uuid"],
                "repository": "shop",
                "commit": f"c{i}",
                "author": f"dev{i % 4}",
                "author_email": f"dev{i % 4}@example.com",
                "committed_at": days_ago(i),
            }
            for i in range(25)
        ],
    )
    lake.build()
    assert lake.rows(
        "SELECT application, business_priority_computed, business_priority, business_priority_source, "
        "business_priority_reasons FROM applications ORDER BY 1"
    ) == [
        {
            "application": "acme/shop",
            "business_priority_computed": "critical",
            "business_priority": "critical",
            "business_priority_source": "computed",
            "business_priority_reasons": [
                "deploys to production (+2)",
                "25 commits on main in 90 days (+1)",
                "4 contributors in 90 days (+1)",
            ],
        },
        {
            "application": "brochure",
            "business_priority_computed": "low",
            "business_priority": "low",
            "business_priority_source": "computed",
            "business_priority_reasons": ["public data only (-1)"],
        },
        {
            "application": "pinned",
            "business_priority_computed": "medium",
            "business_priority": "high",
            "business_priority_source": "override",
            "business_priority_reasons": ["set in applications.yaml"],
        },
        {
            "application": "vault",
            "business_priority_computed": "high",
            "business_priority": "high",
            "business_priority_source": "computed",
            "business_priority_reasons": ["restricted data (+2)"],
        },
    ]


def test_irrelevant_applications_keep_their_findings_flagged(lake):
    lake.config(
        "applications.yaml",
        """
        applications:
          - name: legacy
            repositories: [{repository: legacy-*}]
            irrelevant: decommissioned in 2025
    """,
    )
    stale = lake.repository("stale", changed_days_ago=400)
    lake.repository("empty", main_head=None)
    broken = lake.repository("broken")
    docs = lake.repository("docs-only")
    lake.repository("legacy-billing")
    live = lake.repository("live")
    lake.scan(broken, "secrets", "bandit", status="error", error="clone failed: 404")
    lake.scan(docs, "secrets", "bandit", files=0)
    lake.scan(live, "secrets")
    stale_finding = lake.finding(stale, "secrets", "aws-key", file_path="app.py", severity="critical")
    lake.build()
    assert lake.rows("SELECT application, is_relevant, irrelevant_reasons FROM applications ORDER BY 1") == [
        {
            "application": "acme/broken",
            "is_relevant": False,
            "irrelevant_reasons": ["not clonable: every scan failed to clone it"],
        },
        {
            "application": "acme/docs-only",
            "is_relevant": False,
            "irrelevant_reasons": ["no relevant files: the code scanners found nothing to scan"],
        },
        {
            "application": "acme/empty",
            "is_relevant": False,
            "irrelevant_reasons": ["empty repository: the main branch has no commit"],
        },
        {"application": "acme/live", "is_relevant": True, "irrelevant_reasons": []},
        {"application": "acme/stale", "is_relevant": False, "irrelevant_reasons": ["no code change in 400 days"]},
        {
            "application": "legacy",
            "is_relevant": False,
            "irrelevant_reasons": ["marked irrelevant in applications.yaml: decommissioned in 2025"],
        },
    ]
    assert lake.rows("SELECT finding_id, application_is_relevant FROM findings_queue") == [
        {"finding_id": stale_finding, "application_is_relevant": False}
    ]
    # the build's clock, not the system's, decides what is inactive
    assert lake.value("SELECT days_since_code_change FROM repositories WHERE repository = 'stale'") == 400
