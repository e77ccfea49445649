"""Data quality: Great Expectations 1.x suites for the lake and the marts (no Dagster here)."""
