"""The warehouse's dbt project (`sql/`: dbt_project.yml, profiles.yml, models/staging|intermediate|marts) and
how we invoke dbt on it. Everything dbt writes (target/: manifest, run results, partial parse; logs/) goes
into a dbt folder the caller names (a build: <home>/dbt; definitions load: the one defs/warehouse/assets.py
picks), never into the project, which may be read-only package data.

The invoker passes every setting as a dbt var: `warehouse_path` (the build's copy), DuckDB's memory limit,
threads and spill folder, and `scanners` (the lake tables the findings model unions).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path

from ..files import load_yaml
from .dbt_child import READY


class PackageDataError(FileNotFoundError):
    """A file or folder the installed package must contain is missing; the message names it."""


class DbtError(RuntimeError):
    """A dbt command failed: the message names the failing models or tests and dbt's error."""


def sql_project_dir() -> Path:
    """The SQL project's folder (symlinks resolved). Raises PackageDataError when it is missing, rather than
    letting the warehouse load with no models."""
    path = Path(str(files(__package__) / "sql")).resolve()
    if not path.is_dir():
        raise PackageDataError(
            f"the warehouse SQL project is missing: {path} is not a folder. Reinstall "
            "ox-bb-pipeline (its wheel ships sql/ as package data), or in a checkout restore "
            "sql/ and the symlink ox_bb_pipeline/warehouse/sql -> ../../sql"
        )
    return path


def dbt_home(home: Path) -> Path:
    """The dbt folder of a data home (a build's target/ and logs/)."""
    return home / "dbt"


@dataclass
class DbtResult:
    success: bool
    results: list[dict]  # run_results.json's results, in execution order
    nodes: dict[str, dict]  # by unique_id: {"attached_node": the model a test is attached to}
    output: str  # dbt's console output (warnings and errors)


# Vars only profiles.yml reads (the connection): they never change the parsed manifest, so a manifest parsed for one
# home serves every home (the database name, which the manifest's relations carry, is part of the cache key).
CONNECTION_VARS = ("warehouse_path", "memory_limit", "duckdb_threads", "temp_directory")


def invoke(
    command: list[str],
    *,
    vars: dict,
    dbt_dir: Path,
    project_dir: Path | None = None,
    target_path: Path | None = None,
) -> DbtResult:
    """Run one dbt command in a child process and read its run results (see `start`)."""
    with start(command, vars=vars, dbt_dir=dbt_dir, project_dir=project_dir, target_path=target_path) as child:
        return child.run()


def manifest_cache(dbt_dir: Path, project_dir: Path, vars: dict) -> Path:
    """Where the child keeps the parsed manifest (a pickle, as dbt itself passes manifests between processes) for
    this project version, these vars, the database name and this dbt: one file per combination, any home."""
    database = Path(str(vars.get("warehouse_path", "memory"))).name.lstrip(".").split(".")[0]  # as dbt-duckdb names it
    parse_vars = {k: v for k, v in vars.items() if k not in CONNECTION_VARS}
    parse_vars |= {
        "project": str(project_dir),
        "database": database,
        "dbt": version("dbt-core"),
        "adapter": version("dbt-duckdb"),
        "python": sys.version,
    }
    return dbt_dir / "parsed" / f"{project_digest(project_dir, parse_vars)}.pickle"


class DbtProcess:
    """One dbt command in a child process (`dbt_child`), started at once, waiting for `run()` (use it as a context
    manager: leaving it without `run()` stops the child before it opens the database). Until then the child imports
    dbt and loads the project's manifest (the manifest cache in `dbt_dir`, else a parse), so a caller that starts it
    before it prepares the database does that work meanwhile. A child, not dbtRunner in this process: dbt-duckdb
    keeps its DuckDB connection open after a command (the next build would write through it into the file that was
    swapped in), and dbt's global state is not safe across threads. dbt writes into `dbt_dir` (target/ unless
    `target_path` is given, and logs/); with `record`, the child writes there every statement dbt sent, when the
    command succeeded (dbt_child.record_statements)."""

    def __init__(
        self,
        command: list[str],
        *,
        vars: dict,
        dbt_dir: Path,
        project_dir: Path | None = None,
        target_path: Path | None = None,
        record: Path | None = None,
    ) -> None:
        self.command = command
        self.project_dir = project_dir = project_dir or sql_project_dir()
        self.target_path = target_path = target_path or dbt_dir / "target"
        logs = dbt_dir / "logs"
        target_path.mkdir(parents=True, exist_ok=True)
        logs.mkdir(parents=True, exist_ok=True)
        (target_path / "run_results.json").unlink(missing_ok=True)
        vars = {"lake_sources": lake_source_tables(project_dir), **vars}
        args = [
            "--project-dir",
            str(project_dir),
            "--profiles-dir",
            str(project_dir),
            "--target-path",
            str(target_path),
            "--log-path",
            str(logs),
            "--vars",
            json.dumps(vars, default=str),
            "--no-use-colors",
            "--log-level",
            "warn",
            "--log-level-file",
            "info",
            "--no-send-anonymous-usage-stats",
        ]
        request = {
            "command": command,
            "args": args,
            "manifest_cache": str(manifest_cache(dbt_dir, project_dir, vars)),
            "target_path": str(target_path),
            "record": str(record) if record else None,
        }
        env = {**os.environ, "DO_NOT_TRACK": "1", "DBT_PROFILES_DIR": str(project_dir)}
        # the child leaves without Python's teardown (dbt_child.leave), so multiprocessing's resource tracker, not
        # the child, removes dbt's two lock semaphores, and would warn that it did
        quiet = "ignore::UserWarning:multiprocessing.resource_tracker"
        env["PYTHONWARNINGS"] = ",".join(filter(None, (os.environ.get("PYTHONWARNINGS"), quiet)))
        # the console output goes to a file, not a pipe: a pipe nobody reads while the caller prepares its inputs
        # would stop a talkative child
        self.started = time.monotonic()
        self.ready_seconds: float | None = None  # from the start to the child's being ready to run (after run())
        self.console = tempfile.TemporaryFile(mode="w+", prefix="dbt-console-")
        self.process = subprocess.Popen(
            # the file, not `-m ox_bb_pipeline.warehouse.dbt_child`: importing the package would import the runner and
            # its dependencies (~2 s) before dbt; -P keeps the file's folder off sys.path (its modules would shadow)
            [sys.executable, "-P", str(Path(__file__).with_name("dbt_child.py")), json.dumps(request)],
            stdin=subprocess.PIPE,
            stdout=self.console,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=target_path,
        )

    def run(self) -> DbtResult:
        """Let the child run its command on the database as it is now; wait for it and read its results."""
        try:
            self.process.stdin.write("go\n")
            self.process.stdin.close()
        except BrokenPipeError:  # the child ended already (it could not parse): its output says why
            pass
        returncode = self.process.wait()
        output = _written(self.console).strip()
        ready = re.search(rf"^{READY} (\d+\.\d+)$", output, re.MULTILINE)
        self.ready_seconds = float(ready[1]) - self.started if ready else None
        command, target_path = self.command, self.target_path
        run_results = target_path / "run_results.json"
        if returncode not in (0, 1) or (command[0] != "parse" and not run_results.exists()):
            raise DbtError(
                f"dbt {command[0]} on {self.project_dir} could not run (exit {returncode}): {output[-2000:]}"
            )
        results = json.loads(run_results.read_text())["results"] if run_results.exists() else []
        nodes = {r["unique_id"]: {"attached_node": r.get("attached_node")} for r in results}
        return DbtResult(success=returncode == 0, results=results, nodes=nodes, output=output)

    def close(self) -> None:
        """Stop a child that was not run (it exits without opening the database) and wait for it."""
        if self.process.poll() is None and not self.process.stdin.closed:
            try:
                self.process.stdin.close()  # end of input: the child gives up
            except BrokenPipeError:
                pass
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.console.close()

    def __enter__(self) -> DbtProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


start = DbtProcess  # start(command, vars=..., dbt_dir=...) reads as what it does


def _written(console) -> str:
    """What the child wrote to its console file, read without moving the file's offset: the child shares that offset,
    and so does a process it started that may still write (multiprocessing's resource tracker, after the child
    left); read with a seek to 0, such a late line would land over the first ones (the child's ready line)."""
    size = os.fstat(console.fileno()).st_size
    return os.pread(console.fileno(), size, 0).decode(errors="replace")


def lake_source_tables(project_dir: Path | None = None) -> list[str]:
    """The lake tables sources.yml declares (source `lake`). A scanner registered without an entry there is still
    read by the findings models, as the table the invoker made from the registry (macro lake_findings)."""
    sources = load_yaml(((project_dir or sql_project_dir()) / "models" / "staging" / "sources.yml").read_text())
    return sorted(t["name"] for s in sources["sources"] if s["name"] == "lake" for t in s.get("tables", []))


def node_name(unique_id: str) -> str:
    """A node's name: model.<project>.<name>, test.<project>.<name>.<hash> (a test's hash names nothing)."""
    return unique_id.split(".")[2]


def failures(result: DbtResult) -> list[str]:
    """`<node>: <message>` for each model that errored or test that failed or errored."""
    return [
        f"{node_name(r['unique_id'])}: {r.get('message') or r['status']}"
        for r in result.results
        if r["status"] in ("error", "fail", "runtime error")
    ]


def parse_vars(dbt_dir: Path, scanners: tuple[str, ...] | None = None) -> dict:
    """Vars for commands that only read the project (parse, docs): a placeholder database path in `dbt_dir`."""
    # named as a build's copy is (.warehouse.duckdb.current.building): dbt-duckdb names the database after the file,
    # and the manifest's relations carry that name, so a build can use this parse's cached manifest
    vars = {"warehouse_path": str(dbt_dir / "warehouse.parse.duckdb")}
    if scanners is not None:
        vars["scanners"] = list(scanners)
    return vars


def project_digest(project_dir: Path | None = None, vars: dict | None = None) -> str:
    """Changes when any project file or the scanner list changes (which manifest is current)."""
    project_dir = project_dir or sql_project_dir()
    digest = hashlib.sha256(json.dumps(vars or {}, sort_keys=True, default=str).encode())
    for path in sorted(p for p in project_dir.rglob("*") if p.is_file() and p.suffix in (".sql", ".yml", ".yaml")):
        digest.update(str(path.relative_to(project_dir)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def manifest_path(dbt_dir: Path, scanners: tuple[str, ...] | None = None) -> Path:
    """`dbt parse` of the project into <dbt_dir>/manifests/<digest>/manifest.json (dbt's log in <dbt_dir>/logs),
    made once per project version and scanner list (Dagster loads definitions in several processes: each parses
    into its own temp folder and renames it in; a loser of the race keeps the winner's identical manifest).
    `dbt_dir` is the caller's choice: the code location decides it (defs/warehouse/assets.py)."""
    vars = {"scanners": list(scanners)} if scanners is not None else {}
    folder = dbt_dir / "manifests" / project_digest(vars=vars)
    manifest = folder / "manifest.json"
    if manifest.exists():
        return manifest
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".parse."))
    try:
        result = invoke(["parse"], vars=parse_vars(dbt_dir, scanners), dbt_dir=dbt_dir, target_path=scratch)
        if not result.success:
            raise DbtError(f"dbt parse of {sql_project_dir()} failed; see {dbt_dir / 'logs'}")
        for extra in ("partial_parse.msgpack", "semantic_manifest.json", "perf_info.json"):
            (scratch / extra).unlink(missing_ok=True)
        try:
            scratch.rename(folder)
        except OSError:  # another process made it first
            pass
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return manifest
