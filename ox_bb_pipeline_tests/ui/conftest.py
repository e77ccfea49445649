"""Helpers for tests that start `dagster dev`: a free port, and waiting until it answers."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

STARTUP_SECONDS = 300  # two test workers share two cores, and Dagster starts several processes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_answering(url: str, process: subprocess.Popen, log: Path) -> None:
    """Poll the webserver until it answers; fail early, with its log, if dagster dev exits."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dagster dev exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if requests.get(f"{url}/server_info", timeout=5).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(1)  # polling a server that starts up, not a timed assertion
    pytest.fail(f"no answer within {STARTUP_SECONDS} s:\n{log.read_text()[-4000:]}")
