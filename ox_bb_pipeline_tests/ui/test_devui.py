"""`ox-bb demo --ui` and the dev Dagster home behind it: production's limits on a SQLite instance
of its own, connection partitions registered up front, a clear refusal of a port already taken,
and Ctrl-C stopping Dagster and the sandbox."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import requests
import yaml

from ox_bb_pipeline_tests.conftest import TINY
from ox_bb_pipeline_tests.ui.conftest import free_port, wait_until_answering
from ox_bb_sandbox.devui import prepare_dagster_home, sandbox_ui

OX_BB = str(Path(sys.executable).with_name("ox-bb"))


def test_the_dev_home_has_production_limits_and_the_partitions(tmp_path):
    home = tmp_path / "dagster"
    prepare_dagster_home(home, ["cloud-a", "cloud-b"])
    prepare_dagster_home(home, ["cloud-b", "cloud-c"])  # again, as the next `ox-bb demo --ui` does

    settings = yaml.safe_load((home / "dagster.yaml").read_text())
    assert settings["telemetry"] == {"enabled": False}
    assert settings["nux"] == {"enabled": False}  # no community dialog over the UI's own dialogs
    assert "sqlite" in settings["storage"]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.event_log_storage.get_concurrency_info("duckdb_writer").slot_count == 1
        config = instance.get_concurrency_config()
        assert config.pool_config.default_pool_limit == 4  # bitbucket_api, scanners
        assert config.run_queue_config.max_concurrent_runs == 8
        assert config.run_queue_config.tag_concurrency_limits == [
            {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
        ]
        partitions = instance.get_dynamic_partitions("connections")
        assert sorted(partitions) == ["cloud-a", "cloud-b", "cloud-c"]


def test_the_sandbox_ui_environment_points_dagster_at_the_sandbox(tmp_path):
    with sandbox_ui(tmp_path / "home", TINY) as dev:
        env = dev.environment()
        connections = yaml.safe_load(Path(env["OX_BB_CONNECTIONS"]).read_text())
        assert {c["host_url"] for c in connections["connections"]} == {dev.sandbox.api_url}
        assert Path(env["DAGSTER_HOME"]) == tmp_path / "home" / "dagster"
        assert Path(env["OX_BB_HOME"]) == tmp_path / "home"
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            assert "sandbox-token" in instance.get_dynamic_partitions("connections")
        workspace = yaml.safe_load((dev.dagster_home / "workspace.yaml").read_text())
        location = workspace["load_from"][0]["python_module"]
        assert location["module_name"] == "ox_bb_pipeline.definitions"


def test_demo_ui_refuses_a_port_in_use_before_starting_anything(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [OX_BB, "demo", "--ui", "--port", str(port)],
            capture_output=True,
            text=True,
            env={**os.environ, "OX_BB_HOME": str(tmp_path)},
            timeout=120,
            check=False,
        )

    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use; choose another with --port" in result.stderr
    assert not (tmp_path / "dagster").exists()


def test_demo_ui_serves_the_ui_and_ctrl_c_stops_dagster_and_the_sandbox(tmp_path):
    port, log = free_port(), tmp_path / "demo-ui.log"
    with open(log, "wb") as output:
        # A session of its own stands in for the terminal; SIGINT to ox-bb alone is Ctrl-C there.
        process = subprocess.Popen(
            [OX_BB, "demo", "--ui", "--port", str(port), "--workspaces", "1", "--repos", "1"],
            env={**os.environ, "OX_BB_HOME": str(tmp_path)},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until_answering(f"http://127.0.0.1:{port}", process, log)
            sandbox = re.search(r"^sandbox\s+(http://127.0.0.1:\d+)", log.read_text(), re.MULTILINE)[1]
            assert requests.get(f"{sandbox}/_sandbox/stats", timeout=10).ok

            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=120) == 0
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    for url in (f"http://127.0.0.1:{port}/server_info", f"{sandbox}/_sandbox/stats"):
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=10)
