"""`ox-bb query` and `ox-bb report` for analysts: SQL over the built warehouse (read-only), and the
compliance report with the Parquet exports."""

from __future__ import annotations

import io
import json
from numbers import Number
from pathlib import Path

import click
import duckdb

from ..config import data_home, data_home_hint
from ..lake import lake_root
from ..warehouse.exports import export_tables, open_for_queries
from ..warehouse.report import csv_text, write_reports

FORMATS = ("table", "csv", "json")
# Statements that only read; COPY, EXPORT, ATTACH, SET, INSTALL, CALL, PRAGMA and every write are refused
# (a read-only database still lets COPY ... TO write files, into the lake included).
READ_STATEMENTS = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})


class QueryRefused(ValueError):
    """A query that would write, or read outside the warehouse and the lake."""


def query(sql: str, fmt: str = "table", *, home: Path | None = None, max_rows: int = 100) -> str:
    """The result of `sql` as a text table (at most `max_rows` rows shown), CSV or JSON."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    home = home or data_home()
    con = open_for_queries(home)
    try:
        refused = [s.type.name for s in con.extract_statements(sql) if s.type not in READ_STATEMENTS]
        if refused:
            raise QueryRefused(
                f"ox-bb query is read-only: only SELECT (and EXPLAIN) statements run, not "
                f"{', '.join(sorted(set(refused)))}; write results with --format csv > FILE"
            )
        try:
            result = con.execute(sql)
        except duckdb.PermissionException as exc:
            raise QueryRefused(
                f"ox-bb query reads only the warehouse and the lake ({lake_root(home)}): {str(exc).splitlines()[0]}"
            ) from None
        if result.description is None:
            return ""
        columns = [d[0] for d in result.description]
        rows = result.fetchall()
    finally:
        con.close()
    if fmt == "json":
        return json.dumps([dict(zip(columns, row)) for row in rows], indent=2, default=str)
    if fmt == "csv":
        # Written as compliance.csv is: a text cell (or a column alias) starting like a formula gets a leading
        # single quote, so a result opened in a spreadsheet never runs what Bitbucket held; numbers stay numbers.
        return csv_text(columns, ([v if isinstance(v, Number) else _cell(v) for v in row] for row in rows))
    return _table(columns, rows, max_rows)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return str(value)


def _table(columns: list[str], rows: list[tuple], max_rows: int) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns, show_lines=False)
    for row in rows[:max_rows]:
        table.add_row(*(_cell(v) for v in row))
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(table)
    text = console.export_text()
    more = len(rows) - max_rows
    note = f"{len(rows)} row{'s' if len(rows) != 1 else ''}" + (
        f", {more} not shown (use --format csv or --max-rows)" if more > 0 else ""
    )
    return text + note


@click.command("query")
@click.argument("sql")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option(
    "--max-rows",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="Rows shown in table format (csv and json print all).",
)
def query_command(sql: str, fmt: str, max_rows: int) -> None:
    """Run SQL against OX_BB_HOME/warehouse.duckdb (read-only), e.g.

    ox-bb query "SELECT status, count(*) FROM findings_queue GROUP BY ALL"
    """
    try:
        text = query(sql, fmt, max_rows=max_rows)
        click.echo(text, nl=not text.endswith("\n"))
    except FileNotFoundError as exc:
        raise click.ClickException(f"{exc} ({data_home_hint()})") from exc
    except QueryRefused as exc:
        raise click.ClickException(str(exc)) from exc
    except duckdb.Error as exc:
        raise click.ClickException(f"query failed: {exc}") from exc


def report() -> dict[str, Path]:
    """reports/compliance.html and .csv, reports/explorer.html, and exports/<table>.parquet, from the
    current warehouse."""
    from ..warehouse.explorer import write_explorer

    home = data_home()
    return {
        **write_reports(home),
        "explorer": write_explorer(home),
        **{f"export {name}": path for name, path in export_tables(home).items()},
    }


@click.command("report")
def report_command() -> None:
    """Write the compliance report (HTML, CSV) and the Parquet exports from the built warehouse."""
    try:
        written = report()
    except FileNotFoundError as exc:
        raise click.ClickException(f"{exc} ({data_home_hint()})") from exc
    click.echo(f"compliance report: {written['html']}")
    click.echo(f"compliance CSV:    {written['csv']}")
    click.echo(f"explorer:          {written['explorer']}")
    exports = [p for k, p in written.items() if k.startswith("export ")]
    if exports:
        click.echo(f"exports:           {len(exports)} tables in {exports[0].parent}")


@click.command("export")
@click.argument("fmt", metavar="sarif|cyclonedx", type=click.Choice(("sarif", "cyclonedx")))
@click.option("--application", default=None, help="Only this application's findings (SARIF: one log for it).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to write into (default: OX_BB_HOME/exports/<format>/).",
)
def export_command(fmt: str, application: str | None, out: Path | None) -> None:
    """SARIF 2.1.0 logs (GitHub code scanning, DefectDojo) or CycloneDX SBOMs with vulnerabilities, from the
    built warehouse: one file per repository, e.g. ox-bb export sarif --application payments"""
    from ..warehouse.interchange import ExportError, export

    try:
        written = export(fmt, home=data_home(), application=application, out=out)
    except FileNotFoundError as exc:
        raise click.ClickException(f"{exc} ({data_home_hint()})") from exc
    except ExportError as exc:
        raise click.ClickException(str(exc)) from exc
    for path in written:
        click.echo(str(path))
    click.echo(f"{len(written)} {fmt} file{'s' if len(written) != 1 else ''} written")


@click.command("triage")
@click.argument("fingerprint")
@click.option(
    "--status",
    type=click.Choice(("false_positive", "accepted_risk", "open")),
    required=True,
    help="false_positive or accepted_risk take the finding out of the open queue; open withdraws that.",
)
@click.option("--reason", required=True, help="Why (kept with the decision and shown in the report).")
@click.option("--owner", required=True, help="Who answers for the decision.")
@click.option(
    "--expires",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Last day the decision holds (YYYY-MM-DD); the finding reopens after it.",
)
@click.option("--by", "decided_by", default=None, help="Who records it (default: $OX_BB_USER, else the login).")
def triage_command(fingerprint: str, status: str, reason: str, owner: str, expires, decided_by: str | None) -> None:
    """Record a triage decision on one finding (its finding_id), applied from the next warehouse build on, e.g.

    ox-bb triage 8cdd28e5b56dc203e7fb58cc2923f46e --status false_positive --reason "test fixture" --owner alice
    """
    from ..warehouse.exports import open_warehouse
    from ..warehouse.triage import TriageError, record_triage, triage_path

    known, home = None, data_home()
    try:
        con = open_warehouse(home)
    except FileNotFoundError:
        pass  # no warehouse yet: the fingerprint cannot be checked, the decision applies once it is built
    else:
        try:
            known = {row[0] for row in con.execute("SELECT finding_id FROM findings_queue").fetchall()}
        finally:
            con.close()
    try:
        record = record_triage(
            fingerprint,
            status,
            reason=reason,
            owner=owner,
            expires=expires.date() if expires else None,
            decided_by=decided_by,
            known=known,
            home=home,
        )
    except TriageError as exc:
        raise click.ClickException(str(exc)) from exc
    until = f" until {record['expires']}" if record["expires"] else ""
    click.echo(
        f"{record['finding_id']}: {status}{until}, recorded in {triage_path(home)} "
        "(applied by the next warehouse build: ox-bb run --stage warehouse)"
    )
