"""Builds the warehouse: input tables over the lake and the settings, then every model of `sql/` in
dependency order, into a new database file that replaces `OX_BB_HOME/warehouse.duckdb` only once
every model has succeeded. Readers keep the old file until the rename; a failed build leaves it as is.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from ..bitbucket import tables as raw_tables
from ..config import data_home
from ..lake import lake_root
from ..scanners.finding import FINDING_SCHEMA
from . import pipelines
from .models import SQL_DIR, Model, build_order, discover
from .settings import (ACTIVITY_WINDOW_DAYS, FRAMEWORKS, INACTIVE_AFTER_DAYS, SEVERITIES, WarehouseSettings,
                       load_settings)

log = logging.getLogger(__name__)

SCANNERS = ("secrets", "bandit", "semgrep", "checkov", "sca", "posture", "sarif")
WAREHOUSE_FILE = "warehouse.duckdb"


def lake_inputs() -> dict[str, tuple[str, str, pa.Schema]]:
    """Input name -> (lake zone, table, schema to fall back on when the table has no partition yet)."""
    from ..scanners.posture import RESULT_SCHEMA
    from ..scanners.sca import COMPONENT_SCHEMA
    from ..scanners.stage import SCAN_RUN_SCHEMA

    inputs = {f"raw_{name}": ("raw", name, raw_tables.schema(name)) for name in raw_tables.TABLES}
    inputs |= {f"findings_{scanner}": ("findings", scanner, FINDING_SCHEMA) for scanner in SCANNERS}
    inputs |= {"scan_runs": ("findings", "scan_runs", SCAN_RUN_SCHEMA),
               "posture_results": ("findings", "posture_results", RESULT_SCHEMA),
               "components": ("inventory", "components", COMPONENT_SCHEMA)}
    return inputs


def warehouse_path(home: Path | None = None) -> Path:
    return (home or data_home()) / WAREHOUSE_FILE


@dataclass
class BuildResult:
    path: Path
    build_id: str
    now: datetime
    seconds: float
    rows: dict[str, int] = field(default_factory=dict)  # model -> rows after the build
    model_seconds: dict[str, float] = field(default_factory=dict)
    models: list[Model] = field(default_factory=list)  # in build order


def build(home: Path | None = None, *, now: datetime | None = None, settings: WarehouseSettings | None = None,
          sql_dir: Path = SQL_DIR, memory_limit: str | None = None, threads: int | None = None,
          progress: Callable[[str], None] | None = None) -> BuildResult:
    """Build every model; `now` is the build's clock (models never read the system time)."""
    started = time.perf_counter()
    home = home or data_home()
    now = (now or datetime.now(UTC)).astimezone(UTC)
    settings = settings or load_settings()
    build_id = now.strftime("%Y%m%dT%H%M%S.%fZ")
    target = warehouse_path(home)
    target.parent.mkdir(parents=True, exist_ok=True)
    building = target.with_name(f".{target.name}.{os.getpid()}.building")
    _remove(building)
    con = duckdb.connect(str(building))
    result = BuildResult(path=target, build_id=build_id, now=now, seconds=0.0)
    try:
        configure(con, home, memory_limit, threads)
        has_previous = target.exists()
        if has_previous:
            con.execute(f"ATTACH {_literal(target)} AS previous (READ_ONLY)")
        con.execute("BEGIN")  # one commit for the whole build: catalog changes are cheap inside it
        inputs = register_lake_inputs(con, home)
        inputs |= register_settings(con, settings, build_id, now)
        inputs |= register_pipeline_definitions(con)
        models = discover(sql_dir)
        stateful = {m.previous for m in models if m.state}
        order = build_order(models, inputs | stateful)
        if has_previous:
            _carry_foreign_tables(con, {m.name for m in models} | inputs | stateful)
        for model in order:
            t0 = time.perf_counter()
            build_model(con, model, has_previous)
            result.model_seconds[model.name] = time.perf_counter() - t0
            result.rows[model.name] = con.execute(f'SELECT count(*) FROM "{model.name}"').fetchone()[0]
            if progress:
                progress(f"warehouse  {model.name}: {result.rows[model.name]:,} rows "
                         f"({result.model_seconds[model.name]:.1f}s)")
        for name in stateful:
            con.execute(f'DROP TABLE "{name}"')
        con.execute("COMMIT")
        if has_previous:
            con.execute("DETACH previous")
        con.execute("CHECKPOINT")
        con.close()
        os.replace(building, target)
    except BaseException:
        con.close()
        _remove(building)
        raise
    result.models = order
    result.seconds = time.perf_counter() - started
    return result


def configure(con: duckdb.DuckDBPyConnection, home: Path, memory_limit: str | None, threads: int | None) -> None:
    """Bounded memory (spilling to OX_BB_HOME/cache/duckdb) and UTC dates whatever the machine's zone."""
    spill = home / "cache" / "duckdb"
    spill.mkdir(parents=True, exist_ok=True)
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = {_literal(memory_limit or os.environ.get('OX_BB_DUCKDB_MEMORY', '1GB'))}")
    con.execute(f"SET threads = {int(threads or os.environ.get('OX_BB_DUCKDB_THREADS') or min(4, os.cpu_count() or 1))}")
    con.execute(f"SET temp_directory = {_literal(spill)}")
    con.execute("SET preserve_insertion_order = false")  # lets large CREATE TABLE AS stream instead of buffer


# -- inputs ---------------------------------------------------------------------------------------
def register_lake_inputs(con: duckdb.DuckDBPyConnection, home: Path) -> set[str]:
    """A view per lake table over all its connection partitions, with every column of the known
    schema (missing ones as typed nulls); an empty typed table when nothing was written yet."""
    root = lake_root(home)
    for name, (zone, table, schema) in lake_inputs().items():
        folder = root / zone / table
        con.register("_schema", schema.empty_table())
        types = {column: dtype for column, dtype, *_ in con.execute("DESCRIBE _schema").fetchall()}
        if not any(folder.glob("connection=*/*.parquet")):
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _schema')
        else:
            source = (f"read_parquet({_literal(folder / 'connection=*' / '*.parquet')}, "
                      "hive_partitioning = true, union_by_name = true)")
            present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
            missing = "".join(f', NULL::{dtype} AS "{column}"' for column, dtype in types.items()
                              if column not in present)
            con.execute(f'CREATE VIEW "{name}" AS SELECT *{missing} FROM {source}')
        con.unregister("_schema")
    return set(lake_inputs())


def register_settings(con: duckdb.DuckDBPyConnection, settings: WarehouseSettings, build_id: str,
                      now: datetime) -> set[str]:
    """The configuration files and catalogs as `config_*` tables, and `build_context` (the clock)."""
    from ..scanners.posture import catalog_table

    apps = settings.applications
    tables: dict[str, list[dict] | pa.Table] = {
        "build_context": [{"build_id": build_id, "now": now, "inactive_after_days": INACTIVE_AFTER_DAYS,
                           "activity_window_days": ACTIVITY_WINDOW_DAYS,
                           "default_data_classification": apps.defaults.data_classification}],
        "config_severity_levels": [{"severity": s, "severity_rank": i, "label": s.capitalize()}
                                   for i, s in enumerate(SEVERITIES)],
        "config_sla": [{"severity": s, "days": d} for s, d in settings.sla.sla_days.items()],
        "config_applications": [
            {"app_order": i, "application": a.name, "parent_application": parent, "team": a.team,
             "owners": a.owners, "data_classification": a.data_classification,
             "business_priority": a.business_priority, "irrelevant_reason": getattr(a, "irrelevant", None)}
            for i, (a, parent) in enumerate((x, p) for app in apps.applications
                                            for x, p in [(app, None), *((c, app.name) for c in app.children)])],
        "config_application_repositories": [
            {"app_order": i, "match_order": j, "application": a.name, "workspace_glob": m.workspace,
             "project_glob": m.project, "repository_glob": m.repository}
            for i, a in enumerate(apps.applications) for j, m in enumerate(a.repositories)],
        "config_application_paths": [
            {"application": c.name, "parent_application": a.name, "path_glob": p}
            for a in apps.applications for c in a.children for p in c.paths],
        "config_suppressions": [
            {"suppression_id": f"S{i}", "fingerprint": s.fingerprint, "rule_id": s.rule_id,
             "path_glob": s.path or "*", "repository_glob": s.repository, "reason": s.reason, "owner": s.owner,
             "expires": s.expires} for i, s in enumerate(settings.suppressions.suppressions, 1)],
        "config_severity_factors": [{"factor_order": i, **f.model_dump()}
                                    for i, f in enumerate(settings.factors.factors, 1)],
        "config_posture_checks": catalog_table(),
        "config_scanner_controls": [{"scanner": s, "control_id": c}
                                    for s, controls in settings.scanner_controls.items() for c in controls],
        "config_frameworks": [{"framework": k, "prefix": prefix, "title": title}
                              for k, (prefix, title) in FRAMEWORKS.items()],
    }
    for name, rows in tables.items():
        create_table(con, name, rows, CONFIG_SCHEMAS.get(name))
    return set(tables)


def register_pipeline_definitions(con: duckdb.DuckDBPyConnection) -> set[str]:
    configs = con.sql("SELECT connection, workspace, repository_uuid, repository, main_commit, yml "
                      "FROM raw_pipeline_configs WHERE yml_present AND yml IS NOT NULL").to_arrow_table()
    create_table(con, "pipeline_definitions", pipelines.pipeline_definitions(configs.to_pylist()))
    return {"pipeline_definitions"}


S, I, D, LS = pa.string(), pa.int64(), pa.date32(), pa.list_(pa.string())
# Typed explicitly: an empty file must still give typed columns.
CONFIG_SCHEMAS = {
    "config_applications": pa.schema([("app_order", I), ("application", S), ("parent_application", S),
                                      ("team", S), ("owners", LS), ("data_classification", S),
                                      ("business_priority", S), ("irrelevant_reason", S)]),
    "config_application_repositories": pa.schema([("app_order", I), ("match_order", I), ("application", S),
                                                  ("workspace_glob", S), ("project_glob", S),
                                                  ("repository_glob", S)]),
    "config_application_paths": pa.schema([("application", S), ("parent_application", S), ("path_glob", S)]),
    "config_suppressions": pa.schema([("suppression_id", S), ("fingerprint", S), ("rule_id", S), ("path_glob", S),
                                      ("repository_glob", S), ("reason", S), ("owner", S), ("expires", D)]),
    "config_scanner_controls": pa.schema([("scanner", S), ("control_id", S)]),
    "build_context": pa.schema([("build_id", S), ("now", pa.timestamp("us", tz="UTC")),
                                ("inactive_after_days", I), ("activity_window_days", I),
                                ("default_data_classification", S)]),
}


def create_table(con: duckdb.DuckDBPyConnection, name: str, rows: list[dict] | pa.Table,
                 schema: pa.Schema | None = None) -> None:
    data = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows, schema=schema)
    con.register("_rows", data)
    con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _rows')
    con.unregister("_rows")


# -- models ---------------------------------------------------------------------------------------
def build_model(con: duckdb.DuckDBPyConnection, model: Model, has_previous: bool) -> None:
    select = model.sql.strip().rstrip(";")
    if model.state:
        _previous_state(con, model, has_previous)
    if model.materialized == "append" and has_previous and _previous_columns(con, model.name):
        # History: the previous build's rows, unchanged, then this build's rows after them.
        con.execute(f'CREATE TABLE "{model.name}" AS SELECT * FROM previous."{model.name}"')
        con.execute(f'INSERT INTO "{model.name}" BY NAME {select}')
    else:
        con.execute(f'CREATE TABLE "{model.name}" AS {select}')
    built = {row[0] for row in con.execute(f'DESCRIBE "{model.name}"').fetchall()}
    comments = [f'COMMENT ON TABLE "{model.name}" IS {_literal(model.description)}']
    comments += [f'COMMENT ON COLUMN "{model.name}"."{column}" IS {_literal(text)}'
                 for column, text in model.columns.items() if column in built]
    con.execute(";\n".join(comments))


def _previous_state(con: duckdb.DuckDBPyConnection, model: Model, has_previous: bool) -> None:
    """previous_<model>: the state columns of the last build's table (empty on the first build;
    columns the last build did not have yet are null)."""
    columns = ", ".join(f'"{name}" {dtype}' for name, dtype in model.state)
    con.execute(f'CREATE TABLE "{model.previous}" ({columns})')
    old = _previous_columns(con, model.name) if has_previous else set()
    if old:
        select = ", ".join(f'"{name}"' if name in old else f"NULL::{dtype}" for name, dtype in model.state)
        con.execute(f'INSERT INTO "{model.previous}" SELECT {select} FROM previous."{model.name}"')


def _previous_columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {row[0] for row in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = 'previous' "
        "AND table_schema = 'main' AND table_name = ?", [table]).fetchall()}


def _carry_foreign_tables(con: duckdb.DuckDBPyConnection, owned: set[str]) -> None:
    """Tables other code keeps in the warehouse (e.g. a workflow action log) survive the rebuild."""
    for (name,) in con.execute("SELECT table_name FROM information_schema.tables WHERE table_catalog = 'previous' "
                               "AND table_schema = 'main' AND table_type = 'BASE TABLE'").fetchall():
        if name not in owned:
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM previous."{name}"')


def _literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _remove(path: Path) -> None:
    for candidate in (path, path.with_name(path.name + ".wal")):
        candidate.unlink(missing_ok=True)
