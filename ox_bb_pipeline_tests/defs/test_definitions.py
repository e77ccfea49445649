"""The Dagster code location: it loads, the extract assets are named and described as the lake's tables,
the sensor keeps one partition per connection, materializing a partition reports its tables, and the
verify job fails for a broken connection.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import yaml

from ox_bb_pipeline import lake
from ox_bb_pipeline.bitbucket import tables
from ox_bb_pipeline.definitions import defs
from ox_bb_pipeline.defs.bitbucket.assets import bitbucket_raw_tables
from ox_bb_pipeline.defs.bitbucket.jobs import verify_connectivity
from ox_bb_pipeline.defs.bitbucket.partitions import connections_partitions
from ox_bb_pipeline.defs.bitbucket.resources import BitbucketResource
from ox_bb_pipeline.defs.bitbucket.sensors import connections_sensor
from ox_bb_pipeline.defs.storage.resources import StorageResource

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_definitions_are_loadable():
    dg.Definitions.validate_loadable(defs())


def test_dagster_cli_validates_the_code_location_from_the_repository_root(tmp_path):
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run(
        [str(dagster), "definitions", "validate"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_every_raw_table_is_an_asset_in_the_bitbucket_group():
    specs = {spec.key: spec for spec in defs().resolve_all_asset_specs()}

    for table in tables.TABLES:
        spec = specs[dg.AssetKey(["bitbucket", table])]
        assert spec.group_name == "bitbucket"
        assert spec.description == tables.description(table)
        assert spec.kinds == {"bitbucket", "parquet"}
        assert spec.partitions_def == connections_partitions


def test_the_verify_job_and_the_connections_sensor_are_registered():
    definitions = defs()
    assert definitions.resolve_job_def("verify_connectivity").name == "verify_connectivity"
    assert definitions.resolve_sensor_def("connections_sensor").name == "connections_sensor"


# -- partitions follow connections.yaml -----------------------------------------------------------
def write_connections(path: Path, names: list[str]) -> Path:
    path.with_name(path.name + ".env").write_text("SOME_TOKEN=t0ken\n")
    path.write_text(
        yaml.safe_dump(
            {
                "env_file": path.name + ".env",
                "connections": [
                    {"name": n, "method": "token", "email": "alice@example.com", "api_token": "${SOME_TOKEN}"}
                    for n in names
                ],
            }
        )
    )
    return path


def sensor_tick(instance: dg.DagsterInstance, path: Path) -> dg.SensorResult:
    """Evaluate the sensor and apply its partition requests, as the sensor daemon does."""
    context = dg.build_sensor_context(
        instance=instance, resources={"bitbucket": BitbucketResource(connections_file=str(path))}
    )
    result = connections_sensor(context)
    for request in result.dynamic_partitions_requests or []:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
    return result


def test_the_sensor_adds_and_removes_partitions_as_the_file_changes(tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    path = write_connections(tmp_path / "connections.yaml", ["cloud-a", "cloud-b"])

    sensor_tick(instance, path)
    assert sorted(instance.get_dynamic_partitions("connections")) == ["cloud-a", "cloud-b"]

    write_connections(path, ["cloud-b", "cloud-c"])
    sensor_tick(instance, path)
    assert sorted(instance.get_dynamic_partitions("connections")) == ["cloud-b", "cloud-c"]

    assert sensor_tick(instance, path).skip_reason  # nothing to do when they already match


def test_the_sensor_leaves_partitions_alone_while_the_file_is_broken(tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    path = write_connections(tmp_path / "connections.yaml", ["cloud-a"])
    sensor_tick(instance, path)

    path.write_text(path.read_text().replace("method: token", "method: password"))
    result = sensor_tick(instance, path)

    assert "unknown method 'password'" in result.skip_reason.skip_message
    assert instance.get_dynamic_partitions("connections") == ["cloud-a"]


# -- running the assets and the job ---------------------------------------------------------------
def sandbox_connections(server, path: Path, names: list[str], broken: bool = False) -> Path:
    """The sandbox's connections file cut down to `names`, plus one refused token when `broken`."""
    server.write_connections(path)
    document = yaml.safe_load(path.read_text())
    document["connections"] = [c for c in document["connections"] if c["name"] in names]
    if broken:
        document["connections"].append(
            {
                "name": "broken-token",
                "method": "token",
                "host_url": server.api_url,
                "email": "alice@example.com",
                "api_token": "${OX_BB_BROKEN_TOKEN}",
            }
        )
        with open(path.with_name(path.name + ".env"), "a") as env_file:
            env_file.write("OX_BB_BROKEN_TOKEN=ATATT3x-not-a-valid-token\n")
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_materializing_one_partition_reports_row_counts_and_column_schemas(fresh_sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("OX_BB_HOME", str(tmp_path / "env-home"))  # the storage resource's home wins
    home = tmp_path / "home"
    path = sandbox_connections(fresh_sandbox, tmp_path / "connections.yaml", ["sandbox-token"])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("connections", ["sandbox-token"])

    result = dg.materialize(
        [bitbucket_raw_tables],
        partition_key="sandbox-token",
        instance=instance,
        resources={
            "bitbucket": BitbucketResource(connections_file=str(path)),
            "storage": StorageResource(home=str(home)),
        },
    )

    assert result.success
    reported = {
        m.asset_key.path[-1]: m.metadata for m in result.asset_materializations_for_node("bitbucket_raw_tables")
    }
    assert set(reported) == set(tables.TABLES)
    for table, metadata in reported.items():
        written = lake.read_partition("raw", table, "sandbox-token", home)
        assert metadata["dagster/row_count"].value == len(written), table
        assert [c.name for c in metadata["dagster/column_schema"].schema.columns] == [
            name for name, _, _ in tables.columns(table)
        ]
        assert metadata["rest_requests"].value > 0
    assert reported["repositories"]["dagster/row_count"].value == 2
    assert "python-service" in reported["repositories"]["preview"].value
    assert (home / "cache" / "state" / "extract-sandbox-token.json").is_file()
    assert not (tmp_path / "env-home" / "lake").exists()


def test_the_verify_job_passes_for_a_good_connection_and_fails_for_a_broken_one(fresh_sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("OX_BB_HOME", str(tmp_path / "home"))
    good = sandbox_connections(fresh_sandbox, tmp_path / "good.yaml", ["sandbox-token"])
    bad = sandbox_connections(fresh_sandbox, tmp_path / "bad.yaml", ["sandbox-token"], broken=True)

    passed = verify_connectivity.execute_in_process(
        resources={"bitbucket": BitbucketResource(connections_file=str(good))}
    )
    failed = verify_connectivity.execute_in_process(
        resources={"bitbucket": BitbucketResource(connections_file=str(bad))}, raise_on_error=False
    )

    assert passed.success
    assert passed.output_for_node("verify_connections") == {"sandbox-token": "ok"}
    assert not failed.success
    failure = next(e for e in failed.all_events if e.is_step_failure)
    assert failure.step_failure_data.user_failure_data.metadata["status"].value == {
        "sandbox-token": "ok",
        "broken-token": "failed",
    }
    assert not (tmp_path / "home" / "lake").exists()  # verifying writes no data
