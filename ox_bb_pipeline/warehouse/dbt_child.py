"""The dbt child process of `project.start` (run as `python -P <this file> REQUEST`: standard library imports only
before dbt's, so that it imports nothing of the package).

It is started before its database is ready, so that what costs dbt seconds before the first model runs happens
while the caller still prepares the build's inputs: importing dbt (~3 CPU s) and having the project's parsed
manifest (a full parse ~3 CPU s; loading the pickle a parse left in the manifest cache ~0.05 s). Then it waits for
one line on stdin: `go` runs the command with that manifest (`dbtRunner(manifest=...)`: no second parse; runtime
`var()` still reads this command's vars, which the manifest does not hold), anything else (or end of input: the
caller gave up) exits without opening the database.

It writes the run's results (target/run_results.json: dbt's `results`, each test with the model it is attached to)
itself, not dbt's artifacts (manifest.json, dbt's run_results.json), which cost ~1 s after the last model.

With `record` in the request, it also writes every statement dbt sent to the database, in order and by node
(`record_statements`): the runner keeps that as the replay plan of the next build (see `replay`).

Exit status as dbt's: 0 success, 1 a model or test failed, 2 dbt could not run (its error on stderr).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import NoReturn

READY = "dbt child ready at"


def load_manifest(args: list[str], cache: Path | None):
    """The project's manifest: the cached one, else a `dbt parse` (dbt's partial parse reused), cached."""
    if cache is not None and cache.is_file():
        try:
            from dbt.contracts.graph.manifest import Manifest

            return Manifest(**pickle.loads(cache.read_bytes()))
        except Exception as error:  # another dbt version's or a cut file: parse again and replace it
            print(f"the manifest cache {cache} is unreadable ({error}); parsing the project", file=sys.stderr)
    return parse(args, cache)


def parse(args: list[str], cache: Path | None):
    """`dbt parse` (writes target/manifest.json; dbt's partial parse reused), its manifest kept in `cache`."""
    from dbt.cli.main import dbtRunner

    parsed = dbtRunner().invoke(["parse", *args])
    if not parsed.success:
        raise SystemExit(_fail("parse", parsed))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, scratch = tempfile.mkstemp(dir=cache.parent, prefix=f".{cache.name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                pickle.dump(_state(parsed.result), out, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(scratch, cache)  # atomic: a concurrent reader sees the old file or the whole new one
        finally:
            Path(scratch).unlink(missing_ok=True)
    return parsed.result


def _state(manifest) -> dict:
    """The manifest's public fields. Not the manifest itself: Manifest.__reduce_ex__ of this dbt passes its fields
    out of order (`fixtures` is missing, so every lookup after it lands in the wrong field), and the lookups and the
    lock are rebuilt by the Manifest anyway."""
    return {f.name: getattr(manifest, f.name) for f in dataclasses.fields(manifest) if not f.name.startswith("_")}


def warm_up() -> None:
    """What the command would do first anyway, done before the database is ready: import the adapter and build the
    JSON schemas dbt validates the project, profile and flags with (~0.6 CPU s, each built once per process). A
    failure here is left for the command itself to meet and report."""
    try:
        from dbt.adapters.duckdb.credentials import DuckDBCredentials
        from dbt.contracts.project import Configuration, PackageConfig, ProfileConfig, Project, ProjectFlags
        from dbt.contracts.selection import SelectorFile

        for contract in (ProjectFlags, DuckDBCredentials, ProfileConfig, Project, PackageConfig, SelectorFile):
            contract.json_schema()
        Configuration.json_schema()
    except Exception as error:
        print(f"dbt warm-up skipped: {error}", file=sys.stderr)


def _fail(what: str, outcome) -> int:
    if outcome.exception is not None:
        print(f"dbt {what} failed: {outcome.exception}", file=sys.stderr)
        return 2
    return 1


def main() -> int:
    request = json.loads(sys.argv[1])
    command, args = request["command"], request["args"]
    cache = Path(request["manifest_cache"]) if request.get("manifest_cache") else None
    from dbt.cli.main import dbtRunner

    manifest = None if command[0] == "parse" else load_manifest(args, cache)
    if manifest is not None:
        warm_up()
    print(f"{READY} {time.monotonic():.3f}", flush=True)  # the invoker reports how long getting ready took
    if sys.stdin.readline().strip() != "go":
        return 3  # the caller gave up before its inputs were ready: nothing was touched
    if command[0] == "parse":
        parse(args, cache)
        return 0
    # --no-write-json: dbt's manifest.json and run_results.json cost ~1 s after the last model (schemas built, a
    # 1 MB manifest written); the results the invoker reads are written below instead
    recorded = record_statements() if request.get("record") else None
    outcome = dbtRunner(manifest=manifest).invoke([*command, *args, "--no-write-json"])
    if outcome.result is not None and hasattr(outcome.result, "results"):
        write_results(Path(request["target_path"]) / "run_results.json", outcome.result.results)
        if recorded is not None and outcome.success:
            write_recording(Path(request["record"]), recorded, outcome.result.results)
    leave(0 if outcome.success else _fail(command[0], outcome))


def leave(code: int) -> NoReturn:
    """Exit once the command is done, its database closed and the logs flushed, without Python's teardown: freeing
    dbt's objects one by one costs ~0.6 CPU s after the last model, while the invoker waits. dbt-duckdb keeps the
    database open after a command; closing it writes its last checkpoint and removes its spill files (a failure to
    close loses nothing: the invoker's next open replays the committed log)."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager

        DuckDBConnectionManager.env().close()
    except Exception as error:  # no database was opened (dbt stopped before its first query)
        print(f"dbt's database was not closed: {error}", file=sys.stderr)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def record_statements() -> list[dict]:
    """From now on, every statement dbt-duckdb sends (dbt's own BEGIN and COMMIT included), as {node, thread, sql,
    bindings}, and every rollback and close of a connection's handle, as {node, thread, op}, in the order they run.
    `node` is the connection's name: the unique_id of the model or test being run (dbt names a thread's connection
    after its node), else what dbt named it (`master`, a schema listing); `thread` tells the connections apart
    (each of dbt's threads has its own, with its own transaction)."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    recorded: list[dict] = []
    add_query = DuckDBConnectionManager.add_query
    rollback, close = DuckDBConnectionManager._rollback_handle.__func__, DuckDBConnectionManager._close_handle.__func__

    def record(connection, **what) -> None:
        recorded.append({"node": connection.name, "thread": threading.get_ident(), **what})

    def recording(self, sql, auto_begin=True, bindings=None, *rest, **options):
        if auto_begin and self.get_thread_connection().transaction_open is False:
            self.begin()  # dbt's BEGIN runs before the statement: recorded before it too
        record(self.get_thread_connection(), sql=sql, bindings=bindings)
        return add_query(self, sql, False, bindings, *rest, **options)

    def recording_rollback(cls, connection) -> None:  # dbt rolls back on the handle, not with a statement
        record(connection, op="rollback")
        rollback(cls, connection)

    def recording_close(cls, connection) -> None:  # dbt closes a thread's connection after each node
        record(connection, op="close")
        close(cls, connection)

    DuckDBConnectionManager.add_query = recording
    DuckDBConnectionManager._rollback_handle = classmethod(recording_rollback)
    DuckDBConnectionManager._close_handle = classmethod(recording_close)
    return recorded


def write_recording(path: Path, recorded: list[dict], results) -> None:
    """The recorded statements with what a replay needs of each node: its kind, the model a test is attached to and
    its severity (a test's statement returns failures, should_warn, should_error; its severity decides); atomically.
    A statement with bindings that JSON cannot carry makes no recording (the next build runs dbt again)."""
    nodes = {}
    for r in results:
        node = r.node
        nodes[node.unique_id] = {
            "kind": node.resource_type.value if hasattr(node.resource_type, "value") else str(node.resource_type),
            "attached_node": getattr(node, "attached_node", None),
            "severity": str(getattr(node.config, "severity", "") or "").upper() or None,
            "status": getattr(r.status, "value", str(r.status)),
        }
    try:
        text = json.dumps({"nodes": nodes, "statements": recorded})
    except TypeError as error:
        print(f"dbt's statements were not recorded: {error}", file=sys.stderr)
        return
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    scratch.write_text(text)
    os.replace(scratch, path)


def write_results(path: Path, results) -> None:
    """The run's results as run_results.json's `results` (unique_id, status, message, execution_time), each test
    with the node it is attached to; atomically."""
    rows = [
        {
            "unique_id": r.node.unique_id,
            "status": getattr(r.status, "value", str(r.status)),
            "message": r.message,
            "execution_time": r.execution_time,
            "attached_node": getattr(r.node, "attached_node", None),
        }
        for r in results
    ]
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    scratch.write_text(json.dumps({"results": rows}, indent=1, default=str))
    os.replace(scratch, path)


if __name__ == "__main__":
    sys.exit(main())
