"""The newcomer's first Dagster commands: `dagster definitions validate` and `dagster dev` from the
repository root with no DAGSTER_HOME and no OX_BB_* variable use the top-level dagster.yaml (the
embedded development instance) and work, without a traceback or the code-location-name warning.
The development and production instances keep the same run queue, pools and retries."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from ox_bb_pipeline_tests.ui.conftest import STARTUP_SECONDS, free_port, wait_until_answering
from ox_bb_sandbox.devui import default_interrupt, instance_settings, stop

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
NAME_WARNING = "does not match the name"
LOCATION_QUERY = """{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


def clean_environment() -> dict[str, str]:
    """What a fresh shell has: no Dagster home, no ox-bb setting. PYTHONPATH keeps this checkout's
    code first (the shared virtualenv may point elsewhere)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OX_BB_", "DAGSTER_")) and k not in ("PYTHONPATH",)}
    return env | {"PYTHONPATH": str(REPO_ROOT), "NO_COLOR": "1"}


def assert_clean_log(log: str) -> None:
    assert "Traceback" not in log, log[-4000:]
    assert NAME_WARNING not in log, log[-4000:]
    assert "OX_BB_PG" not in log, log[-4000:]


def test_definitions_validate_from_the_repository_root_with_no_environment():
    result = subprocess.run(
        [DAGSTER, "definitions", "validate"],
        cwd=REPO_ROOT,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert "Validation successful for code location ox_bb_pipeline" in log
    assert_clean_log(log)


def wait_until_loaded(url: str, process: subprocess.Popen, log: Path) -> dict:
    """The code location's entry once it is no longer loading (the webserver answers earlier)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dagster dev exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        body = requests.post(f"{url}/graphql", json={"query": LOCATION_QUERY}, timeout=30).json()
        entries = body["data"]["workspaceOrError"].get("locationEntries") or []
        if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
            return {entry["name"]: entry["locationOrLoadError"] for entry in entries}
        time.sleep(1)  # polling a server that starts up, not a timed assertion
    pytest.fail(f"code location not loaded within {STARTUP_SECONDS} s:\n{log.read_text()[-4000:]}")


@pytest.mark.timeout(900)  # start-up, loading, and a clean exit on a loaded machine
def test_dagster_dev_from_the_repository_root_with_no_environment(tmp_path):
    port, log = free_port(), tmp_path / "dagster-dev.log"
    before = set(REPO_ROOT.glob(".tmp_dagster_home_*"))
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [DAGSTER, "dev", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT,
            env=clean_environment(),
            preexec_fn=default_interrupt,  # a terminal's Ctrl-C, even when the suite runs as a background job
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_answering(url, process, log)
        locations = wait_until_loaded(url, process, log)
    finally:
        # Ctrl-C, then time for a clean exit: only a clean exit removes the temporary home, and a loaded machine
        # (ci1: two test workers on two cores) takes longer than the default grace to stop the daemon and webserver
        stop(process, grace_seconds=300)

    assert locations == {"ox_bb_pipeline": {"__typename": "RepositoryLocation"}}
    text = log.read_text()
    assert "Using temporary directory" in text  # the throwaway SQLite home, configured by ./dagster.yaml
    assert_clean_log(text)
    assert set(REPO_ROOT.glob(".tmp_dagster_home_*")) <= before  # removed again on exit


def limits(settings: dict) -> dict:
    return {key: settings.get(key) for key in ("concurrency", "run_retries", "telemetry")}


def test_development_and_production_instances_have_the_same_queue_pools_and_retries():
    development = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    production = yaml.safe_load((REPO_ROOT / "deploy" / "dagster.yaml").read_text())

    assert "storage" not in development  # Dagster's throwaway SQLite home, or an empty DAGSTER_HOME
    assert "postgres" in production["storage"]
    assert limits(development) == limits(production)
    assert limits(development)["concurrency"]["runs"]["tag_concurrency_limits"]  # one run per connection
    # The home `ox-bb demo --ui` writes has the same queue and pools.
    assert instance_settings(Path("/nowhere"))["concurrency"] == development["concurrency"]
