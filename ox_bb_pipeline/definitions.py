"""The Dagster code location: every definition under `defs/` is discovered, none registered by hand; the
default executor (multiprocess, creating the step pools first) is set here, for every job."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    from .defs.automation.executors import multiprocess_with_pools

    found = dg.load_from_defs_folder(path_within_project=Path(__file__).resolve().parent)
    return dg.Definitions.merge(found, dg.Definitions(executor=multiprocess_with_pools))
