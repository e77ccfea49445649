"""Scanner tools run from `run_tool` never outlive the pipeline: a pipeline process killed with SIGKILL
(no handler runs) takes the tool and every process the tool started with it, and a stop request leaves
`run_tool` at once. Also what `run_tool` keeps from before: exit codes, output, and a timeout that kills
the whole tree."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ox_bb_pipeline.scanners.base import run_tool

PROJECT = Path(__file__).resolve().parents[2]
POLLS = 600  # checks of process existence, 0.1 s apart at most: a bound, not an expected duration


def running(pid: int) -> bool:
    """The process exists and is not a zombie (a dead orphan the container's init has not reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(condition) -> bool:
    for _ in range(POLLS):
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_a_tool_and_its_children_die_with_a_killed_pipeline(tmp_path):
    pids = tmp_path / "pids"
    tool = ["/bin/sh", "-c", f"sleep 300 & echo $$ $! > {pids}.tmp && mv {pids}.tmp {pids}; wait"]
    pipeline = subprocess.Popen(
        [sys.executable, "-c", f"from ox_bb_pipeline.scanners.base import run_tool; run_tool({tool!r}, timeout=600)"],
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )
    try:
        assert wait_until(pids.exists)
        tool_pid, child_pid = (int(p) for p in pids.read_text().split())
        assert running(tool_pid) and running(child_pid)

        pipeline.send_signal(signal.SIGKILL)
        pipeline.wait()

        assert wait_until(lambda: not running(tool_pid) and not running(child_pid))
    finally:
        pipeline.kill()
        pipeline.wait()
        for pid in (int(p) for p in (pids.read_text().split() if pids.exists() else [])):
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_stop_request_stops_the_tool_at_once_and_the_pipeline_exits(tmp_path):
    """A pipeline that turns SIGTERM into SystemExit (to clean up and exit 143) leaves `run_tool` at once,
    the tool's tree killed: without that, leaving the `with Popen` block waits for the tool to finish."""
    pids = tmp_path / "pids"
    tool = ["/bin/sh", "-c", f"sleep 300 & echo $$ $! > {pids}.tmp && mv {pids}.tmp {pids}; wait"]
    script = (
        "import signal, sys\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))\n"
        "from ox_bb_pipeline.scanners.base import run_tool\n"
        f"run_tool({tool!r}, timeout=600)\n"
    )
    pipeline = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(PROJECT)})
    try:
        assert wait_until(pids.exists)
        tool_pid, child_pid = (int(p) for p in pids.read_text().split())

        pipeline.send_signal(signal.SIGTERM)

        assert wait_until(lambda: pipeline.poll() is not None) and pipeline.returncode == 143
        assert wait_until(lambda: not running(tool_pid) and not running(child_pid))
    finally:
        pipeline.kill()
        pipeline.wait()


def test_exit_codes_and_output_are_the_tool_s():
    proc = run_tool(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"], timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, "out\n", "err\n")
    assert run_tool(["/bin/sh", "-c", "exit 0"], timeout=60, keep_stdout=False).returncode == 0


def test_a_timeout_kills_the_tool_and_its_children(tmp_path):
    pids = tmp_path / "pids"
    with pytest.raises(TimeoutError, match="timed out after 1 s"):
        run_tool(["/bin/sh", "-c", f"sleep 300 & echo $$ $! > {pids}; wait"], timeout=1)
    tool_pid, child_pid = (int(p) for p in pids.read_text().split())
    assert wait_until(lambda: not running(tool_pid) and not running(child_pid))
