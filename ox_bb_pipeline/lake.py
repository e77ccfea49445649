"""The Parquet lake between stages: one file per table and connection partition, written atomically.

Layout: `OX_BB_HOME/lake/<zone>/<table>/connection=<name>/data.parquet` (zone = raw | findings).
A partition is replaced whole (temp file, then rename), so readers never see half a write and
parallel runs for different connections never touch the same file.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .config import data_home
from .files import atomic_write_bytes


def lake_root(home: Path | None = None) -> Path:
    return (home or data_home()) / "lake"


def partition_path(zone: str, table: str, connection: str, home: Path | None = None) -> Path:
    return lake_root(home) / zone / table / f"connection={connection}" / "data.parquet"


def write_partition(zone: str, table: str, connection: str, rows: Iterable[dict], schema: pa.Schema,
                    home: Path | None = None) -> Path:
    """Replace the partition with `rows` (conformed to `schema`; missing keys become nulls)."""
    rows = list(rows)
    columns = {f.name: [row.get(f.name) for row in rows] for f in schema}
    table_ = pa.Table.from_pydict(columns, schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table_, buffer, compression="zstd")
    return atomic_write_bytes(partition_path(zone, table, connection, home), buffer.getvalue())


def read_partition(zone: str, table: str, connection: str, home: Path | None = None) -> list[dict]:
    """The partition's rows, or [] when it was never written."""
    path = partition_path(zone, table, connection, home)
    if not path.exists():
        return []
    return pq.read_table(path).to_pylist()


def delete_partition(zone: str, table: str, connection: str, home: Path | None = None) -> None:
    path = partition_path(zone, table, connection, home)
    path.unlink(missing_ok=True)
    if path.parent.exists() and not any(path.parent.iterdir()):
        path.parent.rmdir()


def table_glob(zone: str, table: str, home: Path | None = None) -> str:
    """A DuckDB-readable glob over every partition of a table (hive partitioning on `connection`)."""
    return str(lake_root(home) / zone / table / "connection=*" / "*.parquet")
