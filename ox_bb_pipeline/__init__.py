"""ox-bb-pipeline: Bitbucket Cloud into an application-security program (Dagster + DuckDB)."""

__version__ = "0.1.0"
