"""The DuckDB warehouse: SQL models in `sql/` over the Parquet lake and the settings files, built
atomically into OX_BB_HOME/warehouse.duckdb, with exports, reports and analyst commands (no Dagster)."""

from .runner import BuildResult, build, warehouse_path

__all__ = ["BuildResult", "build", "warehouse_path"]
