"""Where the warehouse's SQL project is. In a checkout it is `sql/` at the top of the repository; a wheel ships
it as package data, `ox_bb_pipeline/warehouse/sql` (a symlink to `../../sql` in the checkout, so both read the
same files). Everything that reads the SQL project finds it through `sql_project_dir()`."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


class PackageDataError(FileNotFoundError):
    """A file or folder the installed package must contain is missing; the message names it."""


def sql_project_dir() -> Path:
    """The SQL project's folder (symlinks resolved). Raises PackageDataError when it is missing, rather than
    letting the warehouse load with no models."""
    path = Path(str(files(__package__) / "sql")).resolve()
    if not path.is_dir():
        raise PackageDataError(f"the warehouse SQL project is missing: {path} is not a folder. Reinstall "
                               "ox-bb-pipeline (its wheel ships sql/ as package data), or in a checkout restore "
                               "sql/ and the symlink ox_bb_pipeline/warehouse/sql -> ../../sql")
    return path
