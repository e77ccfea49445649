"""Dagster-facing code, one folder per stage. Each folder only wires plain-Python code together."""
