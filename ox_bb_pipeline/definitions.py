"""The Dagster code location: every definition under `defs/` is discovered, none registered by hand."""

from pathlib import Path

import dagster as dg

from . import defs as defs_package


@dg.definitions
def defs() -> dg.Definitions:
    return dg.components.load_defs(defs_package, project_root=Path(__file__).resolve().parent.parent)
