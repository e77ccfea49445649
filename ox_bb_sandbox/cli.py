"""The sandbox's commands in `ox-bb`: `ox-bb sandbox serve` and `ox-bb demo` (with `--ui`). The product CLI
(ox_bb_pipeline/app/cli.py) finds them through the `ox_bb.cli` entry point group, so it works, and says what
to install, without the sandbox; the sandbox imports the product, never the reverse."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import click
import lark  # noqa: F401 - the [sandbox] extra: missing, this plug-in fails to load and `ox-bb` says what to install
import werkzeug  # noqa: F401


# -- sandbox --------------------------------------------------------------------------------------
@click.group()
def sandbox() -> None:
    """A local Bitbucket Cloud (REST 2.0 + git smart HTTP) for demos and tests."""


def sandbox_options(fn):
    """Generator sizes shared by every command that starts a sandbox."""
    from .generator import SandboxSpec

    d = SandboxSpec()
    options = [
        click.option("--seed", type=int, default=d.seed, show_default=True, help="Generator seed."),
        click.option("--workspaces", type=click.IntRange(1), default=d.workspaces, show_default=True),
        click.option(
            "--projects", type=click.IntRange(1), default=d.projects, show_default=True, help="Projects per workspace."
        ),
        click.option(
            "--repos", type=click.IntRange(0), default=d.repos, show_default=True, help="Repositories per workspace."
        ),
        click.option(
            "--branches",
            type=click.IntRange(0),
            default=d.branches,
            show_default=True,
            help="Long-lived branches per repository besides main.",
        ),
        click.option(
            "--pull-requests",
            type=click.IntRange(0),
            default=d.pull_requests,
            show_default=True,
            help="Pull requests per repository.",
        ),
        click.option(
            "--commits",
            type=click.IntRange(0),
            default=d.commits,
            show_default=True,
            help="Direct commits on main per repository.",
        ),
        click.option(
            "--import-repo",
            "import_repos",
            multiple=True,
            metavar="PATH[=WS/SLUG]",
            help="Serve a local git repository too (repeatable).",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def build_spec(seed, workspaces, projects, repos, branches, pull_requests, commits):
    from .generator import SandboxSpec

    return SandboxSpec(
        seed=seed,
        workspaces=workspaces,
        projects=projects,
        repos=repos,
        branches=branches,
        pull_requests=pull_requests,
        commits=commits,
    )


@sandbox.command("serve")
@click.option("--port", type=int, default=0, show_default=True, help="Port on 127.0.0.1 (0 = a free port).")
@sandbox_options
@click.option(
    "--write-connections",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a connections file for the seeded credentials (+ FILE.env with the secrets).",
)
@click.option(
    "--rate-limit",
    type=click.IntRange(1),
    default=1000,
    show_default=True,
    help="REST requests per rolling hour per credential.",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="ROUTE=KIND[:TIMES]",
    help="Inject a fault (500, 502, 503, slow, drop, truncate, repeat, next_on_last) on paths "
    "matching the ROUTE glob, e.g. '/2.0/repositories/*=503:2'.",
)
@click.option("--manual-clock", is_flag=True, help="Time moves only via POST /_sandbox/clock.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the generated git repositories live (default: a temporary directory).",
)
def sandbox_serve(
    port,
    seed,
    workspaces,
    projects,
    repos,
    branches,
    pull_requests,
    commits,
    import_repos,
    write_connections,
    rate_limit,
    faults,
    manual_clock,
    data_dir,
) -> None:
    """Serve a generated Bitbucket Cloud on 127.0.0.1 until interrupted."""
    from .control import FaultRule
    from .importer import RepositoryImportError
    from .server import SandboxServer

    try:
        rules = [FaultRule.parse(f) for f in faults]
        server = SandboxServer(
            build_spec(seed, workspaces, projects, repos, branches, pull_requests, commits),
            port=port,
            data_dir=data_dir,
            import_repos=list(import_repos),
            manual_clock=manual_clock,
            rate_limit=rate_limit,
            faults=rules,
        )
    except (ValueError, RepositoryImportError) as exc:
        raise click.UsageError(str(exc)) from exc
    except subprocess.CalledProcessError as exc:  # git could not build a repository in --data-dir
        detail = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-1:] or [f"exit {exc.returncode}"]
        where = data_dir or "a temporary directory"
        raise click.ClickException(
            f"cannot generate the sandbox's repositories in {where}: {detail[0]}; "
            "remove that folder or choose another --data-dir"
        ) from exc
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


# -- demo ---------------------------------------------------------------------------------------
DEMO_CONNECTIONS = ("sandbox-app", "sandbox-token")  # two methods: OAuth app and API token


@click.command("demo")
@sandbox_options
@click.option(
    "--ui", is_flag=True, help="Instead of one run: the Dagster UI (dagster dev) on the sandbox, until Ctrl-C."
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=3000,
    show_default=True,
    help="Port of the Dagster UI on 127.0.0.1 (with --ui).",
)
def demo_command(seed, workspaces, projects, repos, branches, pull_requests, commits, import_repos, ui, port) -> None:
    """Start the sandbox, run the whole pipeline once against it, print a summary, stop the sandbox.

    With --ui: start the sandbox and the Dagster UI on it instead, for a click-through.
    """
    from ox_bb_pipeline.app.cli import print_summary
    from ox_bb_pipeline.app.runner import exit_code, run_stages
    from ox_bb_pipeline.config import data_home

    from .server import SandboxServer

    home = data_home()
    click.echo(f"ox-bb demo — data home {home}")
    spec = build_spec(seed, workspaces, projects, repos, branches, pull_requests, commits)
    if ui:
        sys.exit(demo_ui(home, spec, list(import_repos), port))
    results = []
    with SandboxServer(spec, import_repos=list(import_repos)) as server:
        click.echo(f"sandbox   {server.api_url}")
        sync_demo_advisories(server, home, click.echo)
        path = server.write_connections(home / "sandbox" / "connections.yaml")
        results = run_stages("all", path, list(DEMO_CONNECTIONS), progress=click.echo)
    failed = [r for r in results if not r.success]
    for result in failed:
        click.echo(f"FAILED {result.stage} {result.connection}: {result.error.splitlines()[0]}")
    if not any(r.stage == "warehouse" and r.success for r in results):
        sys.exit(1)
    print_summary(
        home,
        click.echo,
        accounts=len({r.connection for r in results if r.stage == "extract" and r.success}),
        connections=DEMO_CONNECTIONS,
    )
    sys.exit(exit_code(results))


def sync_demo_advisories(server, home: Path, echo) -> None:
    """`ox-bb advisories sync` from the sandbox's OSV / KEV / EPSS mirror, as a user syncs from OSV."""
    from .devui import sync_sandbox_advisories

    report = sync_sandbox_advisories(server, home)
    changed = sum(f.outcome == "downloaded" for f in report.fetches)
    records = sum(report.index.records.values()) if report.index else None
    echo(
        f"advisories synced from the sandbox mirror: {changed} of {len(report.fetches)} files changed"
        + (f", {records} advisories indexed" if records is not None else "")
    )
    for warning in report.warnings:
        echo(f"warning: {warning}")


UI_GUIDE = """\
Dagster UI  {url}/asset-groups  (answers once Dagster has loaded the code: a minute or two)
  1. Lineage: the groups bitbucket -> scanning -> warehouse -> reports; click an asset for its
     description, owners, kinds and columns.
  2. bitbucket/repositories -> Materialize... -> Confirm (one step extracts every raw table) ->
     pick a connection, e.g. sandbox-token -> Launch 1 run; the run page shows each table's rows.
  3. The same for scanning/secrets_findings (same connection), then warehouse/findings and the
     reports group (not partitioned): findings by severity and compliance scores as metadata.
Ctrl-C stops Dagster and the sandbox."""


def demo_ui(home: Path, spec, import_repos: list[str], port: int) -> int:
    """The sandbox and `dagster dev` on it, until Ctrl-C (or SIGTERM); returns dagster dev's status."""
    import socket

    from .devui import sandbox_ui, stop

    with socket.socket() as probe:  # refuse a taken port before the slow start, not after
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise click.ClickException(f"port {port} on 127.0.0.1 is in use; choose another with --port")
    with sandbox_ui(home, spec, import_repos) as dev:
        click.echo(f"sandbox     {dev.sandbox.api_url}  (connections: {dev.connections})")
        click.echo(f"dagster     DAGSTER_HOME={dev.dagster_home}")
        click.echo(UI_GUIDE.format(url=dev.url(port)))
        # Ctrl-C or SIGTERM ends the command, even if started where SIGINT is ignored (a background
        # job); dagster dev then inherits the default and shuts down on the SIGINT `stop` sends it.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        process = dev.start(port)
        try:
            return process.wait()
        except KeyboardInterrupt:
            return 0
        finally:
            stop(process)
