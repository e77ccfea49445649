"""The `ox-bb` command: run the sandbox, the pipeline and the demo from a terminal."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from . import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ox-bb")
def main() -> None:
    """Bitbucket Cloud into an application-security program (Dagster + DuckDB)."""


# -- sandbox --------------------------------------------------------------------------------------
@main.group()
def sandbox() -> None:
    """A local Bitbucket Cloud (REST 2.0 + git smart HTTP) for demos and tests."""


def sandbox_options(fn):
    """Generator sizes shared by every command that starts a sandbox."""
    from .sandbox.generator import SandboxSpec

    d = SandboxSpec()
    options = [
        click.option("--seed", type=int, default=d.seed, show_default=True, help="Generator seed."),
        click.option("--workspaces", type=click.IntRange(1), default=d.workspaces, show_default=True),
        click.option("--projects", type=click.IntRange(1), default=d.projects, show_default=True,
                     help="Projects per workspace."),
        click.option("--repos", type=click.IntRange(0), default=d.repos, show_default=True,
                     help="Repositories per workspace."),
        click.option("--branches", type=click.IntRange(0), default=d.branches, show_default=True,
                     help="Long-lived branches per repository besides main."),
        click.option("--pull-requests", type=click.IntRange(0), default=d.pull_requests, show_default=True,
                     help="Pull requests per repository."),
        click.option("--commits", type=click.IntRange(0), default=d.commits, show_default=True,
                     help="Direct commits on main per repository."),
        click.option("--import-repo", "import_repos", multiple=True, metavar="PATH[=WS/SLUG]",
                     help="Serve a local git repository too (repeatable)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def build_spec(seed, workspaces, projects, repos, branches, pull_requests, commits):
    from .sandbox.generator import SandboxSpec

    return SandboxSpec(seed=seed, workspaces=workspaces, projects=projects, repos=repos, branches=branches,
                       pull_requests=pull_requests, commits=commits)


@sandbox.command("serve")
@click.option("--port", type=int, default=0, show_default=True, help="Port on 127.0.0.1 (0 = a free port).")
@sandbox_options
@click.option("--write-connections", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a connections file for the seeded credentials (+ FILE.env with the secrets).")
@click.option("--rate-limit", type=click.IntRange(1), default=1000, show_default=True,
              help="REST requests per rolling hour per credential.")
@click.option("--fault", "faults", multiple=True, metavar="ROUTE=KIND[:TIMES]",
              help="Inject a fault (500, 502, 503, slow, drop, truncate, repeat, next_on_last) on paths "
                   "matching the ROUTE glob, e.g. '/2.0/repositories/*=503:2'.")
@click.option("--manual-clock", is_flag=True, help="Time moves only via POST /_sandbox/clock.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the generated git repositories live (default: a temporary directory).")
def sandbox_serve(port, seed, workspaces, projects, repos, branches, pull_requests, commits, import_repos,
                  write_connections, rate_limit, faults, manual_clock, data_dir) -> None:
    """Serve a generated Bitbucket Cloud on 127.0.0.1 until interrupted."""
    from .sandbox.control import FaultRule
    from .sandbox.importer import RepositoryImportError
    from .sandbox.server import SandboxServer

    try:
        rules = [FaultRule.parse(f) for f in faults]
        server = SandboxServer(build_spec(seed, workspaces, projects, repos, branches, pull_requests, commits),
                               port=port, data_dir=data_dir, import_repos=list(import_repos),
                               manual_clock=manual_clock, rate_limit=rate_limit, faults=rules)
    except (ValueError, RepositoryImportError) as exc:
        raise click.UsageError(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from exc
    n_repos = sum(len(w.repositories) for w in server.world.workspaces.values())
    click.echo(f"ox-bb sandbox: {len(server.world.workspaces)} workspaces, {n_repos} repositories")
    click.echo(f"REST API  {server.api_url}")
    click.echo(f"git       {server.base_url}/<workspace>/<repo>.git")
    click.echo(f"admin     {server.base_url}/_sandbox/stats")
    if write_connections:
        server.write_connections(write_connections)
        click.echo(f"connections written to {write_connections} (secrets in {write_connections}.env)")
    click.echo(server.base_url, err=True)
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
