"""The frames a suite validates, read as narrowly as the suite allows: only its columns from one
lake partition, or only its columns (or its query) from one mart, so checking a large lake or
warehouse costs a few columns, not whole tables."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from .. import lake
from ..warehouse.runner import warehouse_path
from .expectations import Suite


class MissingTableError(LookupError):
    """A table a check needs is not there yet."""


def lake_frame(spec: Suite, connection: str, home: Path) -> pd.DataFrame:
    """The suite's columns of one connection's partition; an empty frame if it was never written."""
    path = lake.partition_path(spec.zone, spec.table, connection, home)
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype="object") for c in spec.columns})
    return pq.read_table(path, columns=spec.columns).to_pandas()


def open_warehouse(home: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to warehouse.duckdb (checks never write it)."""
    path = warehouse_path(home)
    if not path.exists():
        raise MissingTableError(f"{path} does not exist: materialize the warehouse assets first")
    return duckdb.connect(str(path), read_only=True)


def warehouse_frame(con: duckdb.DuckDBPyConnection, spec: Suite) -> pd.DataFrame:
    """The suite's query (or its columns of the mart) as a DataFrame."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [spec.table]
    ).fetchone()[0]
    if not exists:
        raise MissingTableError(
            f"warehouse table {spec.table!r} does not exist: build the warehouse (sql/"
            f"{spec.table}.sql) before checking it"
        )
    columns = ", ".join(f'"{c}"' for c in spec.columns)
    sql = spec.query or f'SELECT {columns} FROM "{spec.table}"'
    return con.execute(sql).df()
