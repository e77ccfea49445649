"""What the warehouse hands to people and other tools: a Parquet file per model table under
`<home>/exports/` (each written atomically), and the data dictionary generated from the models.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import duckdb

from ..files import atomic_write_text
from ..lake import lake_root
from .models import SQL_DIR, data_dictionary, discover
from .runner import build, warehouse_path
from .settings import WarehouseSettings, load_factor_catalog, load_scanner_controls

DATA_DICTIONARY_PATH = SQL_DIR.parent / "docs" / "data-dictionary.md"


def open_warehouse(home: Path, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """A read-only connection by default (readers never block the next build, which writes a new
    file); writers (workflow actions) must run where builds cannot (the `duckdb_writer` pool)."""
    path = warehouse_path(home)
    if not path.exists():
        raise FileNotFoundError(f"no warehouse at {path}; build it first (ox-bb run --stage warehouse)")
    return duckdb.connect(str(path), read_only=read_only)


def open_for_queries(home: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection that reads no file but the warehouse and the lake (its input views read the
    lake's Parquet): external access is off with the lake as the only allowed directory, and the
    configuration is locked so that a query cannot turn it back on."""
    con = open_warehouse(home)
    try:
        con.execute("SET allowed_directories = [?]", [f"{lake_root(home)}/"])
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def export_tables(home: Path) -> dict[str, Path]:
    """Every model table to `<home>/exports/<table>.parquet`; readers see the old file or the new one."""
    folder = home / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    con = open_warehouse(home)
    try:
        present = {row[0] for row in con.execute("SELECT DISTINCT table_name FROM duckdb_columns()").fetchall()}
        for model in discover():
            if model.name not in present:
                continue
            target = folder / f"{model.name}.parquet"
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{model.name}.", suffix=".parquet.tmp")
            os.close(fd)
            try:
                con.execute(f"COPY \"{model.name}\" TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)")
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            written[model.name] = target
    finally:
        con.close()
    return written


def column_types(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    types: dict[str, dict[str, str]] = {}
    for table, column, dtype in con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE schema_name = 'main' "
        "ORDER BY table_name, column_index"
    ).fetchall():
        types.setdefault(table, {})[column] = dtype
    return types


def write_data_dictionary(path: Path = DATA_DICTIONARY_PATH) -> Path:
    """docs/data-dictionary.md: the model headers, with column types from a build over an empty lake
    (so the file depends on the models only, never on the data at hand)."""
    with tempfile.TemporaryDirectory(prefix="ox-bb-dictionary-") as scratch:
        settings = WarehouseSettings(factors=load_factor_catalog(), scanner_controls=load_scanner_controls())
        built = build(Path(scratch), settings=settings)
        con = duckdb.connect(str(built.path), read_only=True)
        try:
            types = column_types(con)
        finally:
            con.close()
    return atomic_write_text(path, data_dictionary(discover(), types))
