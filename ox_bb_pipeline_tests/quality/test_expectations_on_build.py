"""The mart suites hold on a real warehouse build (a dbt build: in `make test`, not the unit tier, unlike the
rest of the suites' tests in test_expectations.py)."""

from __future__ import annotations

import pytest

from ox_bb_pipeline.quality.expectations import WAREHOUSE_SUITES, suite, validate
from ox_bb_pipeline.quality.frames import open_warehouse, warehouse_frame
from ox_bb_pipeline_tests.warehouse.conftest import NOW, Lake


@pytest.fixture
def lake(isolated_home) -> Lake:
    return Lake(isolated_home)


def test_the_mart_suites_hold_on_a_real_build_including_workspace_level_findings(lake):
    api = lake.repository("api")
    lake.scan(api, "bandit", "secrets")
    lake.finding(api, "bandit", "B105", file_path="app/config.py", severity="high")
    lake.finding(api, "secrets", "aws-key", file_path="deploy.sh", severity="info")  # no SLA
    workspace = {"workspace": "acme", "repository_uuid": "", "repository": "", "main_head": None}
    lake.finding(workspace, "posture", "BB-030", anchor="workspace setting")  # belongs to the workspace
    lake.build(NOW)

    with open_warehouse(lake.home) as con:
        results = {s.name: validate(s.name, warehouse_frame(con, s)) for s in WAREHOUSE_SUITES}
        assert warehouse_frame(con, suite("warehouse/findings"))["application"].tolist().count("workspace:acme") == 1

    assert all(r.passed for r in results.values()), "\n".join(r.summary() for r in results.values())
    assert results["warehouse/findings"].row_count == 3
