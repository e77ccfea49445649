"""The `bitbucket` resource: connections.yaml, and a client + git access per connection."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from ...bitbucket.client import BitbucketClient
from ...bitbucket.git import GitAccess
from ...config import ConnectionsFile, default_connections_path, load_connections


class BitbucketResource(dg.ConfigurableResource):
    """Reads the connections file (`OX_BB_CONNECTIONS`, default ./connections.yaml) at run time."""

    connections_file: str = ""

    _loaded: ConnectionsFile | None = PrivateAttr(default=None)

    def path(self) -> Path:
        return Path(self.connections_file) if self.connections_file else default_connections_path()

    def connections(self) -> ConnectionsFile:
        if self._loaded is None:
            self._loaded = load_connections(self.path())
        return self._loaded

    def client(self, name: str) -> BitbucketClient:
        return BitbucketClient(self.connections().get(name))

    def git(self, client: BitbucketClient) -> GitAccess:
        conn = client.connection
        return GitAccess(conn.name, conn.git_url, client.auth.git_credentials)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"bitbucket": BitbucketResource()})
