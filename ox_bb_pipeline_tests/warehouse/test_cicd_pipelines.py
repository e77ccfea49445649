"""cicd_pipelines: one row per pipeline definition of bitbucket-pipelines.yml, with the last run,
and one row with the reason for a file that cannot be read safely."""

from __future__ import annotations

from .conftest import days_ago

PIPELINES = """
    image: python:3.12

    definitions:
      steps:
        - step: &test
            name: Test
            script: [pytest]

    pipelines:
      default:
        - step: *test
      branches:
        main:
          - parallel:
              steps:
                - step: *test
                - step:
                    name: Lint
                    image: node:20
                    script: [npm run lint]
          - stage:
              name: Release
              deployment: prod-eu
              trigger: manual
              steps:
                - step:
                    name: Upload
                    script:
                      - pipe: atlassian/aws-s3-deploy:1.1.0
                        variables: {S3_BUCKET: site}
                - step:
                    name: Notify
                    script: [./notify.sh]
      pull-requests:
        '**':
          - step:
              name: PR checks
              runs-on: [self.hosted, linux]
              services: [docker]
              script: [make check]
      custom:
        rotate-keys:
          - step:
              name: Rotate
              deployment: staging
              script: [./rotate.sh]
"""


def test_one_row_per_pipeline_definition_with_its_last_run(lake):
    repo = lake.repository("api")
    lake.pipelines(repo, PIPELINES)
    lake.environment(repo, "prod-eu", "Production")
    lake.environment(repo, "staging", "Staging")
    run = {"workspace": "acme", "repository_uuid": repo["repository_uuid"], "repository": "api", "state": "COMPLETED"}
    lake.add(
        "raw",
        "pipeline_runs",
        {
            **run,
            "build_number": 41,
            "selector_type": "branches",
            "selector_pattern": "main",
            "result": "FAILED",
            "created_on": days_ago(2),
        },
        {
            **run,
            "build_number": 42,
            "selector_type": "branches",
            "selector_pattern": "main",
            "result": "SUCCESSFUL",
            "created_on": days_ago(1),
        },
        {
            **run,
            "build_number": 40,
            "selector_type": "pull-requests",
            "selector_pattern": "**",
            "result": "SUCCESSFUL",
            "created_on": days_ago(3),
        },
    )
    lake.build()
    rows = lake.rows(
        "SELECT * EXCLUDE (connection, workspace, repository_uuid, repository, repository_full_name, "
        "main_commit, last_run_at) "
        "FROM cicd_pipelines ORDER BY pipeline_key"
    )
    base = {
        "imported": None,
        "parse_error": None,
        "last_run_state": None,
        "last_run_result": None,
        "last_run_build_number": None,
        "runners": [],
        "services": [],
        "pipes": [],
        "deployments": [],
        "production_deployments": [],
        "deploys_to_production": False,
        "manual_steps": 0,
        "uses_self_hosted_runner": False,
    }
    assert rows == [
        {
            **base,
            "pipeline_key": "branches:main",
            "selector_type": "branches",
            "selector_pattern": "main",
            "step_count": 4,
            "steps": ["Test", "Lint", "Upload", "Notify"],
            "images": ["python:3.12", "node:20"],
            "pipes": ["atlassian/aws-s3-deploy:1.1.0"],
            "deployments": ["prod-eu"],
            "production_deployments": ["prod-eu"],
            "deploys_to_production": True,
            "manual_steps": 2,
            "last_run_state": "COMPLETED",
            "last_run_result": "SUCCESSFUL",
            "last_run_build_number": 42,
        },
        {
            **base,
            "pipeline_key": "custom:rotate-keys",
            "selector_type": "custom",
            "selector_pattern": "rotate-keys",
            "step_count": 1,
            "steps": ["Rotate"],
            "images": ["python:3.12"],
            "deployments": ["staging"],
        },
        {
            **base,
            "pipeline_key": "default",
            "selector_type": "default",
            "selector_pattern": None,
            "step_count": 1,
            "steps": ["Test"],
            "images": ["python:3.12"],
        },
        {
            **base,
            "pipeline_key": "pull-requests:**",
            "selector_type": "pull-requests",
            "selector_pattern": "**",
            "step_count": 1,
            "steps": ["PR checks"],
            "images": ["python:3.12"],
            "runners": ["self.hosted+linux"],
            "uses_self_hosted_runner": True,
            "services": ["docker"],
            "last_run_state": "COMPLETED",
            "last_run_result": "SUCCESSFUL",
            "last_run_build_number": 40,
        },
    ]
    assert lake.rows("SELECT deployments, deploys_to_production, production_evidence FROM repositories") == [
        {
            "deployments": ["prod-eu", "staging"],
            "deploys_to_production": True,
            "production_evidence": "branches:main → prod-eu",
        }
    ]


def test_unreadable_files_give_one_row_with_the_reason(lake):
    broken, bomb = lake.repository("broken"), lake.repository("bomb")
    lake.pipelines(broken, "pipelines:\n  default: [\n")
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"] + [
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]" for i in range(7)
    ]
    lake.pipelines(bomb, "\n".join(levels) + "\npipelines: {default: [{step: {script: [*h]}}]}\n")
    lake.build()
    rows = {r["repository"]: r for r in lake.rows("SELECT repository, pipeline_key, parse_error FROM cicd_pipelines")}
    assert set(rows) == {"broken", "bomb"}
    assert rows["broken"]["pipeline_key"] is None and "invalid YAML" in rows["broken"]["parse_error"]
    assert rows["bomb"]["pipeline_key"] is None and "YAML bomb" in rows["bomb"]["parse_error"]


def test_each_file_is_parsed_once_and_not_again_by_the_next_build(lake, monkeypatch):
    from ox_bb_pipeline.warehouse import pipelines

    calls = []
    real_parse = pipelines.parse
    monkeypatch.setattr(pipelines, "parse", lambda text: calls.append(text) or real_parse(text))
    same = "pipelines:\n  default:\n    - step: {name: Test, script: [make test]}\n"
    for slug in ("one", "two"):
        lake.pipelines(lake.repository(slug), same)
    lake.build()
    assert len(calls) == 1
    assert lake.rows("SELECT repository, pipeline_key, steps FROM cicd_pipelines ORDER BY 1") == [
        {"repository": "one", "pipeline_key": "default", "steps": ["Test"]},
        {"repository": "two", "pipeline_key": "default", "steps": ["Test"]},
    ]
    lake.pipelines(lake.repository("three"), same.replace("Test", "Check"))
    lake.build()
    assert len(calls) == 2  # only the new file
    assert lake.value("SELECT count(*) FROM cicd_pipelines") == 3


def test_rows_taken_from_the_last_build_are_those_parsing_every_file_gives(lake):
    from datetime import timedelta

    from ox_bb_pipeline.warehouse import pipelines

    from .conftest import NOW

    same = "pipelines:\n  default:\n    - step: {name: Test, script: [make test]}\n"
    for slug, yml in [
        ("kept", PIPELINES),
        ("changed", same),
        ("gone", same),
        ("broken", "pipelines:\n  default: [\n"),
        ("no_pipelines", "image: python:3.12\n"),
    ]:
        lake.pipelines(lake.repository(slug), yml)
    lake.pipelines(lake.repository("twice", connection="other"), same, connection="other")
    lake.build()
    configs = lake.tables[("raw", "pipeline_configs", "main")]
    configs[:] = [c for c in configs if c["repository"] != "gone"]
    next(c for c in configs if c["repository"] == "changed")["yml"] = same.replace("Test", "Check")
    lake.pipelines(lake.repository("new"), PIPELINES)  # a file the last build parsed, in another repository
    lake.pipelines(lake.repository("twice"), same)  # a file parsed for the other connection
    lake.build(now=NOW + timedelta(days=1))

    def rows(table: list[dict]) -> list[tuple]:
        return sorted((tuple(tuple(v) if isinstance(v, list) else v for v in row.values()) for row in table), key=repr)

    every = [c for (zone, table, _), rows_ in lake.tables.items() if table == "pipeline_configs" for c in rows_]
    expected = pipelines.pipeline_definitions(every).to_pylist()
    assert {"kept", "changed", "broken", "new", "twice"} <= {r["repository"] for r in expected}
    assert "gone" not in {r["repository"] for r in expected}
    assert rows(lake.rows("SELECT * FROM pipeline_definitions")) == rows(expected)
