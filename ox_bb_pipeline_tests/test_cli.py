"""The `ox-bb` command, run as a user runs it: a subprocess against a sandbox started here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ox_bb_pipeline import lake
from ox_bb_pipeline.sandbox.server import SandboxServer
from ox_bb_pipeline_tests.conftest import TINY

OX_BB = str(Path(sys.executable).with_name("ox-bb"))
WRONG_TOKEN = "ATATT3x-wrong-token-for-the-cli"


def ox_bb(*args: str, home: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    # A wide terminal, so rich's tables keep scope names on one line.
    env = {**os.environ, "OX_BB_HOME": str(home), "COLUMNS": "200"}
    env.pop("DAGSTER_HOME", None)
    return subprocess.run([OX_BB, *args], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.mark.parametrize("command", [[], ["verify"], ["run"], ["demo"]])
def test_every_command_has_help(command, tmp_path):
    result = ox_bb(*command, "--help", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Usage: ox-bb" in result.stdout


@pytest.fixture(scope="module")
def sandbox_files(tmp_path_factory):
    """A tiny sandbox and its connections file, plus a connection whose token is wrong."""
    root = tmp_path_factory.mktemp("cli")
    with SandboxServer(TINY) as server:
        path = server.write_connections(root / "connections.yaml")
        document = yaml.safe_load(path.read_text())
        document["connections"].append({"name": "wrong-token", "method": "token", "host_url": server.api_url,
                                        "email": "alice@example.com", "api_token": "${OX_BB_WRONG_TOKEN}"})
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        with open(root / "connections.yaml.env", "a") as env_file:
            env_file.write(f"OX_BB_WRONG_TOKEN={WRONG_TOKEN}\n")
        yield path


def test_verify_prints_a_table_per_connection(sandbox_files, tmp_path):
    result = ox_bb("verify", "--connections", str(sandbox_files), home=tmp_path)

    assert result.returncode == 1  # the wrong token makes one connection unusable
    for name in ("sandbox-app", "sandbox-idp", "sandbox-token", "sandbox-token-member", "sandbox-token-limited",
                 "sandbox-access-token"):
        assert f"{name} (" in result.stdout
    assert result.stdout.count("what stops working") == 6  # one table each; the unusable one has none
    assert WRONG_TOKEN not in result.stdout + result.stderr


def test_verify_exits_2_for_a_connection_missing_scopes_and_says_what_stops_working(sandbox_files, tmp_path):
    result = ox_bb("verify", "--connections", str(sandbox_files), "--connection", "sandbox-token-limited",
                   home=tmp_path)

    assert result.returncode == 2, result.stdout + result.stderr
    assert "degraded" in result.stdout
    assert "read:pullrequest:bitbucket" in result.stdout
    assert "pull_requests" in result.stdout  # what stops working without it
    assert "admin:repository:bitbucket" in result.stdout
    assert "sandbox-token (" not in result.stdout  # only the connection asked for


def test_verify_exits_0_for_a_connection_with_every_capability(sandbox_files, tmp_path):
    result = ox_bb("verify", "--connections", str(sandbox_files), "--connection", "sandbox-token", home=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "sandbox-token (token) — ok" in result.stdout
    statuses = [line.split("│")[2].strip() for line in result.stdout.splitlines() if line.startswith("│")]
    assert len(statuses) >= 8 and set(statuses) == {"ok"}


def test_verify_says_when_sca_has_no_advisory_data_and_how_to_fix_it(sandbox_files, tmp_path, monkeypatch):
    monkeypatch.delenv("OX_BB_OSV_PATH")
    result = ox_bb("verify", "--connections", str(sandbox_files), "--connection", "sandbox-token", home=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr  # a warning: Bitbucket access itself works
    assert ("warning: no advisory data: SCA is not evaluated; run `ox-bb advisories sync` (or point "
            "OX_BB_OSV_PATH at OSV records)") in result.stdout


def test_verify_exits_1_for_a_connection_with_a_wrong_token(sandbox_files, tmp_path):
    result = ox_bb("verify", "--connections", str(sandbox_files), "--connection", "wrong-token", home=tmp_path)

    assert result.returncode == 1
    assert "failed" in result.stdout and "refused the credential" in result.stdout
    assert WRONG_TOKEN not in result.stdout + result.stderr


def test_run_extract_writes_the_connections_partitions(sandbox_files, tmp_path):
    result = ox_bb("run", "--stage", "extract", "--connections", str(sandbox_files), "--connection",
                   "sandbox-token", home=tmp_path, timeout=180)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "extract  sandbox-token ok: 2 repositories" in result.stdout
    assert "1 of 1 connection runs succeeded" in result.stdout
    written = tmp_path / "lake" / "raw" / "repositories" / "connection=sandbox-token" / "data.parquet"
    assert written.exists()
    assert {r["repository"] for r in lake.read_partition("raw", "repositories", "sandbox-token", tmp_path)} == {
        "python-service", "node-web"}
