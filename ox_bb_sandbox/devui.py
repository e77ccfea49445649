"""The Dagster UI on the bundled sandbox: a click-through of the whole pipeline with no Bitbucket
account. `ox-bb demo --ui` and the browser test both start it from here, so they see the same thing.

The dev instance lives in `OX_BB_HOME/dagster/` (SQLite) with the limits of the repository's
dagster.yaml (the development instance) and deploy/dagster.yaml (production); a test compares them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from ox_bb_pipeline.config import load_connections
from ox_bb_pipeline.files import atomic_write_text

from .generator import SandboxSpec
from .server import SandboxServer

# The location name the repository root's workspace.yaml uses too, so runs look the same in both.
WORKSPACE = {
    "load_from": [{"python_module": {"module_name": "ox_bb_pipeline.definitions", "location_name": "ox_bb_pipeline"}}]
}
# The same limits as production (deploy/dagster.yaml, not shipped in the wheel, hence repeated here):
# one run per connection at a time (its API budget), pools `bitbucket_api` and
# `scanners` at the default limit, and a single DuckDB writer.
POOL_DEFAULT_LIMIT = 4
POOL_LIMITS = {"duckdb_writer": 1}
RUN_LIMITS = {
    "max_concurrent_runs": 8,
    "tag_concurrency_limits": [{"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}],
}


def instance_settings(dagster_home: Path) -> dict:
    """The dev instance's dagster.yaml: SQLite in the home, no telemetry, production's limits, and no
    "Join the Dagster community" dialog (it pops up over whatever dialog is open and blocks clicks)."""
    return {
        "telemetry": {"enabled": False},
        "nux": {"enabled": False},
        "storage": {"sqlite": {"base_dir": str(dagster_home / "storage")}},
        "concurrency": {"pools": {"default_limit": POOL_DEFAULT_LIMIT}, "runs": RUN_LIMITS},
    }


def prepare_dagster_home(dagster_home: Path, partitions: list[str]) -> Path:
    """Write the dev dagster.yaml and workspace.yaml, set per-pool limits (they live in the
    instance's storage, not in the file) and register the connection partitions, so assets can
    be launched at once rather than after the first `connections_sensor` tick. Idempotent: run
    history is kept."""
    import dagster as dg  # slow imports, only when a UI is wanted

    from ox_bb_pipeline.defs.bitbucket.partitions import connections_partitions

    dagster_home.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        dagster_home / "dagster.yaml", yaml.safe_dump(instance_settings(dagster_home.resolve()), sort_keys=False)
    )
    atomic_write_text(dagster_home / "workspace.yaml", yaml.safe_dump(WORKSPACE, sort_keys=False))

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        for pool, limit in POOL_LIMITS.items():
            instance.event_log_storage.set_concurrency_slots(pool, limit)
        existing = set(instance.get_dynamic_partitions(connections_partitions.name))
        missing = [name for name in partitions if name not in existing]
        if missing:
            instance.add_dynamic_partitions(connections_partitions.name, missing)
    return dagster_home


@dataclass(frozen=True)
class DevUI:
    """A running sandbox and a prepared Dagster home: what `dagster dev` needs to show it all."""

    sandbox: SandboxServer
    home: Path
    connections: Path
    dagster_home: Path

    def environment(self) -> dict[str, str]:
        # Dagster gives a code server 60 s to launch a run; a busy laptop or CI box needs more.
        # The advisories/osv asset syncs from the sandbox's mirror, as it would from OSV.
        return {
            "DAGSTER_GRPC_TIMEOUT_SECONDS": "180",
            **os.environ,
            **self.sandbox.advisory_settings(),
            "OX_BB_HOME": str(self.home),
            "OX_BB_CONNECTIONS": str(self.connections),
            "DAGSTER_HOME": str(self.dagster_home),
        }

    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"

    def start(self, port: int, **popen) -> subprocess.Popen:
        """`dagster dev` in a process group of its own, so `stop` reaches its webserver, daemon,
        code servers and runs too."""
        dagster = Path(sys.executable).with_name("dagster")
        command = [
            str(dagster),
            "dev",
            "-w",
            str(self.dagster_home / "workspace.yaml"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        return subprocess.Popen(
            command, env=self.environment(), start_new_session=True, preexec_fn=default_interrupt, **popen
        )


def default_interrupt() -> None:
    """In the child before `dagster dev` starts: Ctrl-C (SIGINT) back to its default. A shell starts a background
    job (`cmd &`, `nohup`) with SIGINT ignored, every child inherits that, and `dagster dev` would then ignore the
    interrupt `stop` sends and never remove its temporary home (ci7 and ci8 ran `make test` that way)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop(process: subprocess.Popen, grace_seconds: float = 30) -> None:
    """Interrupt `dagster dev` as Ctrl-C does (it shuts its services down); kill the whole group
    when that takes too long, e.g. when it was started with SIGINT ignored (a background job)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # anything left behind: a run worker, a code server
    except ProcessLookupError:
        pass
    process.wait()


def sync_sandbox_advisories(server: SandboxServer, home: Path):
    """`ox-bb advisories sync` from the sandbox's OSV / KEV / EPSS mirror (the demo's vulnerability data)."""
    from ox_bb_pipeline.advisories.sync import sync

    urls = server.advisory_settings()
    return sync(home=home, mirror=urls["OX_BB_OSV_MIRROR"], kev=urls["OX_BB_KEV_URL"], epss=urls["OX_BB_EPSS_URL"])


@contextmanager
def sandbox_ui(home: Path, spec: SandboxSpec | None = None, import_repos: list[str] = ()) -> Iterator[DevUI]:
    """Start the sandbox, write its connections file under `home` and prepare the Dagster home;
    the sandbox stops when the block ends."""
    home = Path(home).resolve()
    with SandboxServer(spec, import_repos=list(import_repos)) as server:
        connections = server.write_connections(home / "sandbox" / "connections.yaml")
        sync_sandbox_advisories(server, home)  # scans in the UI find the index in place
        dagster_home = prepare_dagster_home(home / "dagster", load_connections(connections).names)
        yield DevUI(server, home, connections, dagster_home)
