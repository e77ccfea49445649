"""The `storage` resource: the data home (`OX_BB_HOME` unless configured) and the tool environments.
Assets take their paths from it and hand them to core functions explicitly, so a run's locations are
configuration shown in the launchpad, not environment variables read deep inside the code."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from ...config import data_home
from ...lake import lake_root
from ...scanners.base import tools_dir
from ...warehouse.runner import warehouse_path


class StorageResource(dg.ConfigurableResource):
    """Empty fields mean the defaults: `OX_BB_HOME` (else ./data) and `OX_BB_TOOLS_DIR` (else ./.tools)."""

    home: str = ""
    tools: str = ""

    def home_path(self) -> Path:
        return Path(self.home).resolve() if self.home else data_home()

    def lake(self) -> Path:
        return lake_root(self.home_path())

    def warehouse(self) -> Path:
        return warehouse_path(self.home_path())

    def tools_path(self) -> Path:
        return Path(self.tools).resolve() if self.tools else tools_dir()


def step_io_path(home: Path) -> Path:
    return home / "staging" / "io"


@dg.io_manager(required_resource_keys={"storage"})
def step_io_manager(init_context: dg.InitResourceContext) -> dg.IOManager:
    """Where steps hand each other values (only the scan's shard numbers; every asset writes the lake and returns
    nothing): under the run's `storage` home, which every worker mounts like the lake, never DAGSTER_HOME/storage."""
    base = step_io_path(init_context.resources.storage.home_path())
    return dg.FilesystemIOManager(base_dir=str(base)).create_io_manager(init_context)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"storage": StorageResource(), "io_manager": step_io_manager})
