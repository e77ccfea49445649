"""What the production tests share: a DAGSTER_HOME holding deploy/dagster.yaml, the
environment a deployment sets, and services started the way the README starts them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def dagster_home(path: Path) -> Path:
    """A DAGSTER_HOME holding the repository's production deploy/dagster.yaml, as the README makes one."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "deploy" / "dagster.yaml", path / "dagster.yaml")
    return path


def deployment_env(home: Path, pg_env: dict[str, str], **extra: str) -> dict[str, str]:
    """The process environment of a production service: the instance, the data home, the rest,
    with the virtualenv on PATH (dagster-celery starts `celery` by name). No broker unless given."""
    env = {name: value for name, value in os.environ.items() if name != "OX_BB_REDIS_URL"}
    return {
        **env,
        **pg_env,
        "DAGSTER_HOME": str(home),
        **extra,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def sandbox_connections(server, path: Path, names: list[str]) -> Path:
    """The sandbox's connections file cut down to `names` (secrets stay in FILE.env)."""
    server.write_connections(path)
    document = yaml.safe_load(path.read_text())
    document["connections"] = [c for c in document["connections"] if c["name"] in names]
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@contextlib.contextmanager
def service(args: list[str], env: dict[str, str], log: Path, cwd: Path = REPO_ROOT):
    """A long-running command in its own session (it may start children), stopped with its group."""
    with open(log, "wb") as output:
        process = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
