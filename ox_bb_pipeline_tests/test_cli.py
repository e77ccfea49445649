"""The `ox-bb` command, run as a user runs it: a subprocess against a sandbox started here."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from ox_bb_pipeline import lake
from ox_bb_pipeline.config import remember_data_home
from ox_bb_pipeline_tests.conftest import TINY
from ox_bb_sandbox.control import FaultRule
from ox_bb_sandbox.server import SandboxServer

OX_BB = str(Path(sys.executable).with_name("ox-bb"))
WRONG_TOKEN = "ATATT3x-wrong-token-for-the-cli"


def ox_bb(*args: str, home: Path, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    # A wide terminal, so rich's tables keep scope names on one line.
    env = {**os.environ, "OX_BB_HOME": str(home), "COLUMNS": "200", **(env or {})}
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
        document["connections"].append(
            {
                "name": "wrong-token",
                "method": "token",
                "host_url": server.api_url,
                "email": "alice@example.com",
                "api_token": "${OX_BB_WRONG_TOKEN}",
            }
        )
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        with open(root / "connections.yaml.env", "a") as env_file:
            env_file.write(f"OX_BB_WRONG_TOKEN={WRONG_TOKEN}\n")
        yield path


def test_verify_prints_a_table_per_connection(sandbox_files, tmp_path):
    result = ox_bb("verify", "--connections", str(sandbox_files), home=tmp_path)

    assert result.returncode == 1  # the wrong token makes one connection unusable
    for name in (
        "sandbox-app",
        "sandbox-idp",
        "sandbox-token",
        "sandbox-token-member",
        "sandbox-token-limited",
        "sandbox-access-token",
    ):
        assert f"{name} (" in result.stdout
    assert result.stdout.count("what stops working") == 6  # one table each; the unusable one has none
    assert WRONG_TOKEN not in result.stdout + result.stderr


def test_verify_exits_2_for_a_connection_missing_scopes_and_says_what_stops_working(sandbox_files, tmp_path):
    result = ox_bb(
        "verify", "--connections", str(sandbox_files), "--connection", "sandbox-token-limited", home=tmp_path
    )

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
    assert (
        "warning: no advisory data: SCA is not evaluated; run `ox-bb advisories sync` (or point "
        "OX_BB_OSV_PATH at OSV records)"
    ) in result.stdout


def test_verify_exits_1_for_a_connection_with_a_wrong_token(sandbox_files, tmp_path):
    result = ox_bb("verify", "--connections", str(sandbox_files), "--connection", "wrong-token", home=tmp_path)

    assert result.returncode == 1
    assert "failed" in result.stdout and "refused the credential" in result.stdout
    assert WRONG_TOKEN not in result.stdout + result.stderr


def test_run_extract_writes_the_connections_partitions(sandbox_files, tmp_path):
    result = ox_bb(
        "run",
        "--stage",
        "extract",
        "--connections",
        str(sandbox_files),
        "--connection",
        "sandbox-token",
        home=tmp_path,
        timeout=180,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "extract  sandbox-token ok: 2 repositories" in result.stdout
    assert "1 connection(s): 1 ok, 0 degraded, 0 failed" in result.stdout
    written = tmp_path / "lake" / "raw" / "repositories" / "connection=sandbox-token" / "data.parquet"
    assert written.exists()
    assert {r["repository"] for r in lake.read_partition("raw", "repositories", "sandbox-token", tmp_path)} == {
        "python-service",
        "node-web",
    }


def test_run_with_one_scanner_failing_is_degraded_exits_2_and_names_the_counts_and_first_errors(
    sandbox_files, tmp_path
):
    tools = tmp_path / "tools"  # semgrep only: checkov is missing, so every checkov scan fails
    tools.mkdir()
    (tools / "semgrep").symlink_to(Path(__file__).parents[1] / ".tools" / "semgrep")
    result = ox_bb(
        "run",
        "--stage",
        "scan",
        "--connections",
        str(sandbox_files),
        "--connection",
        "sandbox-token",
        "--format",
        "json",
        home=tmp_path / "home",
        timeout=600,
        env={"OX_BB_TOOLS_DIR": str(tools)},
    )

    assert result.returncode == 2, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert document["status"] == "degraded" and document["exit_code"] == 2
    [connection] = document["connections"]
    assert connection["status"] == "degraded"
    assert connection["problems"] == {"checkov errors": 2}
    assert "checkov is not installed" in connection["first_errors"][0]
    assert [s["status"] for s in connection["stages"]] == ["ok", "degraded"]
    assert "scan     sandbox-token degraded:" in result.stderr  # progress goes to stderr with --format json
    [record] = pq.read_table(next((tmp_path / "home" / "lake" / "ops" / "run_failures").rglob("*.parquet"))).to_pylist()
    assert record["status"] == "degraded" and "checkov" in record["error"]


def test_run_fails_with_exit_1_not_0_when_the_sandbox_stops_after_extraction(tmp_path):
    with SandboxServer(TINY) as server:
        path = server.write_connections(tmp_path / "connections.yaml")
        extracted = ox_bb(
            "run",
            "--stage",
            "extract",
            "--connections",
            str(path),
            "--connection",
            "sandbox-token",
            home=tmp_path / "home",
            timeout=180,
        )
    assert extracted.returncode == 0, extracted.stdout + extracted.stderr

    result = ox_bb(
        "run",
        "--stage",
        "scan",
        "--connections",
        str(path),
        "--connection",
        "sandbox-token",
        home=tmp_path / "home",
        timeout=600,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "sandbox-token: failed" in result.stdout
    assert "1 connection(s): 0 ok, 0 degraded, 1 failed" in result.stdout


def test_a_refused_connection_fails_fast_in_one_line_without_a_stack_trace(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens once the probe is closed
    path = tmp_path / "connections.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "connections": [
                    {
                        "name": "nowhere",
                        "method": "token",
                        "host_url": f"http://127.0.0.1:{port}/2.0",
                        "email": "alice@example.com",
                        "api_token": "${OX_BB_NOWHERE_TOKEN}",
                    }
                ]
            }
        )
    )

    result = ox_bb(
        "run",
        "--stage",
        "extract",
        "--connections",
        str(path),
        home=tmp_path / "home",
        timeout=120,
        env={"OX_BB_NOWHERE_TOKEN": WRONG_TOKEN},
    )

    assert result.returncode == 1, result.stdout + result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("extract  nowhere FAILED")]
    assert f"UnreachableError: connection 'nowhere': cannot reach 127.0.0.1:{port}: connection refused" in line
    assert "Traceback" not in result.stdout + result.stderr and "retrying" not in result.stderr
    trace = (tmp_path / "home" / "logs" / "ox-bb-run.log").read_text()
    assert "step bitbucket_raw_tables" in trace and ", in _send" in trace  # kept for a bug report


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_run_with_128_plus_the_signal_and_never_starts_the_next_connection(tmp_path, signum, status):
    with SandboxServer(TINY, faults=[FaultRule.parse("/2.0/repositories/*=slow:0")]) as server:
        path = server.write_connections(tmp_path / "connections.yaml")
        env = {**os.environ, "OX_BB_HOME": str(tmp_path / "home")}
        env.pop("DAGSTER_HOME", None)
        process = subprocess.Popen(
            [OX_BB, "run", "--stage", "extract", "--connections", str(path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            first = process.stdout.readline()  # the first connection's extract has begun (its listing is slow)
            assert first.startswith("extract  sandbox-app …"), first + process.stderr.read()
            process.send_signal(signum)
            stdout, stderr = process.communicate(timeout=120)
        finally:
            process.kill()

    assert process.returncode == status, stdout + stderr
    assert "sandbox-idp" not in stdout  # the next connection never started
    assert f"interrupted by {signum.name}" in stderr and "Traceback" not in stderr


def test_query_outside_the_project_says_which_setting_is_missing_and_where_the_last_run_wrote(tmp_path, state_dir):
    remember_data_home(tmp_path / "project" / "data")  # as `ox-bb run` does
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("OX_BB_HOME", "DAGSTER_HOME")}

    result = subprocess.run(
        [OX_BB, "query", "SELECT 1"], capture_output=True, text=True, env=env, cwd=elsewhere, timeout=60
    )

    assert result.returncode == 1
    assert f"OX_BB_HOME is not set, so the data home is ./data in the current directory ({elsewhere})" in result.stderr
    assert f"ox-bb run last wrote {tmp_path / 'project' / 'data'}" in result.stderr


@pytest.mark.parametrize("columns", ["60", "80", "200", None])  # None: piped with no COLUMNS (rich: 80)
def test_verify_never_cuts_a_scope_name_at_any_width_or_when_piped(sandbox_files, tmp_path, columns):
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "DAGSTER_HOME")}
    env |= {"OX_BB_HOME": str(tmp_path)} | ({"COLUMNS": columns} if columns else {})
    result = subprocess.run(
        [OX_BB, "verify", "--connections", str(sandbox_files), "--connection", "sandbox-token-limited"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )

    assert result.returncode == 2, result.stdout + result.stderr
    scopes = {
        "read:pullrequest:bitbucket",
        "read:pipeline:bitbucket",
        "read:webhook:bitbucket",
        "admin:repository:bitbucket",
    }
    [listed] = [line for line in result.stdout.splitlines() if line.startswith("  missing: ")]
    assert set(listed.removeprefix("  missing: ").split()) == scopes
    table_cells = {
        cell.strip() for line in result.stdout.splitlines() if line.startswith("│") for cell in line.split("│")[3:4]
    }
    assert scopes <= table_cells  # whole in the table too, one line each
    assert not re.search(r"[a-z]+:[a-z:]*…", result.stdout)  # no cut name anywhere


def test_verify_json_gives_each_connections_status_and_missing_scopes_for_monitoring(sandbox_files, tmp_path):
    result = ox_bb(
        "verify",
        "--connections",
        str(sandbox_files),
        "--connection",
        "sandbox-token-limited",
        "--format",
        "json",
        home=tmp_path,
    )

    assert result.returncode == 2, result.stderr
    document = json.loads(result.stdout)
    assert document["status"] == "degraded" and document["exit_code"] == 2
    [connection] = document["connections"]
    missing = {c["missing"] for c in connection["capabilities"] if not c["ok"]}
    assert {"read:pullrequest:bitbucket", "admin:repository:bitbucket"} <= missing
