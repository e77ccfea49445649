"""Stale work files are judged by pid only on the host that made them: run directories and warehouse build
copies carry the host name, and a data home shared by several hosts never loses another host's live work
(its pids mean nothing here), while this host's dead runs are still reaped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from ox_bb_pipeline.locks import private_workdir, remove_stale_workdirs, this_host
from ox_bb_pipeline.warehouse.runner import remove_stale_builds

OTHER = "build-node-7.example.org"


def dead_pid() -> int:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its process is gone; its work files are not
    return dead.pid


def test_a_run_directory_names_this_host_and_pid(tmp_path):
    with private_workdir(tmp_path) as path:
        assert path.name.startswith(f"run-{os.getpid()}-{this_host()}-")
        assert socket.gethostname().split(".")[0].replace("-", "_") in path.name
        assert path.stat().st_mode & 0o777 == 0o700
    assert not path.exists()


def test_only_dead_runs_of_this_host_are_reaped(tmp_path):
    pid, here = dead_pid(), this_host()
    other_host = OTHER.replace("-", "_")
    names = {
        "dead here": f"run-{pid}-{here}-ab12cd_3",
        "alive here": f"run-{os.getpid()}-{here}-ef45gh67",
        "dead pid on another host": f"run-{pid}-{other_host}-ij89kl01",  # that pid may be alive over there
        "alive pid on another host": f"run-{os.getpid()}-{other_host}-mn23op45",
        "dead, before host names": f"run-{pid}-x1",
        "alive, before host names": f"run-{os.getpid()}-x2",
        "old layout": "sandbox-token",
    }
    for name in names.values():
        (tmp_path / name / "ws" / "repo").mkdir(parents=True)
        (tmp_path / name / "ws" / "repo" / "deploy.env").write_text("AWS_SECRET=x\n")

    removed = remove_stale_workdirs(tmp_path)

    assert sorted(p.name for p in removed) == sorted(
        names[k] for k in ("dead here", "dead, before host names", "old layout")
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        names[k]
        for k in ("alive here", "dead pid on another host", "alive pid on another host", "alive, before host names")
    )


def test_a_run_started_here_keeps_another_hosts_directories(tmp_path):
    theirs = tmp_path / f"run-{dead_pid()}-{OTHER.replace('-', '_')}-qr67st89"
    theirs.mkdir()

    with private_workdir(tmp_path) as mine:
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([theirs.name, mine.name])
    assert theirs.exists()


def test_only_dead_builds_of_this_host_are_removed(tmp_path):
    target = tmp_path / "warehouse.duckdb"
    pid, here = dead_pid(), this_host()
    files = {
        "dead here": f".warehouse.duckdb.{pid}-{here}.building",
        "dead here wal": f".warehouse.duckdb.{pid}-{here}.building.wal",
        "alive here": f".warehouse.duckdb.{os.getpid()}-{here}.building",
        "dead pid on another host": f".warehouse.duckdb.{pid}-{OTHER}.building",
        "dead, before host names": f".warehouse.duckdb.{pid}.building",
    }
    for name in files.values():
        (tmp_path / name).write_bytes(b"half a database")

    removed = remove_stale_builds(target)

    assert sorted(p.name for p in removed) == sorted(
        files[k] for k in ("dead here", "dead here wal", "dead, before host names")
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        files[k] for k in ("alive here", "dead pid on another host")
    )
