"""A night's build without dbt's start: the statements dbt sent in the last build, run again.

Starting dbt costs ~3 CPU s before the first model (importing dbt and its adapter), a fixed cost that on a night
where 1% of the findings changed is a third of the build. Every statement dbt sends is decided by the project
(its SQL and YAML), the vars, dbt's and the adapter's versions, and the database's catalog when the build starts
(which relations exist, their columns and types: is_incremental(), schema-change checks, the column lists of an
incremental insert); never by the data, except a test's verdict, which is read from its result. So a build whose
key (project, vars, versions, command) and catalog are those of a recorded dbt build sends exactly the statements
dbt sent then; the runner runs them itself, in order, on its own connection (configured as the profile configures
dbt's), and reads each test's `failures, should_warn, should_error` row as dbt does.

The recording is made by the dbt child of every dbt build (dbt_child.record_statements) and becomes the plan
(`<home>/dbt/replay.json`) once that build has been swapped in. A build that finds no plan, another key or another
catalog runs dbt (and records again); so does a full refresh. A replay that fails removes the plan: the next build
runs dbt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import duckdb

from .project import DbtError, manifest_cache

PLAN_FILE = "replay.json"
TEST_RESULT = ["failures", "should_warn", "should_error"]  # dbt's test materialization's main statement


@dataclass
class Plan:
    key: str
    catalog: str
    nodes: dict[str, dict]  # unique_id -> kind, attached_node, severity
    statements: list[dict]  # {node, sql, bindings}, in the order dbt sent them


def plan_path(dbt_dir: Path) -> Path:
    return dbt_dir / PLAN_FILE


def plan_key(command: list[str], vars: dict, dbt_dir: Path, project_dir: Path) -> str:
    """What decides dbt's statements besides the catalog: the parsed project (its manifest cache's name digests the
    project files, the vars it parses with and dbt's, the adapter's and Python's versions), every var (those only
    the connection reads included), the command, and DuckDB's version."""
    parsed = manifest_cache(dbt_dir, project_dir, vars).stem
    key = {"parsed": parsed, "vars": vars, "command": command, "duckdb": version("duckdb")}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def catalog(con: duckdb.DuckDBPyConnection) -> str:
    """A digest of the relations of the database's main schema: each table's and view's name, kind, and columns with
    their types, in order."""
    rows = con.execute(
        """
        SELECT r.kind, r.name, c.column_index, c.column_name, c.data_type
        FROM (SELECT 'table' AS kind, table_name AS name FROM duckdb_tables()
              WHERE database_name = current_database() AND schema_name = 'main'
              UNION ALL
              SELECT 'view', view_name FROM duckdb_views()
              WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal) AS r
        LEFT JOIN duckdb_columns() AS c
            ON c.database_name = current_database() AND c.schema_name = 'main' AND c.table_name = r.name
        ORDER BY ALL
        """
    ).fetchall()
    return hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()[:16]


def load(dbt_dir: Path, key: str) -> Plan | None:
    """The plan, when there is one for this key (an unreadable one is as none: dbt runs)."""
    try:
        data = json.loads(plan_path(dbt_dir).read_text())
        if data.get("key") != key:
            return None
        return Plan(key=data["key"], catalog=data["catalog"], nodes=data["nodes"], statements=data["statements"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def keep(dbt_dir: Path, recording: Path, key: str, catalog: str) -> None:
    """Make the recording of a build that succeeded the plan for the next one (atomically). Without a recording (dbt
    recorded nothing, or could not) the plan stays as it is: what dbt sends for a key and a catalog does not change."""
    try:
        data = json.loads(recording.read_text())
    except (OSError, ValueError):
        return
    finally:
        recording.unlink(missing_ok=True)
    target = plan_path(dbt_dir)
    scratch = target.with_name(f".{target.name}.{os.getpid()}")
    scratch.write_text(json.dumps({"key": key, "catalog": catalog, **data}))
    os.replace(scratch, target)


def forget(dbt_dir: Path) -> None:
    plan_path(dbt_dir).unlink(missing_ok=True)


@dataclass
class NodeRun:
    unique_id: str
    kind: str
    seconds: float
    status: str  # success (a model) | pass | warn | fail (a test)
    message: str | None = None
    attached_node: str | None = None


def run(con: duckdb.DuckDBPyConnection, plan: Plan) -> list[NodeRun]:
    """Send the plan's statements in order on `con`; each model's and test's time and outcome, in the order they ran.
    A statement that fails raises DbtError naming its node (the build fails as dbt's would); a test that fails stops
    the build too (as dbt build skips what depends on it, and the runner swaps nothing in when a test failed), and
    is returned with its message."""
    runs: dict[str, NodeRun] = {}
    with _Connections(con) as connections:
        for statement in plan.statements:
            node, info = statement["node"], plan.nodes.get(statement["node"])
            current = None  # dbt's own statements (`master`'s, a schema listing's) belong to no node
            if info is not None:
                current = runs.setdefault(
                    node, NodeRun(node, info["kind"], 0.0, "success", None, info["attached_node"])
                )
            started = time.perf_counter()
            try:
                result = connections.send(statement)
            except duckdb.Error as error:
                raise DbtError(
                    f"the warehouse build failed, the previous warehouse is unchanged: {node}: {error}"
                ) from None
            if current is None:
                continue
            current.seconds += time.perf_counter() - started
            if current.kind == "test" and result is not None:
                current.status, current.message = _verdict(*result, info)
                if current.status == "fail":
                    break
    return list(runs.values())


class _Connections:
    """A connection to the database per dbt thread, as dbt had (each with its own transaction and temporary
    tables), opened at its first statement and closed when dbt closed its handle."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.open: dict[int, duckdb.DuckDBPyConnection] = {}

    def send(self, statement: dict) -> tuple | None:
        """Run one recorded step: a statement (its test row, if it is a test's main statement), or dbt's rollback
        (nothing to roll back is no error: dbt's own rollback failed the same way, and it went on) or close."""
        thread = statement["thread"]
        if statement.get("op") == "close":
            if thread in self.open:
                self.open.pop(thread).close()
            return None
        if statement.get("op") == "rollback":
            if thread in self.open:
                with contextlib.suppress(duckdb.TransactionException):
                    self.open[thread].rollback()
            return None
        if thread not in self.open:
            self.open[thread] = self.con.cursor()
            self.open[thread].execute("SET TimeZone = 'UTC'")  # as dbt's profile sets it on each; the rest is global
        cursor = self.open[thread].execute(statement["sql"], statement["bindings"])
        if [column[0] for column in cursor.description or []] == TEST_RESULT:
            return cursor.fetchone()
        return None

    def __enter__(self) -> _Connections:
        return self

    def __exit__(self, *exc) -> None:
        for cursor in self.open.values():
            cursor.close()


def _verdict(failures: int, should_warn: bool, should_error: bool, info: dict) -> tuple[str, str | None]:
    """dbt's reading of a test's row: `fail` when it should error and its severity is error, else `warn` when it
    should warn (or should error at severity warn), else `pass`; the message as dbt words it."""
    if should_error and (info.get("severity") or "ERROR") == "ERROR":
        return "fail", f"Got {failures} result{'' if failures == 1 else 's'}, configured to fail if != 0"
    if should_warn or should_error:
        return "warn", f"Got {failures} result{'' if failures == 1 else 's'}, configured to warn if != 0"
    return "pass", None
