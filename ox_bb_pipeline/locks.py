"""Locks on a data home, held by the process that writes (an advisory `flock` on a lock file: the kernel
drops it when the holder dies, even by kill -9, so no lock is ever stale), and the liveness test of a
process id used to clean up what dead runs left behind."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
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
def home_lock(lock_file: Path, home: Path, what: str,
              waiting: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold `lock_file` exclusively for `what`, waiting for another holder (in this process or another)
    to finish; `waiting` is told once who holds it. Each holder writes its pid into the file."""
    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            message = (f"{what} waiting: another run holds the lock on {home} (pid {_holder(lock_file)}); "
                       "this one starts when it ends (stop that process to start now)")
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
