"""The Parquet lake between stages: one file per table and connection partition, written atomically.

Layout: `OX_BB_HOME/lake/<zone>/<table>/connection=<name>/data.parquet` (zone = raw | findings | scans |
inventory | ops). A partition is replaced whole (temp file, then rename), so readers never see half a write
and parallel runs for different connections never touch the same file. Every table of a zone but `raw`
has one schema (`findings/*/*/*.parquet` reads findings only): what scans did (scan_runs, posture_results)
lives under `scans/`, not beside the findings. `findings/pull_requests` holds what pull-request scans found
introduced, in the same schema: read it apart from the scanners' tables (its findings are proposals, not the tip's).
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .files import atomic_write_bytes


def lake_root(home: Path) -> Path:
    """The lake under a data home (the caller names it: the `storage` resource, or the CLI from OX_BB_HOME)."""
    return Path(home) / "lake"


def partition_path(zone: str, table: str, connection: str, home: Path) -> Path:
    return lake_root(home) / zone / table / f"connection={connection}" / "data.parquet"


def write_partition(
    zone: str, table: str, connection: str, rows: Iterable[dict], schema: pa.Schema, home: Path
) -> Path:
    """Replace the partition with `rows` (conformed to `schema`; missing keys become nulls)."""
    rows = list(rows)
    columns = {f.name: [row.get(f.name) for row in rows] for f in schema}
    table_ = pa.Table.from_pydict(columns, schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table_, buffer, compression="zstd")
    return atomic_write_bytes(partition_path(zone, table, connection, home), buffer.getvalue())


def read_partition(zone: str, table: str, connection: str, home: Path) -> list[dict]:
    """The partition's rows, or [] when it was never written."""
    path = partition_path(zone, table, connection, home)
    if not path.exists():
        return []
    return pq.read_table(path).to_pylist()


def delete_partition(zone: str, table: str, connection: str, home: Path) -> None:
    path = partition_path(zone, table, connection, home)
    path.unlink(missing_ok=True)
    if path.parent.exists() and not any(path.parent.iterdir()):
        path.parent.rmdir()


def table_glob(zone: str, table: str, home: Path) -> str:
    """A DuckDB-readable glob over every partition of a table (hive partitioning on `connection`)."""
    return str(lake_root(home) / zone / table / "connection=*" / "*.parquet")


SCANS_ZONE = "scans"
# Tables that lived under findings/ before (their schema is not the findings'), moved by migrate_layout.
MOVED_TO_SCANS = ("scan_runs", "posture_results")


def migrate_layout(home: Path) -> list[Path]:
    """Move the partitions of an older lake's findings/scan_runs and findings/posture_results to scans/
    (a rename each: atomic, no copy). Safe to call from parallel runs and on every run: a partition
    already under scans/ is newer than the old one, which is dropped; one another run moved is skipped."""
    moved = []
    for table in MOVED_TO_SCANS:
        old = lake_root(home) / "findings" / table
        if not old.is_dir():
            continue
        new = lake_root(home) / SCANS_ZONE / table
        new.mkdir(parents=True, exist_ok=True)
        for partition in sorted(old.glob("connection=*")):
            target = new / partition.name
            try:
                if target.exists():
                    shutil.rmtree(partition)
                else:
                    os.rename(partition, target)
                    moved.append(target)
            except FileNotFoundError:
                continue  # another run moved or dropped it meanwhile
        try:
            old.rmdir()
        except OSError:
            pass  # gone already, or a stray file the operator should see
    return moved
