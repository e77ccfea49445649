"""The Dagster UI explains the pipeline without the code: every asset says what it is (group,
description, owners, kinds), every job, schedule and sensor says what it does, and the tables of
the lake show their columns before anything has run.

General on purpose: assets, jobs and sensors added later are held to the same standard.
"""

from __future__ import annotations

import dagster as dg
import pytest

from ox_bb_pipeline.definitions import defs

STAGE_GROUPS = {"bitbucket", "scanning", "warehouse", "reports"}
# Kinds the UI shows as badges; each says where data comes from or lands. Add one here on purpose.
ALLOWED_KINDS = {"bitbucket", "git", "duckdb", "parquet", "html", "csv", "sqlite", "json"}
LAKE_GROUPS = {"bitbucket", "scanning"}  # one Parquet table per asset, schema known up front

DEFINITIONS = defs()
SPECS = sorted(DEFINITIONS.resolve_all_asset_specs(), key=lambda s: s.key.to_user_string())


def spec_id(spec: dg.AssetSpec) -> str:
    return spec.key.to_user_string()


def test_the_stage_groups_all_exist():
    assert STAGE_GROUPS <= {spec.group_name for spec in SPECS}


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_every_asset_has_a_group_description_owners_and_kinds(spec):
    assert spec.group_name and spec.group_name != "default", "put the asset in its stage's group"
    assert spec.key.path[0] == spec.group_name, "asset keys are prefixed with their group"
    assert spec.description and spec.description.strip(), "say what the asset holds"
    assert spec.owners, "name an owning team (owners=['team:…'])"
    assert spec.kinds, "give the asset kinds (where its data comes from and lands)"
    assert spec.kinds <= ALLOWED_KINDS, f"unknown kinds {spec.kinds - ALLOWED_KINDS}"


@pytest.mark.parametrize("spec", [s for s in SPECS if s.group_name in LAKE_GROUPS], ids=spec_id)
def test_lake_tables_show_their_columns_before_any_run(spec):
    schema = spec.metadata.get("dagster/column_schema")
    assert isinstance(schema, dg.TableSchema), "declare metadata={'dagster/column_schema': …}"
    assert schema.columns and all(c.name and c.type for c in schema.columns)


def user_jobs() -> list[dg.JobDefinition]:
    # Dagster's implicit asset job (`__ASSET_JOB`) is not ours to describe.
    return [job for job in DEFINITIONS.resolve_all_job_defs() if not job.name.startswith("__")]


def test_every_job_schedule_and_sensor_has_a_description():
    described = {
        **{f"job {j.name}": j.description for j in user_jobs()},
        **{f"schedule {s.name}": s.description for s in DEFINITIONS.schedules or []},
        **{f"sensor {s.name}": s.description for s in DEFINITIONS.sensors or []},
    }
    assert "job verify_connectivity" in described and "sensor connections_sensor" in described
    missing = sorted(name for name, text in described.items() if not (text or "").strip())
    assert not missing, f"add a description to: {', '.join(missing)}"


def test_every_asset_check_says_what_it_checks():
    graph = DEFINITIONS.resolve_asset_graph()
    missing = sorted(
        key.to_user_string()
        for key in graph.asset_check_keys
        if not (graph.get_check_spec(key).description or "").strip()
    )
    assert not missing, f"add a description to the checks: {', '.join(missing)}"
