"""What runs sharing a data home need: locks held by the process that writes (an advisory `flock` on a lock
file: the kernel drops it when the holder dies, even by kill -9, so no lock is ever stale), and working
directories private to one run (`run-<pid>-<host>-<random>`), whose leftovers from dead runs are removed
when the next run starts. A pid means something only on its own machine: a data home shared by several hosts
(a network file system) has directories of other hosts' runs, which are never judged, and never removed, here."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        return str(int(path.read_text().strip()))
    return "unknown"


@contextlib.contextmanager
def home_lock(lock_file: Path, home: Path, what: str, waiting: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold `lock_file` exclusively for `what`, waiting for another holder (in this process or another)
    to finish; `waiting` is told once who holds it. Each holder writes its pid into the file."""
    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            message = (
                f"{what} waiting: another run holds the lock on {home} (pid {_holder(lock_file)}); "
                "this one starts when it ends (stop that process to start now)"
            )
            (waiting or log.warning)(message)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def this_host() -> str:
    """This machine's name as it appears in work-file names (characters safe in a file name only)."""
    return re.sub(r"[^A-Za-z0-9.]+", "_", socket.gethostname()) or "localhost"


def owner_gone(pid: int, host: str | None) -> bool:
    """Whether the process that made a work file is certainly gone: a dead pid of this host. `host` None: a
    name from before host names were recorded, taken as this host's (the layout a single host left)."""
    return (host is None or host == this_host()) and not pid_alive(pid)


# run-<pid>-<host>-<random>, or run-<pid>-<random> (before host names); mkdtemp's random part has no "-".
_RUN_DIR = re.compile(r"run-(?P<pid>\d+)-(?:(?P<host>.+)-)?[a-z0-9_]+$")


def remove_stale_workdirs(root: Path) -> list[Path]:
    """Remove what runs that are no longer alive left under `root`: `run-<pid>-<host>-*` directories of this
    host whose process is gone, and anything else (checkouts of the layout before private directories).
    Another host's run directories are left alone: its pids cannot be checked from here."""
    removed = []
    for entry in sorted(Path(root).iterdir()) if Path(root).is_dir() else []:
        match = _RUN_DIR.match(entry.name) if entry.name.startswith("run-") else None
        if match and not owner_gone(int(match["pid"]), match["host"]):
            continue
        shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


@contextlib.contextmanager
def private_workdir(root: Path) -> Iterator[Path]:
    """A directory under `root` for this run alone (mode 0700), removed with everything in it at the end;
    stale directories of dead runs are removed first."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_workdirs(root)
    path = Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-{this_host()}-", dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
