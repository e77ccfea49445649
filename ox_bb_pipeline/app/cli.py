"""The `ox-bb` command: run the sandbox, the pipeline and the demo from a terminal."""

from __future__ import annotations

import json
import logging
import sys
from importlib.metadata import entry_points
from pathlib import Path

import click

from .. import __version__

PLUGIN_GROUP = "ox_bb.cli"  # entry points naming click commands to add to `ox-bb` (the sandbox provides two)
# Commands a plug-in usually provides, and what to install when it does not.
PLUGIN_HINTS = {
    "sandbox": "the local Bitbucket sandbox",
    "demo": "the demo (it runs the pipeline against the local Bitbucket sandbox)",
}


class PluginGroup(click.Group):
    """A click group that adds the commands of an entry point group when first asked for its commands. A plug-in
    that cannot load (its optional dependencies missing) is left out, and naming one of its usual commands says
    what to install instead of "No such command"."""

    def __init__(self, *args, plugin_group: str = PLUGIN_GROUP, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.plugin_group = plugin_group
        self.plugin_errors: dict[str, str] = {}
        self._loaded = False

    def _load_plugins(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for point in entry_points(group=self.plugin_group):
            if point.name in self.commands:
                continue  # a command of the product itself wins
            try:
                command = point.load()
            except ImportError as exc:  # the plug-in's extra is not installed
                self.plugin_errors[point.name] = f"{type(exc).__name__}: {exc}"
                continue
            if not isinstance(command, click.Command):
                raise click.ClickException(
                    f"entry point {point.name} = {point.value} in group {self.plugin_group}"
                    " is not a click command; fix or uninstall the package providing it"
                )
            self.add_command(command, point.name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugins()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._load_plugins()
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in PLUGIN_HINTS:
            return _missing_plugin(cmd_name, self.plugin_errors.get(cmd_name))
        return command


def _missing_plugin(name: str, error: str | None) -> click.Command:
    """A stand-in for a plug-in command that is not installed: it explains, and exits with status 2."""
    why = f" (it failed to load: {error})" if error else ""

    @click.command(
        name,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
        add_help_option=False,
    )
    def missing() -> None:
        raise click.UsageError(
            f"`ox-bb {name}` is {PLUGIN_HINTS[name]}, which is not installed{why}. Install it "
            "with: pip install 'ox-bb-pipeline[sandbox]' (from a checkout: make install)"
        )

    return missing


@click.group(cls=PluginGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ox-bb")
def main() -> None:
    """Bitbucket Cloud into an application-security program (Dagster + DuckDB)."""


# -- verify ---------------------------------------------------------------------------------------
def format_option(fn):
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="json: one document on stdout, for cron and monitoring.",
    )(fn)


def connections_option(fn):
    return click.option(
        "--connections",
        "connections_file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Connections file (default: $OX_BB_CONNECTIONS or ./connections.yaml).",
    )(fn)


def _load(connections_file, settings: bool = False):
    """The connections file, and with `settings` every warehouse settings file too (applications,
    suppressions, SLA, workflows): all checked before any network call, every problem listed at once."""
    from ..config import ConfigError, default_connections_path, load_connections

    path = connections_file or default_connections_path()
    problems, config = [], None
    try:
        config = load_connections(path)
    except ConfigError as exc:
        problems += [f"{exc.source}: {p}" for p in exc.problems]
    if settings:
        from ..config import data_home
        from ..warehouse.settings import load_settings
        from ..warehouse.workflows import load_workflows

        for loader in (load_settings, load_workflows):
            try:
                loader(home=data_home())
            except ConfigError as exc:
                problems += [p if loader is load_settings else f"{exc.source}: {p}" for p in exc.problems]
    if problems:
        raise click.ClickException(
            f"{len(problems)} problem(s) in the configuration, nothing was run:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )
    return path, config


@main.command("verify")
@connections_option
@click.option("--connection", "only", help="Verify only this connection.")
@format_option
def verify_command(connections_file, only, output_format) -> None:
    """VERIFY CONNECTIVITY: authenticate, list workspaces, probe each capability.

    Exit status: 0 every connection fully works; 2 some connection works but is degraded
    (a capability is missing: the table says which scope and what stops working); 1 some
    connection cannot be used at all.
    """
    from rich.console import Console
    from rich.table import Table

    from ..bitbucket.capabilities import verify
    from ..bitbucket.client import BitbucketClient
    from ..bitbucket.git import GitAccess

    _, config = _load(connections_file)
    if only and only not in config.names:
        raise click.ClickException(f"no connection named {only!r}; the file has: {', '.join(config.names)}")
    console = Console()
    worst = 0
    documents = []
    for connection in config.connections:
        if only and connection.name != only:
            continue
        client = BitbucketClient(connection)
        result = verify(client, GitAccess(connection.name, connection.git_url, client.auth.git_credentials))
        worst = max(worst, {"ok": 0, "degraded": 2, "failed": 3}[result.status])
        if output_format == "json":
            documents.append(
                {
                    "connection": connection.name,
                    "method": connection.method,
                    "status": result.status,
                    "account": result.account,
                    "workspaces": result.workspaces,
                    "error": result.error,
                    "requests_per_hour": result.requests_per_hour,
                    "announced_limit": result.announced_limit,
                    "capabilities": [
                        {
                            "capability": p.capability,
                            "ok": p.ok,
                            "required": p.required,
                            "missing": p.missing,
                            "loses": "" if p.ok else p.loses,
                        }
                        for p in result.probes
                    ],
                }
            )
            continue
        colour = {"ok": "green", "degraded": "yellow", "failed": "red"}[result.status]
        console.print(
            f"\n[bold]{connection.name}[/] ({connection.method}) — [{colour}]{result.status}[/]"
            + (f" as {result.account}" if result.account else "")
            + (f"; workspaces: {', '.join(result.workspaces)}" if result.workspaces else "")
        )
        if result.error:
            console.print(f"  [red]{result.error}[/]")
        console.print(f"  {result.limit_line()}", markup=False, highlight=False)
        if result.probes:
            # Scope and permission names are copied into a token or consumer: the table never cuts
            # them (their column keeps its width, the others wrap), and the missing ones follow the
            # table as plain lines, whole at any width and when piped.
            table = Table(show_header=True, header_style="bold")
            longest = max(len(p.missing) for p in result.probes)
            table.add_column("capability", overflow="fold")
            table.add_column("status", no_wrap=True)
            table.add_column("scope / permission", no_wrap=True, min_width=longest)
            table.add_column("what stops working", overflow="fold")
            for p in result.probes:
                table.add_row(
                    p.capability,
                    "[green]ok[/]" if p.ok else ("[red]missing[/]" if p.required else "[yellow]missing[/]"),
                    p.missing,
                    "" if p.ok else p.loses,
                )
            console.print(table)
            missing = sorted({p.missing for p in result.probes if not p.ok and p.missing})
            if missing:
                click.echo("  missing: " + " ".join(missing))
    advisories = advisory_lines()  # SCA's data is part of "does the pipeline work": say what is missing
    if output_format == "json":
        status = {0: "ok", 2: "degraded", 3: "failed"}[worst]
        click.echo(
            json.dumps(
                {
                    "status": status,
                    "exit_code": {0: 0, 2: 2, 3: 1}[worst],
                    "connections": documents,
                    "advisories": advisories,
                },
                indent=1,
            )
        )
    else:
        console.print()
        for line in advisories:
            console.print(line, markup=False, highlight=False)
    sys.exit({0: 0, 2: 2, 3: 1}[worst])


# -- run ------------------------------------------------------------------------------------------
@main.command("run")
@connections_option
@click.option(
    "--stage",
    type=click.Choice(["extract", "scan", "warehouse", "all"]),
    default="all",
    show_default=True,
    help="Run every stage up to and including this one.",
)
@click.option("--connection", "only", help="Run only this connection.")
@click.option("--full-refresh", is_flag=True, help="Ignore watermarks and re-read everything.")
@format_option
def run_command(connections_file, stage, only, full_refresh, output_format) -> None:
    """Run the pipeline's Dagster assets in-process (for cron and CI), with progress.

    Exit status: 0 every connection ok; 2 some connection degraded (some repositories or scanners
    failed; the summary names how many and the first errors); 1 some connection (or the warehouse)
    failed. With --format json the progress goes to stderr and stdout holds one JSON document.
    """
    # Bad files are refused before Dagster's slow import and before any network call.
    path, _ = _load(connections_file, settings=stage in ("warehouse", "all"))
    from .runner import Interrupted, as_json, debug_log_path, exit_code, outcomes, run_stages, stop_on_signals, summary

    json_output = output_format == "json"
    progress = (lambda line: click.echo(line, err=True)) if json_output else click.echo
    # Dagster's console shows nothing: each failure is one line here, its stack trace goes to the debug
    # log; the pipeline's own warnings (retries, waits) still reach the terminal, as they happen.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("  %(message)s"))
    logging.getLogger("ox_bb_pipeline").addHandler(handler)
    logging.getLogger("ox_bb_pipeline").setLevel(logging.WARNING)
    if stage != "extract":
        for line in advisory_lines():
            progress(line)
    try:
        with stop_on_signals() as interrupted:
            results = run_stages(
                stage,
                path,
                only,
                full_refresh=full_refresh,
                progress=progress,
                log_level="CRITICAL",
                interrupted=interrupted,
            )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    except Interrupted as stop:
        click.echo(f"interrupted by {stop}: the run stopped there; run it again to complete it", err=True)
        sys.exit(128 + stop.signum)
    if json_output:
        click.echo(json.dumps(as_json(results), indent=1))
    else:
        for outcome in outcomes(results):
            if outcome.status != "ok" and outcome.connection != "*":
                click.echo(outcome.line())
                for error in outcome.first_errors:
                    click.echo(f"  {error.splitlines()[0]}")
        click.echo(summary(results))
        if any(not r.success for r in results):
            click.echo(f"(stack traces in {debug_log_path()})")
    sys.exit(exit_code(results))


# -- production -----------------------------------------------------------------------------------
@main.command("preflight")
@click.option("--celery", is_flag=True, help="Also check the Redis broker in $OX_BB_REDIS_URL.")
def preflight_command(celery) -> None:
    """Check the production services (the PostgreSQL behind $DAGSTER_HOME, Redis) before starting."""
    from ..production import PreflightError, preflight

    try:
        for line in preflight(celery=celery):
            click.echo(f"ok  {line}")
    except PreflightError as exc:
        raise click.ClickException(str(exc)) from exc
    for line in advisory_lines():  # not a service: a warning, never a refusal to start
        click.echo(line)


def print_summary(home: Path, echo, accounts: int, connections: tuple[str, ...]) -> None:
    """Accounts, repositories, findings by severity, top applications, compliance, where outputs are."""
    from ..warehouse.exports import open_warehouse
    from ..warehouse.summary import severity_drift

    con = open_warehouse(home)

    def one(sql):
        return con.execute(sql).fetchone()

    (repos,) = one("SELECT count(DISTINCT repository_uuid) FROM repositories")
    echo(f"\nAccounts {accounts}, repositories {repos}")
    severities = con.execute("""
        SELECT final_severity, count(*) FROM findings_queue WHERE status IN ('new', 'open', 'reopened')
        GROUP BY 1 ORDER BY list_position(['critical','high','medium','low','info'], final_severity)""").fetchall()
    echo("Open findings by severity: " + ", ".join(f"{s} {n}" for s, n in severities))
    echo("Severity factors: " + severity_drift(con).line())
    echo("Top applications (open critical + high):")
    for app, crit, high, total in con.execute("""
            SELECT application, count(*) FILTER (WHERE final_severity = 'critical'),
                   count(*) FILTER (WHERE final_severity = 'high'), count(*)
            FROM findings_queue WHERE status IN ('new', 'open', 'reopened')
            GROUP BY 1 ORDER BY 2 DESC, 3 DESC, 4 DESC LIMIT 5""").fetchall():
        echo(f"  {app:<40} critical {crit:>3}  high {high:>3}  open {total:>4}")
    from .. import lake
    from ..scanners.sca import not_evaluated_line

    runs = [r for c in connections for r in lake.read_partition(lake.SCANS_ZONE, "scan_runs", c, home)]
    missing = not_evaluated_line(runs)
    if missing:
        echo(missing)
    from ..warehouse.report import framework_scores

    echo("Compliance score (passing out of evaluated controls, relevant applications; as in the report):")
    for row in sorted(framework_scores(con), key=lambda r: r["framework_title"]):
        echo(f"  {row['framework_title']:<40} {row['score']}")
    con.close()
    echo(f"\nOutputs under {home}:")
    echo(f'  warehouse  {home / "warehouse.duckdb"}   (ox-bb query "SELECT * FROM findings_queue LIMIT 5")')
    echo(f"  exports    {home / 'exports'}/*.parquet")
    echo(f"  report     {home / 'reports' / 'compliance.html'}, explorer.html and compliance.csv")
    echo(f"  lake       {home / 'lake'} (raw, findings, scans, inventory; one partition per connection)")


# -- advisories -----------------------------------------------------------------------------------
@main.group()
def advisories() -> None:
    """Vulnerability data for SCA: OSV exports, CISA KEV and EPSS, indexed under OX_BB_HOME/advisories."""


@advisories.command("sync")
@click.option(
    "--ecosystem",
    "ecosystems",
    multiple=True,
    metavar="NAME",
    help="Only this OSV ecosystem (repeatable; default: PyPI, npm, Maven, Go, RubyGems, crates.io, NuGet, Packagist).",
)
@click.option("--mirror", help="Base URL holding <Ecosystem>/all.zip (default: $OX_BB_OSV_MIRROR or OSV's bucket).")
def advisories_sync(ecosystems, mirror) -> None:
    """Download what changed (conditional requests), check it, and rebuild the index.

    Exit status 1 when an OSV export could not be downloaded or was refused (the previous copy
    is kept); a missing KEV or EPSS feed is only a warning.
    """
    from ..advisories.sync import sync
    from ..config import data_home

    try:
        report = sync(ecosystems or None, home=data_home(), mirror=mirror, show_progress=sys.stderr.isatty())
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    for fetch in report.fetches:
        size = f" ({fetch.bytes / 1e6:.1f} MB)" if fetch.bytes else ""
        click.echo(f"{fetch.name:<10} {fetch.outcome}{size}" + (f": {fetch.detail}" if fetch.detail else ""))
    if report.index:
        total = sum(report.index.records.values())
        click.echo(f"index      {total} advisories, digest {report.index.digest}, at {report.index.path}")
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    sys.exit(1 if report.failed else 0)


@advisories.command("status")
def advisories_status() -> None:
    """Which advisory data SCA uses, per ecosystem, how old it is, and what is missing."""
    for line in advisory_lines():
        click.echo(line)


def advisory_lines() -> list[str]:
    """What `ox-bb advisories status`, `verify`, `run` and the demo say about the advisory data."""
    import os
    from datetime import UTC, datetime

    from ..advisories import status
    from ..config import data_home

    try:
        state = status(datetime.now(UTC), data_home(), osv_path=os.environ.get("OX_BB_OSV_PATH", "").strip())
    except ValueError as exc:  # a bad OX_BB_ADVISORIES_MAX_AGE_DAYS
        raise click.ClickException(str(exc)) from exc
    if state.source == "OX_BB_OSV_PATH":
        return ["advisories: OSV records from OX_BB_OSV_PATH"]
    lines = []
    if state.source == "index":
        per = ", ".join(f"{e} {n}" for e, n in sorted(state.ecosystems.items()))
        lines.append(f"advisories: index {state.digest}, {state.age_days:.1f} days old; {per}")
    return lines + [f"warning: {w}" for w in state.warnings]


# -- scan-pr --------------------------------------------------------------------------------------
@main.command("scan-pr")
@connections_option
@click.argument("repository", metavar="WORKSPACE/REPO")
@click.argument("pull_request_id", metavar="ID", type=int)
@click.option("--connection", "name", help="The connection to use (default: the only one in the file).")
@click.option("--dry-run", is_flag=True, help="Scan and print what would be written; write nothing to Bitbucket.")
@click.option("--scanner", "only", multiple=True, help="Run only this code scanner (repeatable; default: all).")
def scan_pr_command(connections_file, repository, pull_request_id, name, dry_run, only) -> None:
    """SCAN ONE PULL REQUEST: the findings it introduces, written back to Bitbucket as a Code Insights report
    (with annotations) on its source commit and one pull-request comment, edited on later pushes.

    Exit status: 0 the report passed; 2 it failed (an introduced finding at or above the connection's
    pull_request_scans.severity_threshold); 1 the pull request could not be scanned.
    """
    from ..bitbucket.client import BitbucketClient
    from ..bitbucket.errors import BitbucketError
    from ..bitbucket.git import GitAccess
    from ..config import data_home
    from ..scanners.pull_requests import scan_by_id

    workspace, slash, slug = repository.partition("/")
    if not slash or not workspace or not slug or "/" in slug:
        raise click.BadParameter(f"{repository!r} is not WORKSPACE/REPO (e.g. acme/payments-api)")
    _, config = _load(connections_file)
    if name is None and len(config.names) != 1:
        raise click.UsageError(
            f"the connections file has {len(config.names)} connections: choose one with --connection"
        )
    try:
        connection = config.get(name or config.names[0])
    except KeyError:
        raise click.ClickException(f"no connection named {name!r}; the file has: {', '.join(config.names)}") from None
    from ..scanners import registry

    known = [s.name for s in registry.code_scanners()]
    unknown = sorted(set(only) - set(known))
    if unknown:
        raise click.BadParameter(f"no code scanner {', '.join(unknown)}; choose from {', '.join(known)}")
    scanners = [registry.get(n).create() for n in known if n in only] if only else None
    client = BitbucketClient(connection)
    git = GitAccess(connection.name, connection.git_url, client.auth.git_credentials)
    try:
        scan = scan_by_id(
            connection,
            client,
            git,
            workspace,
            slug,
            pull_request_id,
            home=data_home(),
            dry_run=dry_run,
            scanners=scanners,
            progress=click.echo,
        )
    except (BitbucketError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(scan.summary())
    if scan.skipped:
        return
    click.echo("would write (dry run):" if scan.dry_run else "written:")
    for line in scan.written:
        click.echo(f"  {line}")
    if scan.dry_run:
        from ..scanners.pull_requests import annotations, comment_text

        for note in annotations(scan):
            click.echo(f"  annotation {note['severity']:<8} {note['path']}:{note['line']} {note['summary']}")
        click.echo("the comment would read:\n" + comment_text(scan))
    sys.exit(2 if scan.result == "FAILED" else 0)


# -- workflows ------------------------------------------------------------------------------------
@main.command("workflows")
@connections_option
@click.option(
    "--apply",
    "do_apply",
    is_flag=True,
    help="Run the actions (only when workflows.yaml says enabled: true); default: preview only.",
)
def workflows_command(connections_file, do_apply) -> None:
    """Preview how many findings each workflows.yaml rule would touch; with --apply, act (idempotently)."""
    import contextlib
    from datetime import UTC, datetime

    import duckdb

    from ..bitbucket.client import BitbucketClient
    from ..config import ConfigError, data_home
    from ..warehouse.exports import open_warehouse
    from ..warehouse.runner import warehouse_lock
    from ..warehouse.workflows import apply, load_workflows, preview

    home = data_home()
    try:
        settings = load_workflows(home=home)
    except (ConfigError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    # An applied workflow writes the warehouse: it holds the builds' lock so neither loses the other's write.
    with warehouse_lock(home, "workflows", click.echo) if do_apply else contextlib.nullcontext():
        con = duckdb.connect(str(_warehouse_file())) if do_apply else open_warehouse(home)
        rows = preview(con, settings)
        if not rows:
            click.echo("no workflow rules (write workflows.yaml; see workflows.example.yaml)")
        for row in rows:
            click.echo(f"{row['rule']:<40} {row['matches']:>6} finding(s)")
        if do_apply:
            if not settings.enabled:
                click.echo("workflows.yaml has enabled: false — dry run, nothing sent")
            else:
                _, config = _load(connections_file)
                clients = {c.name: BitbucketClient(c) for c in config.connections}
                for outcome in apply(con, settings, clients, datetime.now(UTC), home=home):
                    click.echo(str(outcome))
        con.close()


def _warehouse_file() -> Path:
    from ..config import data_home
    from ..warehouse.runner import warehouse_path

    return warehouse_path(data_home())


# -- analysts -------------------------------------------------------------------------------------
def _register_warehouse_commands() -> None:
    from .warehouse_cli import export_command, query_command, report_command, triage_command

    main.add_command(export_command, "export")
    main.add_command(query_command, "query")
    main.add_command(report_command, "report")
    main.add_command(triage_command, "triage")


_register_warehouse_commands()
