"""Warehouse stage: SQL models into DuckDB, exports and the compliance report."""
