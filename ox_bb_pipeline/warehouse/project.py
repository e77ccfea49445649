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
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import yaml


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
    nodes: dict[str, dict]  # manifest nodes by unique_id (for a test: the model it is attached to)
    output: str  # dbt's console output (warnings and errors)


def invoke(
    command: list[str],
    *,
    vars: dict,
    dbt_dir: Path,
    project_dir: Path | None = None,
    target_path: Path | None = None,
) -> DbtResult:
    """Run one dbt command in a child process and read its run results. A child, not dbtRunner in this
        process: dbt-duckdb keeps its DuckDB connection open after a command (the next build would write through
        it into the file that was swapped in), and dbt's global state is not safe across threads. dbt writes into
    `dbt_dir` (target/ unless `target_path` is given, and logs/)."""
    project_dir = project_dir or sql_project_dir()
    target_path = target_path or dbt_dir / "target"
    logs = dbt_dir / "logs"
    target_path.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    (target_path / "run_results.json").unlink(missing_ok=True)
    vars = {"lake_sources": lake_source_tables(project_dir), **vars}
    executable = Path(sys.executable).with_name("dbt")
    args = [
        str(executable),
        *command,
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
    env = {**os.environ, "DO_NOT_TRACK": "1", "DBT_PROFILES_DIR": str(project_dir)}
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=target_path, check=False)
    output = (done.stdout + done.stderr).strip()
    run_results = target_path / "run_results.json"
    manifest = target_path / "manifest.json"
    if done.returncode not in (0, 1) or (command[0] != "parse" and not run_results.exists()):
        raise DbtError(f"dbt {command[0]} on {project_dir} could not run (exit {done.returncode}): {output[-2000:]}")
    results = json.loads(run_results.read_text())["results"] if run_results.exists() else []
    nodes = json.loads(manifest.read_text())["nodes"] if manifest.exists() and command[0] != "parse" else {}
    return DbtResult(success=done.returncode == 0, results=results, nodes=nodes, output=output)


def lake_source_tables(project_dir: Path | None = None) -> list[str]:
    """The lake tables sources.yml declares (source `lake`). A scanner registered without an entry there is still
    read by the findings models, as the table the invoker made from the registry (macro lake_findings)."""
    sources = yaml.safe_load(((project_dir or sql_project_dir()) / "models" / "staging" / "sources.yml").read_text())
    return sorted(t["name"] for s in sources["sources"] if s["name"] == "lake" for t in s.get("tables", []))


def failures(result: DbtResult) -> list[str]:
    """`<node>: <message>` for each model that errored or test that failed or errored."""
    return [
        f"{r['unique_id'].split('.')[-1]}: {r.get('message') or r['status']}"
        for r in result.results
        if r["status"] in ("error", "fail", "runtime error")
    ]


def parse_vars(dbt_dir: Path, scanners: tuple[str, ...] | None = None) -> dict:
    """Vars for commands that only read the project (parse, docs): a placeholder database path in `dbt_dir`."""
    vars = {"warehouse_path": str(dbt_dir / "parse.duckdb")}
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
