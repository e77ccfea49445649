"""Builds the warehouse: input tables over the lake and the settings, then the dbt project of `sql/`
(`dbt build`: every model in dependency order and its dbt tests), in a copy of `OX_BB_HOME/warehouse.duckdb`
that replaces it only once every model and test has succeeded.
Readers keep the old file until the rename; a failed build leaves it as it was.
Builds on one home are serialized by a lock (`.warehouse.lock`): two at once would each start from the
same copy and the later rename would drop the other's appended history. Copies left by killed builds
are removed when the next build starts.

Starting from a copy keeps what must outlive a build where it is: append-only tables (the history)
only receive new rows, a stateful model's last table becomes its `previous_<model>` input by a rename,
and tables other code keeps in the warehouse (e.g. a workflow action log) are left alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from ..bitbucket import tables as raw_tables
from ..findings import FINDING_SCHEMA
from ..lake import SCANS_ZONE, lake_root, migrate_layout
from ..locks import home_lock, owner_gone
from ..scanners import registry
from . import compaction, pipelines, replay
from .decisions import DECISION_SCHEMA, decisions_path, read_decisions
from .models import SQL_DIR, Model, dbt_models
from .project import DbtError, DbtProcess, dbt_home, failures, node_name, start
from .settings import (
    ACTIVITY_WINDOW_DAYS,
    FRAMEWORKS,
    INACTIVE_AFTER_DAYS,
    SEVERITIES,
    ApplicationsFile,
    WarehouseSettings,
    load_settings,
)
from .triage import TRIAGE_SCHEMA, read_triage, triage_path

SCANNERS = registry.names()  # as loaded, for callers that name them; lake_inputs() reads the registry
WAREHOUSE_FILE = "warehouse.duckdb"
# nodes a replayed build runs at once (replay.run), at most one per DuckDB thread: two kept both cores of the
# benchmark machine busy (each node alone used ~1.5 of them); more only add memory held at once
REPLAY_LANES = 2


def lake_inputs() -> dict[str, tuple[str, str, pa.Schema]]:
    """Input name -> (lake zone, table, schema to fall back on when the table has no partition yet)."""
    from ..run_failures import RUN_FAILURE_SCHEMA
    from ..scanners.lake_tables import (
        COMPONENT_SCHEMA,
        PULL_REQUEST_FINDINGS_TABLE,
        PULL_REQUEST_SCAN_SCHEMA,
        PULL_REQUEST_SCANS_TABLE,
    )
    from ..scanners.posture import RESULT_SCHEMA
    from ..scanners.stage import SCAN_RUN_SCHEMA

    inputs = {f"raw_{name}": ("raw", name, raw_tables.schema(name)) for name in raw_tables.TABLES}
    inputs |= {s.warehouse_input: ("findings", s.lake_table, FINDING_SCHEMA) for s in registry.scanners()}
    inputs |= {
        "scan_runs": (SCANS_ZONE, "scan_runs", SCAN_RUN_SCHEMA),
        "posture_results": (SCANS_ZONE, "posture_results", RESULT_SCHEMA),
        "components": ("inventory", "components", COMPONENT_SCHEMA),
        "run_failures": ("ops", "run_failures", RUN_FAILURE_SCHEMA),
        "pull_request_scans": (SCANS_ZONE, PULL_REQUEST_SCANS_TABLE, PULL_REQUEST_SCAN_SCHEMA),
        "pull_request_scan_findings": ("findings", PULL_REQUEST_FINDINGS_TABLE, FINDING_SCHEMA),
    }
    return inputs


def warehouse_path(home: Path) -> Path:
    return home / WAREHOUSE_FILE


@dataclass
class BuildResult:
    path: Path
    build_id: str
    now: datetime
    seconds: float
    rows: dict[str, int] = field(default_factory=dict)  # table model -> rows after the build (views: not counted)
    model_seconds: dict[str, float] = field(default_factory=dict)
    models: list[Model] = field(default_factory=list)  # in build order
    tests: dict[str, str] = field(default_factory=dict)  # dbt test -> pass | fail | error (the dbt build's)
    test_models: dict[str, str] = field(default_factory=dict)  # dbt test -> the model it tests
    # where the time went: copy (of the last warehouse), inputs, dbt (the child process), after (comments, counts);
    # dbt_ready: how long dbt's child took to import dbt and load the manifest, meanwhile (from before the copy)
    step_seconds: dict[str, float] = field(default_factory=dict)
    replayed: bool = False  # dbt's statements of the last build ran again without dbt (see replay)
    compacted: bool = False  # the build vacuumed the tables it wrote (see compaction)


def build(
    home: Path,
    *,
    now: datetime | None = None,
    settings: WarehouseSettings | None = None,
    sql_dir: Path = SQL_DIR,
    memory_limit: str | None = None,
    threads: int | None = None,
    progress: Callable[[str], None] | None = None,
    full_refresh: bool = False,
    replay: bool = True,
    compact: bool | None = None,
) -> BuildResult:
    """Build every model of the data home `home` (the caller names it: the app layer or the storage resource);
    `now` is the build's clock (models never read the system time). `full_refresh`: the incremental models compute
    every row (dbt --full-refresh; the append-only history is kept). `replay`: a build that dbt would run exactly
    as the last one runs the statements dbt sent then, without starting dbt (see `replay`); False runs dbt.
    `compact`: whether the build vacuums the tables it writes; None: when due (see `compaction`)."""
    started = time.perf_counter()
    now = (now or datetime.now(UTC)).astimezone(UTC)
    settings = settings or load_settings(home)
    build_id = now.strftime("%Y%m%dT%H%M%S.%fZ")
    target = warehouse_path(home)
    target.parent.mkdir(parents=True, exist_ok=True)
    with warehouse_lock(home, "warehouse ", progress):
        remove_stale_builds(target)
        migrate_layout(home)  # an older lake's scan_runs and posture_results move out of findings/
        return _build(
            home,
            target,
            now,
            settings,
            sql_dir,
            memory_limit,
            threads,
            progress,
            build_id,
            started,
            full_refresh,
            replay,
            compact,
        )


def warehouse_lock(home: Path, what: str, waiting: Callable[[str], None] | None = None):
    """Held by every writer of the warehouse file (builds, applied workflows): a write made while a build
    works on its copy would be lost at the build's rename."""
    return home_lock(warehouse_path(home).with_name(".warehouse.lock"), home, what, waiting)


def building_path(target: Path) -> Path:
    """The copy a build works on: one stable name per home, used only by the holder of the warehouse lock. Stable,
    because dbt parses the whole project again whenever its database path changes (the path is part of the
    profile, and so of what decides whether the last parse can be reused): a name with the pid made every build
    re-parse every model, about 5 CPU s."""
    return target.with_name(f".{target.name}.current.building")


def remove_stale_builds(target: Path) -> list[Path]:
    """Remove the `.warehouse.duckdb.<pid>-<host>.building` copies (and their WAL) that earlier versions named per
    process, of builds of this host whose process is gone (`.<pid>.building`: a copy named before host names were
    recorded, taken as this host's). Today's stable copy is removed by the next build, under the lock."""
    removed = []
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(?P<pid>\d+)(?:-(?P<host>.+))?\.building(?:\.wal)?$")
    for path in target.parent.glob(f".{target.name}.*.building*"):
        match = pattern.match(path.name)
        if match and owner_gone(int(match["pid"]), match["host"]):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _build(
    home: Path,
    target: Path,
    now: datetime,
    settings: WarehouseSettings,
    sql_dir: Path,
    memory_limit: str | None,
    threads: int | None,
    progress: Callable[[str], None] | None,
    build_id: str,
    started: float,
    full_refresh: bool = False,
    replay: bool = True,
    compact: bool | None = None,
) -> BuildResult:
    building = building_path(target)
    _remove(building)  # a copy left by a killed build (only the lock's holder uses this name)
    models = dbt_models(sql_dir)
    dbt = DbtBuild(building, home, sql_dir, models, memory_limit, threads, full_refresh, replay)
    # without a replay plan dbt starts now: it imports itself and loads the project's manifest while the copy and its
    # inputs are made
    with dbt:
        if dbt.plan is None:
            dbt.start()
        return _build_with(
            dbt,
            home,
            target,
            building,
            models,
            now,
            settings,
            memory_limit,
            threads,
            progress,
            build_id,
            started,
            compaction.decide(dbt.dbt_dir, compact),
        )


def _build_with(
    dbt: DbtBuild,
    home: Path,
    target: Path,
    building: Path,
    models: list[Model],
    now: datetime,
    settings: WarehouseSettings,
    memory_limit: str | None,
    threads: int | None,
    progress: Callable[[str], None] | None,
    build_id: str,
    started: float,
    compact: compaction.Decision,
) -> BuildResult:
    step = time.perf_counter()
    for source, copy in ((target, building), (_wal(target), _wal(building))):
        if source.exists():
            shutil.copyfile(source, copy)
    flushed = _flush(building)  # started once the inputs are made (see _flush)
    result = BuildResult(path=target, build_id=build_id, now=now, seconds=0.0)
    step = _step(result, "copy", step)
    con = duckdb.connect(str(building))
    try:
        configure(con, home, memory_limit, threads)
        scratch(con)
        config = settings_tables(settings, build_id, now)
        inputs = set(lake_inputs()) | set(config) | {"pipeline_definitions", "workflow_decisions", "triage_decisions"}
        stateful = {m.previous for m in models if m.state}
        with _transaction(con):  # a few commits, not one per catalog change
            known_pipelines = _previous_pipeline_definitions(con)
            migrated = _clear_previous_build(con, models, inputs)
            register_lake_inputs(con, home)
            for name, rows in config.items():
                create_table(con, name, rows, CONFIG_SCHEMAS.get(name))
            create_code_context_macro(con, settings.code_context)
            register_pipeline_definitions(con, known_pipelines)
            register_decisions(con, home)
        dbt.catalog = replay.catalog(con) if models else None
        step = _step(result, "inputs", step)
        flushed.start()
        if dbt.replays():
            # dbt's own connections vacuum as DuckDB does by default; a replay only when compaction is due
            con.execute(f"SET max_vacuum_tasks = {compaction.VACUUM_TASKS if compact.compact else 0}")
            order = replay_dbt(dbt, con, models, result)
        else:
            con.execute("CHECKPOINT")
            con.close()  # dbt opens the copy itself
            order = run_dbt(dbt.process, models, result)
            con = duckdb.connect(str(building))
            configure(con, home, memory_limit, threads)
            scratch(con)
        step = _step(result, "dbt", step)
        result.compacted = compact.compact or not result.replayed
        if progress and result.replayed:
            progress(
                f"warehouse  dbt not started: the last dbt build's statements replayed "
                f"({replay.plan_path(dbt.dbt_dir)}); compaction: {'yes' if compact.compact else 'no'}, {compact.reason}"
            )
        with _transaction(con):
            describe(con, order)
        for model in order:
            # a view is not counted: counting runs its query (finding_states' window over the whole history, ~0.5 s
            # at 1M findings), and its rows are whatever a reader's query computes then
            if model.materialized != "view":
                result.rows[model.name] = con.execute(f'SELECT count(*) FROM "{model.name}"').fetchone()[0]
            if progress:
                rows = f"{result.rows[model.name]:,} rows" if model.name in result.rows else "view"
                progress(f"warehouse  {model.name}: {rows} ({result.model_seconds.get(model.name, 0.0):.1f}s)")
        with _transaction(con):
            for name in stateful:
                con.execute(f'DROP TABLE "{name}"')
            for name in migrated:
                con.execute(f'DROP TABLE IF EXISTS "{name}"')
        con.execute("CHECKPOINT")
        dead = compaction.dead_shares(con, result.rows)
        con.close()
        flushed.join()
        _sync(building)  # what the build wrote, on disk before the rename: the warehouse is never a torn file
        os.replace(building, target)
        _sync(target.parent)  # and the rename itself
        dbt.swapped_in()
        compaction.record(dbt.dbt_dir, result.compacted, dead)
        _step(result, "after", step)
    except BaseException:
        con.close()
        if flushed.ident is not None:
            flushed.join()
        _remove(building)
        raise
    result.models = order
    result.seconds = time.perf_counter() - started
    return result


def _flush(path: Path) -> threading.Thread:
    """A thread (not started) that writes the copy's pages to disk while the build goes on, so that the sync before
    the rename (`_sync`) finds little left to write; an error here is left to that sync. Start it once the inputs are
    made, and join it first: while it syncs, the first read of each lake file the scan just wrote waits for the
    journal (its access time is updated), ~0.3-0.5 s of a night at 1M findings when it started with the copy."""

    def flush() -> None:
        with contextlib.suppress(OSError):
            _sync(path)

    return threading.Thread(target=flush, name="warehouse-copy-sync", daemon=True)


def _sync(path: Path) -> None:
    """fsync a file or a folder."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _step(result: BuildResult, name: str, since: float) -> float:
    now = time.perf_counter()
    result.step_seconds[name] = round(now - since, 3)
    return now


class DbtBuild:
    """dbt's part of one build: `dbt build` in its child process (`start`: before the copy, so that it gets ready
    meanwhile; `run_dbt`), or, when the last dbt build's recording is the plan for this one (same key, and
    `replays()` once the inputs are made: same catalog), those statements run again without dbt (`replay`). A dbt
    build records its statements; `swapped_in()` makes them the next build's plan. A context manager: leaving it
    stops a child that never ran."""

    def __init__(
        self,
        building: Path,
        home: Path,
        sql_dir: Path,
        models: list[Model],
        memory_limit: str | None,
        threads: int | None,
        full_refresh: bool = False,
        may_replay: bool = True,
    ) -> None:
        memory_limit, threads, spill = duckdb_settings(home, memory_limit, threads)
        self.command = ["build", *(["--full-refresh"] if full_refresh else [])]
        self.vars = {
            "warehouse_path": str(building),
            "memory_limit": memory_limit,
            "duckdb_threads": threads,
            "temp_directory": str(spill),
            **registry.dbt_vars(),
        }  # the registry now, not as loaded
        self.models, self.sql_dir, self.dbt_dir = models, sql_dir, dbt_home(home)
        self.recording = self.dbt_dir / f".{replay.PLAN_FILE}.recording"
        self.key = replay.plan_key(self.command, self.vars, self.dbt_dir, sql_dir) if models else ""
        # a full refresh recomputes every row: it runs dbt (so does a build told not to replay), and the plan stays
        self.plan = replay.load(self.dbt_dir, self.key) if models and may_replay and not full_refresh else None
        self.process: DbtProcess | None = None
        self.catalog: str | None = None  # the database's catalog when the inputs are made (replay.catalog)

    def start(self) -> None:
        """dbt build (recording its statements), started; nothing to start for a project without models."""
        if self.models and self.process is None:
            self.recording.unlink(missing_ok=True)
            # a full refresh's statements recompute every row: no plan for a night
            record = None if "--full-refresh" in self.command else self.recording
            self.process = start(
                self.command, vars=self.vars, dbt_dir=self.dbt_dir, project_dir=self.sql_dir, record=record
            )

    def replays(self) -> bool:
        """Whether this build replays the plan (its catalog is the recorded build's); if not, dbt starts now."""
        if self.plan is not None and self.plan.catalog == self.catalog:
            return True
        self.plan = None
        self.start()
        return False

    def swapped_in(self) -> None:
        """The build is in place: a dbt build's recording becomes the next build's plan."""
        if self.process is not None and self.catalog is not None:
            replay.keep(self.dbt_dir, self.recording, self.key, self.catalog)

    def __enter__(self) -> DbtBuild:
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.close()
        self.recording.unlink(missing_ok=True)


def replay_dbt(dbt: DbtBuild, con: duckdb.DuckDBPyConnection, models: list[Model], result: BuildResult) -> list[Model]:
    """The plan's statements on the copy (see `replay`): models and tests as `run_dbt` reports them. A failure (a
    statement's error, a failed test) raises DbtError naming it, and removes the plan: the next build runs dbt."""
    try:
        runs = replay.run(con, dbt.plan, lanes=min(REPLAY_LANES, dbt.vars["duckdb_threads"]))
        problems = [f"{node_name(r.unique_id)}: {r.message or r.status}" for r in runs if r.status == "fail"]
        if problems:
            raise DbtError("the warehouse build failed, the previous warehouse is unchanged: " + "; ".join(problems))
    except BaseException:
        replay.forget(dbt.dbt_dir)
        raise
    result.replayed = True
    return _record_nodes(result, models, ((r.unique_id, r.seconds, r.status, r.attached_node) for r in runs))


def run_dbt(dbt: DbtProcess | None, models: list[Model], result: BuildResult) -> list[Model]:
    """Run the started `dbt build` on the copy: every model, then its tests; a model that fails or a test that fails
    stops the build (DbtError naming them), so the copy is never swapped in. Returns the models in build order."""
    if dbt is None:
        return []
    outcome = dbt.run()
    if dbt.ready_seconds is not None:  # compare with copy + inputs: the larger one is the wait before dbt runs
        result.step_seconds["dbt_ready"] = round(dbt.ready_seconds, 3)
    problems = failures(outcome)
    if problems or not outcome.success:
        raise DbtError(
            "the warehouse build failed, the previous warehouse is unchanged: "
            + ("; ".join(problems) or outcome.output[-2000:])
        )
    nodes = (
        (r["unique_id"], r["execution_time"], r["status"], outcome.nodes.get(r["unique_id"], {}).get("attached_node"))
        for r in outcome.results
    )
    return _record_nodes(result, models, nodes)


def _record_nodes(result: BuildResult, models: list[Model], nodes) -> list[Model]:
    """Each node run, as (unique_id, seconds, status, attached node), into the result: a model's seconds, a test's
    status and the model it tests. Returns the models in build order."""
    by_name = {m.name: m for m in models}
    order = []
    for unique_id, seconds, status, attached in nodes:
        kind, _, name, *_ = unique_id.split(".")  # model.<project>.<name> | test.<project>.<name>.<hash>
        if kind == "model" and name in by_name:
            order.append(by_name[name])
            result.model_seconds[name] = seconds
        elif kind == "test":
            result.tests[name] = status
            result.test_models[name] = (attached or "").rsplit(".", 1)[-1]
    return order


def duckdb_settings(home: Path, memory_limit: str | None, threads: int | None) -> tuple[str, int, Path]:
    spill = home / "cache" / "duckdb"
    spill.mkdir(parents=True, exist_ok=True)
    memory_limit = memory_limit or os.environ.get("OX_BB_DUCKDB_MEMORY", "1GB")
    threads = int(threads or os.environ.get("OX_BB_DUCKDB_THREADS") or min(4, os.cpu_count() or 1))
    return memory_limit, threads, spill


def scratch(con: duckdb.DuckDBPyConnection) -> None:
    """The build's copy is scratch until it is synced and renamed into place (a crash before leaves a copy the next
    build removes), so its commits and checkpoints need not wait for the disk: one sync before the rename makes the
    whole file durable (`_sync`). Waiting at each commit cost ~0.4 s of a night at 1M findings: the first waited
    for the whole copy to reach the disk."""
    con.execute("SET fsync_mode = 'NONE'")


def configure(con: duckdb.DuckDBPyConnection, home: Path, memory_limit: str | None, threads: int | None) -> None:
    """Bounded memory (spilling to OX_BB_HOME/cache/duckdb) and UTC dates whatever the machine's zone."""
    memory_limit, threads, spill = duckdb_settings(home, memory_limit, threads)
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = {_literal(memory_limit)}")
    con.execute(f"SET threads = {threads}")
    con.execute(f"SET temp_directory = {_literal(spill)}")
    con.execute("SET preserve_insertion_order = false")  # lets large CREATE TABLE AS stream instead of buffer


# -- inputs ---------------------------------------------------------------------------------------
def register_lake_inputs(con: duckdb.DuckDBPyConnection, home: Path) -> None:
    """A view per lake table over all its connection partitions, with every column of the known
    schema (missing ones as typed nulls); an empty typed table when nothing was written yet.
    And `lake_partitions` (see register_lake_partitions) for the scanners' tables."""
    root = lake_root(home)
    columns = {}
    for name, (zone, table, schema) in lake_inputs().items():
        folder = root / zone / table
        if not any(folder.glob("connection=*/*.parquet")):
            create_table(con, name, [], schema)
            continue
        files = _literal(folder / "connection=*" / "*.parquet")
        source = f"read_parquet({files}, hive_partitioning = true, union_by_name = true)"
        present = [row[:2] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
        missing = [(f.name, duckdb_type(f.type)) for f in schema if f.name not in {column for column, _ in present}]
        nulls = "".join(f', NULL::{dtype} AS "{column}"' for column, dtype in missing)
        con.execute(f'CREATE VIEW "{name}" AS SELECT *{nulls} FROM {source}')
        columns[name] = (files, present + missing)
    register_lake_partitions(
        con,
        {s.warehouse_input: columns[s.warehouse_input] for s in registry.scanners() if s.warehouse_input in columns},
    )


def register_lake_partitions(con: duckdb.DuckDBPyConnection, views: dict[str, tuple[str, list]]) -> None:
    """`lake_partitions`: one row per lake view of `views` (name -> its files' glob and its columns) and
    connection partition, with a digest of what its rows are made of: the bytes of the partition's files, the
    view's columns (union_by_name: a column another partition adds changes every row) and the DuckDB version (its
    hash function). Equal digests, equal rows: findings_partition_digests reads again only the partitions whose
    digest changed. The partition a file belongs to is DuckDB's hive partition value (what the view's
    `connection` column holds)."""
    con.execute("DROP TABLE IF EXISTS lake_partitions")  # not an input the build's start drops: made only here
    rows = []
    for name, (glob, view_columns) in views.items():
        files: dict[str, list[str]] = {}
        for path, connection in con.execute(
            f"SELECT DISTINCT _file, connection "
            f"FROM read_parquet({glob}, hive_partitioning = true, union_by_name = true, filename = '_file')"
        ).fetchall():
            files.setdefault(connection, []).append(path)
        for connection, paths in files.items():
            digest = hashlib.sha256(repr((duckdb.__version__, name, connection, view_columns)).encode())
            for path in sorted(paths):
                digest.update(Path(path).name.encode() + b"\0")  # not the home's path: a moved home reads nothing
                with open(path, "rb") as file:
                    digest.update(hashlib.file_digest(file, "sha256").digest())
            rows.append({"input": name, "connection": connection, "digest": digest.hexdigest()})
    create_table(con, "lake_partitions", rows, pa.schema([("input", S), ("connection", S), ("digest", S)]))


S, I, D, LS = pa.string(), pa.int64(), pa.date32(), pa.list_(pa.string())
# Typed explicitly: an empty file must still give typed columns (and rows are made without Arrow: see create_table).
CONFIG_SCHEMAS = {
    "config_severity_levels": pa.schema([("severity", S), ("severity_rank", I), ("label", S)]),
    "config_sla": pa.schema([("severity", S), ("days", I)]),
    "config_frameworks": pa.schema([("framework", S), ("prefix", S), ("title", S)]),
    "config_posture_checks": pa.schema(
        [
            ("check_id", S),
            ("title", S),
            ("category", S),
            ("topic", S),
            ("severity", S),
            ("controls", LS),
            ("rationale", S),
            ("remediation", S),
        ]
    ),
    "config_applications": pa.schema(
        [
            ("app_order", I),
            ("application", S),
            ("parent_application", S),
            ("team", S),
            ("owners", LS),
            ("data_classification", S),
            ("business_priority", S),
            ("irrelevant_reason", S),
        ]
    ),
    "config_application_repositories": pa.schema(
        [
            ("app_order", I),
            ("match_order", I),
            ("application", S),
            ("workspace_glob", S),
            ("project_glob", S),
            ("repository_glob", S),
        ]
    ),
    "config_application_paths": pa.schema([("application", S), ("parent_application", S), ("path_glob", S)]),
    "config_suppressions": pa.schema(
        [
            ("suppression_id", S),
            ("fingerprint", S),
            ("rule_id", S),
            ("path_glob", S),
            ("repository_glob", S),
            ("reason", S),
            ("owner", S),
            ("expires", D),
        ]
    ),
    "config_scanner_controls": pa.schema([("scanner", S), ("control_id", S)]),
    "build_context": pa.schema(
        [
            ("build_id", S),
            ("now", pa.timestamp("us", tz="UTC")),
            ("inactive_after_days", I),
            ("activity_window_days", I),
            ("default_data_classification", S),
            ("correlation_line_window", I),
        ]
    ),
    "config_severity_factors": pa.schema(
        [
            ("factor_order", I),
            ("name", S),
            ("condition", S),
            ("direction", S),
            ("steps", I),
            ("applies_to", pa.list_(pa.struct([("category", S), ("exploitable_only", pa.bool_())]))),
            ("except_when", LS),
            ("at_least", S),
            ("sentence", S),
            ("rationale", S),
        ]
    ),
    "config_code_context_rules": pa.schema(
        [
            ("rule_order", I),
            ("name", S),
            ("context", S),
            ("path", S),
            ("content", S),
            ("decision", S),
            ("categories", LS),
            ("rationale", S),
        ]
    ),
    "config_cwe_families": pa.schema([("family", S), ("title", S), ("exploitable", pa.bool_()), ("cwe", S)]),
    "config_cwe_family_rules": pa.schema([("scanner", S), ("rule_id", S), ("family", S)]),
}


def settings_tables(settings: WarehouseSettings, build_id: str, now: datetime) -> dict[str, list[dict]]:
    """The configuration files and catalogs as `config_*` tables, and `build_context` (the clock)."""

    apps = settings.applications
    return {
        "build_context": [
            {
                "build_id": build_id,
                "now": now,
                "inactive_after_days": INACTIVE_AFTER_DAYS,
                "activity_window_days": ACTIVITY_WINDOW_DAYS,
                "default_data_classification": apps.defaults.data_classification,
                "correlation_line_window": settings.cwe_families.line_window,
            }
        ],
        "config_severity_levels": [
            {"severity": s, "severity_rank": i, "label": s.capitalize()} for i, s in enumerate(SEVERITIES)
        ],
        "config_sla": [{"severity": s, "days": d} for s, d in settings.sla.sla_days.items()],
        "config_applications": _application_rows(apps),
        "config_application_repositories": [
            {
                "app_order": i,
                "match_order": j,
                "application": a.name,
                "workspace_glob": m.workspace,
                "project_glob": m.project,
                "repository_glob": m.repository,
            }
            for i, a in enumerate(apps.applications)
            for j, m in enumerate(a.repositories)
        ],
        "config_application_paths": [
            {"application": c.name, "parent_application": a.name, "path_glob": p}
            for a in apps.applications
            for c in a.children
            for p in c.paths
        ],
        "config_suppressions": [
            {
                "suppression_id": f"S{i}",
                "fingerprint": s.fingerprint,
                "rule_id": s.rule_id,
                "path_glob": s.path or "*",
                "repository_glob": s.repository,
                "reason": s.reason,
                "owner": s.owner,
                "expires": s.expires,
            }
            for i, s in enumerate(settings.suppressions.suppressions, 1)
        ],
        "config_severity_factors": [
            {"factor_order": i, **f.model_dump()} for i, f in enumerate(settings.factors.factors, 1)
        ],
        "config_code_context_rules": [{"rule_order": i, **r} for i, r in enumerate(settings.code_context, 1)],
        "config_cwe_families": [
            {"family": name, "title": f.title, "exploitable": f.exploitable, "cwe": cwe}
            for name, f in settings.cwe_families.families.items()
            for cwe in f.cwes
        ],
        "config_cwe_family_rules": [
            {"scanner": key.partition("/")[0], "rule_id": key.partition("/")[2], "family": family}
            for key, family in settings.cwe_families.rules.items()
        ],
        "config_posture_checks": posture_check_rows(),
        "config_scanner_controls": [
            {"scanner": s, "control_id": c} for s, controls in settings.scanner_controls.items() for c in controls
        ],
        "config_frameworks": [
            {"framework": k, "prefix": prefix, "title": title} for k, (prefix, title) in FRAMEWORKS.items()
        ],
    }


def posture_check_rows() -> list[dict]:
    """The posture catalog as the rows of scanners.posture.catalog_table(), made here without Arrow (see
    create_table; that module is part of the posture scanner's version, so it stays as it is)."""
    from ..scanners.posture import load_catalog

    return [
        {
            "check_id": c.id,
            "title": c.title,
            "category": c.category,
            "topic": c.topic,
            "severity": c.severity,
            "controls": c.control_ids,
            "rationale": c.rationale,
            "remediation": c.remediation,
        }
        for c in load_catalog()
    ]


def create_code_context_macro(con: duckdb.DuckDBPyConnection, rules: list[dict]) -> None:
    """`code_context_matches(path, markers)`: the code_context.yaml rules a file matches, in catalog
    order, as {rule, matched} (matched: the part of the path a path rule matched). Made from the data
    so every pattern is a constant: a pattern read from a table column is compiled again per row,
    which costs minutes on a million findings; a constant one is compiled once."""
    items = []
    for rule in rules:
        name = _literal(rule["name"])
        if rule["path"] is not None:
            pattern = _literal(rule["path"])
            items.append(
                f"CASE WHEN regexp_matches(path, {pattern}) "
                f"THEN {{'rule': {name}, 'matched': regexp_extract(path, {pattern})}} END"
            )
        else:
            items.append(
                f"CASE WHEN list_contains(markers, {name}) THEN {{'rule': {name}, 'matched': NULL::VARCHAR}} END"
            )
    body = f"list_filter([{', '.join(items)}], lambda m: m IS NOT NULL)" if items else "[]"
    con.execute(f"CREATE OR REPLACE MACRO code_context_matches(path, markers) AS {body}")
    con.execute(f"CREATE OR REPLACE MACRO code_context_any(path, markers) AS {_code_context_any(con, rules)}")


def _code_context_any(con: duckdb.DuckDBPyConnection, rules: list[dict]) -> str:
    """The body of `code_context_any(path, markers)`: true exactly when code_context_matches(path, markers)
    is not empty (NULL, like false, when it is empty and path is NULL), as a prefilter that is cheap on a
    million paths: one RE2 alternation of the path rules instead of one regex per rule. Each pattern is a
    group `(?:p)`, so its flags like `(?i)` and its anchors stay its own, and regexp_matches (a partial
    match) matches the alternation exactly when it matches one of them. A pattern that could end a group
    early (`\\Q` quotes up to `\\E` or the end) is tested on its own, and so are all of them if the
    alternation does not compile (RE2's size limit)."""
    patterns = [rule["path"] for rule in rules if rule["path"] is not None]
    markers = [rule["name"] for rule in rules if rule["path"] is None]
    quoting = [p for p in patterns if "\\Q" in p]
    grouped = [p for p in patterns if "\\Q" not in p]
    if len(grouped) > 1:
        combined = "|".join(f"(?:{p})" for p in grouped)
        probe = con.cursor()  # its own transaction: a failed statement would abort the caller's
        try:
            probe.execute(f"SELECT regexp_matches('', {_literal(combined)})")
            grouped = [combined]
        except duckdb.Error:
            pass  # each on its own, as code_context_matches tests them
        finally:
            probe.close()
    tests = [f"regexp_matches(path, {_literal(p)})" for p in grouped + quoting]
    tests += [f"list_contains(markers, {_literal(name)})" for name in markers]
    return f"({' OR '.join(tests)})" if tests else "false"


def _application_rows(apps: ApplicationsFile) -> list[dict]:
    """Applications and their monorepo children, each child naming its parent (it inherits what it leaves unset)."""
    rows = []
    for app in apps.applications:
        for entry, parent in [(app, None), *((child, app.name) for child in app.children)]:
            rows.append(
                {
                    "app_order": len(rows),
                    "application": entry.name,
                    "parent_application": parent,
                    "team": entry.team,
                    "owners": entry.owners,
                    "data_classification": entry.data_classification,
                    "business_priority": entry.business_priority,
                    "irrelevant_reason": app.irrelevant if parent is None else None,
                }
            )
    return rows


def register_pipeline_definitions(con: duckdb.DuckDBPyConnection, known: str | None) -> None:
    """bitbucket-pipelines.yml parsed in Python, only the files whose text (sha256) the last build's rows (the table
    `known`, from _previous_pipeline_definitions) do not have: the others' rows are copied from it in SQL, without
    reading them into Python (about 0.4 s at 10,000 repositories). A file's rows depend only on its text."""
    parsed_schema = pa.schema([f for f in pipelines.SCHEMA if f.name not in pipelines.REPOSITORY_COLUMNS])
    columns = ", ".join(f'"{name}"' for name in parsed_schema.names)
    parsed_columns = ", ".join(f'p."{name}"' for name in parsed_schema.names)
    con.execute(
        "CREATE TEMP TABLE _configs AS SELECT connection, workspace, repository_uuid, repository, main_commit, yml, "
        "sha256(yml) AS yml_sha256 FROM raw_pipeline_configs WHERE yml_present AND yml IS NOT NULL"
    )
    create_table(con, "_parsed", [], parsed_schema, temporary=True)
    if known:
        # one copy of each file's rows (each repository holding the file has the same rows)
        con.execute(
            f'INSERT INTO _parsed SELECT DISTINCT {columns} FROM "{known}" '
            "WHERE yml_sha256 IN (SELECT yml_sha256 FROM _configs)"
        )
    new = con.execute(
        "SELECT yml_sha256, any_value(yml) FROM _configs WHERE yml_sha256 NOT IN (SELECT yml_sha256 FROM _parsed) "
        "GROUP BY yml_sha256"
    ).fetchall()
    _insert(con, "_parsed", [row for key, text in new for row in pipelines.file_rows(text, key)], parsed_schema)
    create_table(con, "pipeline_definitions", [], pipelines.SCHEMA)
    con.execute(
        f"INSERT INTO pipeline_definitions SELECT c.connection, c.workspace, c.repository_uuid, c.repository, "
        f"c.main_commit, {parsed_columns} "
        "FROM _configs AS c JOIN _parsed AS p USING (yml_sha256)"
    )
    for name in ("_configs", "_parsed", *([known] if known else [])):
        con.execute(f'DROP TABLE "{name}"')


def _previous_pipeline_definitions(con: duckdb.DuckDBPyConnection) -> str | None:
    """The last build's pipeline_definitions, when it has today's columns, renamed out of the way (the table it
    becomes; register_pipeline_definitions drops it once read)."""
    present = {
        row[0]
        for row in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'main' "
            "AND table_name = 'pipeline_definitions'"
        ).fetchall()
    }
    if not {f.name for f in pipelines.SCHEMA} <= present:
        return None
    con.execute('ALTER TABLE pipeline_definitions RENAME TO "_last_pipeline_definitions"')
    return "_last_pipeline_definitions"


def duckdb_type(dtype: pa.DataType) -> str:
    """DuckDB's type for an Arrow type, as DuckDB reads an Arrow column of it (the types the inputs' schemas use)."""
    simple = {
        pa.string(): "VARCHAR",
        pa.large_string(): "VARCHAR",
        pa.int64(): "BIGINT",
        pa.int32(): "INTEGER",
        pa.int16(): "SMALLINT",
        pa.int8(): "TINYINT",
        pa.float64(): "DOUBLE",
        pa.float32(): "FLOAT",
        pa.bool_(): "BOOLEAN",
        pa.date32(): "DATE",
        pa.binary(): "BLOB",
        pa.large_binary(): "BLOB",
    }
    if dtype in simple:
        return simple[dtype]
    if pa.types.is_timestamp(dtype):
        if dtype.tz is not None:
            return "TIMESTAMP WITH TIME ZONE"
        return {"s": "TIMESTAMP_S", "ms": "TIMESTAMP_MS", "us": "TIMESTAMP", "ns": "TIMESTAMP_NS"}[dtype.unit]
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return f"{duckdb_type(dtype.value_type)}[]"
    if pa.types.is_struct(dtype):
        fields = ", ".join(f'"{f.name}" {duckdb_type(f.type)}' for f in dtype)
        return f"STRUCT({fields})"
    if pa.types.is_decimal(dtype):
        return f"DECIMAL({dtype.precision}, {dtype.scale})"
    raise TypeError(f"no DuckDB type known for the Arrow type {dtype}: add it to runner.duckdb_type")


def create_table(
    con: duckdb.DuckDBPyConnection,
    name: str,
    rows: list[dict] | pa.Table,
    schema: pa.Schema | None = None,
    *,
    temporary: bool = False,
) -> None:
    """A table of `rows`: an Arrow table as it is, a list of dicts in `schema` (a key it lacks is null). Dicts go to
    DuckDB as one list parameter per column, not through Arrow: building Arrow arrays from Python objects makes
    pyarrow import pandas (0.3 s a build, 1.5 s where bytecode is not cached), for a few hundred rows."""
    if isinstance(rows, pa.Table):
        con.register("_rows", rows)
        con.execute(f'CREATE {"TEMP " if temporary else ""}TABLE "{name}" AS SELECT * FROM _rows')
        con.unregister("_rows")
        return
    if schema is None:
        raise TypeError(f"create_table({name!r}): rows as dicts need a schema")
    columns = ", ".join(f'"{f.name}" {duckdb_type(f.type)}' for f in schema)
    con.execute(f'CREATE {"TEMP " if temporary else ""}TABLE "{name}" ({columns})')
    _insert(con, name, rows, schema)


def _insert(con: duckdb.DuckDBPyConnection, name: str, rows: list[dict], schema: pa.Schema) -> None:
    """`rows` appended to the table `name` (its columns: `schema`), each column one list parameter unnested."""
    if rows:
        values = ", ".join(f"unnest(?::{duckdb_type(f.type)}[])" for f in schema)
        con.execute(f'INSERT INTO "{name}" SELECT {values}', [[row.get(f.name) for row in rows] for f in schema])


def register_decisions(con: duckdb.DuckDBPyConnection, home: Path) -> None:
    """workflow_decisions and triage_decisions; without their file, the empty table is made without Arrow (see
    create_table), as read_decisions and read_triage would give it."""
    path = decisions_path(home)
    has_decisions = path.exists() and path.stat().st_size > 0
    create_table(con, "workflow_decisions", read_decisions(home) if has_decisions else [], DECISION_SCHEMA)
    create_table(con, "triage_decisions", read_triage(home) if triage_path(home).exists() else [], TRIAGE_SCHEMA)


# -- models ---------------------------------------------------------------------------------------
def _clear_previous_build(con: duckdb.DuckDBPyConnection, models: list[Model], inputs: set[str]) -> list[str]:
    """Drop what the last build made and this one makes again (inputs, table models); keep append
    models; rename each stateful model's table to previous_<model>, with any newly declared state
    column added (null), or create it empty on the first build. A model that was a table and is now a view
    keeps its last rows as previous_<model> for this build (a stateful table split into a base and a view: the
    base starts from them); returns those names, which the build drops at its end."""
    relations = dict(
        con.execute(
            "SELECT table_name, 'TABLE' FROM duckdb_tables() WHERE schema_name = 'main' "
            "UNION ALL SELECT view_name, 'VIEW' FROM duckdb_views() "
            "WHERE schema_name = 'main' AND NOT internal"
        ).fetchall()
    )
    owned = inputs | {m.name for m in models if m.materialized in ("table", "view") and not m.state}
    migrated = []
    for name in sorted(owned & {m.name for m in models if m.materialized == "view"}):
        if relations.get(name) == "TABLE":
            con.execute(f'DROP TABLE IF EXISTS "previous_{name}"')
            con.execute(f'ALTER TABLE "{name}" RENAME TO "previous_{name}"')
            del relations[name]
            migrated.append(f"previous_{name}")
    for name in owned & set(relations):
        con.execute(f'DROP {relations[name]} "{name}"')
    for model in models:
        if not model.state:
            continue
        if model.name in relations:
            con.execute(f'ALTER TABLE "{model.name}" RENAME TO "{model.previous}"')
            present = {row[0] for row in con.execute(f'DESCRIBE "{model.previous}"').fetchall()}
            for column, dtype in model.state:
                if column not in present:
                    con.execute(f'ALTER TABLE "{model.previous}" ADD COLUMN "{column}" {dtype}')
        else:
            columns = ", ".join(f'"{name}" {dtype}' for name, dtype in model.state)
            con.execute(f'CREATE TABLE "{model.previous}" ({columns})')
    return migrated


def describe(con: duckdb.DuckDBPyConnection, models: list[Model]) -> None:
    """Each model's description and column descriptions as comments (the warehouse documents itself). Only those
    that differ from the comments there: an incremental model's table keeps its comments from build to build (one
    statement per comment cost ~0.15 s of a night)."""
    present: dict[tuple[str, str | None], str | None] = {
        (name, column): comment
        for name, column, comment in con.execute(
            """
            SELECT table_name, NULL, comment FROM duckdb_tables()
            WHERE database_name = current_database() AND schema_name = 'main'
            UNION ALL
            SELECT view_name, NULL, comment FROM duckdb_views()
            WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal
            UNION ALL
            SELECT table_name, column_name, comment FROM duckdb_columns()
            WHERE database_name = current_database() AND schema_name = 'main'
            """
        ).fetchall()
    }
    comments = []
    for model in models:
        kind = "VIEW" if model.materialized == "view" else "TABLE"
        if present.get((model.name, None)) != model.description:
            comments.append(f'COMMENT ON {kind} "{model.name}" IS {_literal(model.description)}')
        comments += [
            f'COMMENT ON COLUMN "{model.name}"."{column}" IS {_literal(text)}'
            for column, text in model.columns.items()
            if (model.name, column) in present and present[(model.name, column)] != text
        ]
    if comments:
        con.execute(";\n".join(comments))


def _literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection):
    con.execute("BEGIN")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _remove(path: Path) -> None:
    for candidate in (path, _wal(path)):
        candidate.unlink(missing_ok=True)
