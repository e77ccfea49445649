"""A night's build without dbt's start: the statements dbt sent in the last build, run again.

Starting dbt costs ~3 CPU s before the first model (importing dbt and its adapter), a fixed cost that on a night
where 1% of the findings changed is a third of the build. Every statement dbt sends is decided by the project
(its SQL and YAML), the vars, dbt's and the adapter's versions, and the database's catalog when the build starts
(which relations exist, their columns and types: is_incremental(), schema-change checks, the column lists of an
incremental insert); never by the data, except a test's verdict, which is read from its result. So a build whose
key (project, vars, versions, command) and catalog are those of a recorded dbt build sends exactly the statements
dbt sent then; the runner runs them itself, in order, on its own connection (configured as the profile configures
dbt's), and reads each test's `failures, should_warn, should_error` row as dbt does.

A replay runs up to two nodes at once where neither reads what the other writes (`run`): each node alone kept
~1.5 of the benchmark machine's two cores busy.

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
import re
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
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


def run(con: duckdb.DuckDBPyConnection, plan: Plan, lanes: int = 1) -> list[NodeRun]:
    """Send the plan's statements on `con`; each model's and test's time and outcome, in the plan's order. A statement
    that fails raises DbtError naming its node (the build fails as dbt's would); a test that fails stops the build too
    (no node starts after it, as dbt build skips what depends on it, and the runner swaps nothing in when a test
    failed), and is returned with its message.

    dbt ran one node at a time, each on a connection of its own (it closes a node's connection after the node), so a
    node's statements see the database as every node before it left it. Up to `lanes` nodes run at once here, each
    on its own connection, with the same outcome: a node starts once every earlier node it must follow has finished
    (`_follows`: one whose relation it reads, or one that reads its relation). dbt's own statements before the
    first node and after the last run alone, in order."""
    prefix, groups, suffix = _segments(plan)
    if groups is None:  # a node's statements interleaved with another's: as dbt sent them, one by one
        return _run_serially(con, plan.statements, plan.nodes)
    with _Connections(con) as connections:
        for statement in prefix:
            _send(connections, statement)
    follows = _follows(groups, plan.nodes)
    runs: dict[int, NodeRun | None] = {}
    errors: dict[int, DbtError] = {}
    waiting, running = list(range(len(groups))), {}
    with ThreadPoolExecutor(max_workers=max(1, lanes), thread_name_prefix="warehouse-replay") as pool:
        while waiting or running:
            stop = errors or _failed(runs)
            for index in [] if stop else list(waiting):
                if len(running) >= max(1, lanes):
                    break
                if follows[index] <= runs.keys():
                    waiting.remove(index)
                    node, statements = groups[index]
                    cursor = con.cursor()  # made here: a connection object is not shared between threads
                    running[pool.submit(_run_group, cursor, node, statements, plan.nodes)] = index
            if stop and not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                index = running.pop(future)
                try:
                    runs[index] = future.result()
                except DbtError as error:
                    errors[index] = error
    if errors:
        raise errors[min(errors)]
    with _Connections(con) as connections:
        for statement in [] if _failed(runs) else suffix:
            _send(connections, statement)
    return [runs[index] for index in sorted(runs) if runs[index] is not None]


def _failed(runs: dict[int, NodeRun | None]) -> bool:
    return any(run is not None and run.status == "fail" for run in runs.values())


def _run_serially(con: duckdb.DuckDBPyConnection, statements: list[dict], nodes: dict[str, dict]) -> list[NodeRun]:
    runs: dict[str, NodeRun] = {}
    with _Connections(con) as connections:
        for statement in statements:
            node, info = statement["node"], nodes.get(statement["node"])
            current = None  # dbt's own statements (`master`'s, a schema listing's) belong to no node
            if info is not None:
                current = runs.setdefault(
                    node, NodeRun(node, info["kind"], 0.0, "success", None, info["attached_node"])
                )
            _send(connections, statement, current, info)
            if current is not None and current.status == "fail":
                break
    return list(runs.values())


def _run_group(cursor: duckdb.DuckDBPyConnection, node: str, statements: list[dict], nodes: dict) -> NodeRun | None:
    """One node's statements, in order, on connections of its own (`cursor`'s); its run (None for dbt's own)."""
    info = nodes.get(node)
    current = NodeRun(node, info["kind"], 0.0, "success", None, info["attached_node"]) if info else None
    try:
        with _Connections(cursor) as connections:
            for statement in statements:
                _send(connections, statement, current, info)
    finally:
        cursor.close()
    return current


def _send(connections: _Connections, statement: dict, current: NodeRun | None = None, info: dict | None = None):
    started = time.perf_counter()
    try:
        result = connections.send(statement)
    except duckdb.Error as error:
        raise DbtError(
            f"the warehouse build failed, the previous warehouse is unchanged: {statement['node']}: {error}"
        ) from None
    if current is None:
        return
    current.seconds += time.perf_counter() - started
    if current.kind == "test" and result is not None:
        current.status, current.message = _verdict(*result, info)


def _segments(plan: Plan) -> tuple[list[dict], list[tuple[str, list[dict]]] | None, list[dict]]:
    """The plan as dbt's statements before its first node, each node's statements (or of dbt's own between two
    nodes) in a group, in order, and dbt's statements after its last node. Groups None: a node's statements are not
    all together (dbt ran with more than one thread)."""
    statements = plan.statements
    at = [i for i, statement in enumerate(statements) if statement["node"] in plan.nodes]
    if not at:
        return statements, [], []
    prefix, middle, suffix = statements[: at[0]], statements[at[0] : at[-1] + 1], statements[at[-1] + 1 :]
    groups: list[tuple[str, list[dict]]] = []
    for statement in middle:
        if groups and groups[-1][0] == statement["node"]:
            groups[-1][1].append(statement)
        else:
            groups.append((statement["node"], [statement]))
    nodes = [node for node, _ in groups if node in plan.nodes]
    if len(nodes) != len(set(nodes)):
        return prefix, None, suffix
    return prefix, groups, suffix


IDENTIFIER = re.compile(r"""["'](\w+)["']""")


def _follows(groups: list[tuple[str, list[dict]]], nodes: dict[str, dict]) -> list[set[int]]:
    """For each group, the earlier groups it must follow: a model's whose relation it names (reads), or one that names
    (reads) its own relation, through the views it reads; dbt's own statements follow every earlier group, and every
    later group follows them. Relations are named in a statement as dbt quotes them ("main"."findings", or a
    'findings' literal in a catalog query)."""
    writes = [{node.split(".")[2]} if nodes.get(node, {}).get("kind") == "model" else set() for node, _ in groups]
    named = [
        {name for statement in statements for name in IDENTIFIER.findall(statement.get("sql") or "")}
        for _, statements in groups
    ]
    views = {
        node.split(".")[2]: named[i]
        for i, (node, statements) in enumerate(groups)
        if writes[i]
        and any(re.match(r"\s*(/\*.*?\*/)?\s*create view", s.get("sql") or "", re.S | re.I) for s in statements)
    }
    reads = []
    for names in named:
        seen, todo = set(names), list(names)
        while todo:
            for name in views.get(todo.pop(), ()):
                if name not in seen:
                    seen.add(name)
                    todo.append(name)
        reads.append(seen)
    follows, barrier = [], None  # the last group of dbt's own statements so far
    for i, (node, _) in enumerate(groups):
        if node not in nodes:
            follows.append(set(range(i)))
            barrier = i
            continue
        earlier = {j for j in range(i) if writes[j] & reads[i] or writes[i] & reads[j]}
        follows.append(earlier | ({barrier} if barrier is not None else set()))
    return follows


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
