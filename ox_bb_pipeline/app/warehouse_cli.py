"""`ox-bb query` and `ox-bb report` for analysts: SQL over the built warehouse (read-only), and the
compliance report with the Parquet exports."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import click
import duckdb

from ..config import data_home_hint
from ..lake import lake_root
from ..warehouse.exports import export_tables, open_for_queries
from ..warehouse.report import write_reports

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
    con = open_for_queries(home)
    try:
        refused = [s.type.name for s in con.extract_statements(sql) if s.type not in READ_STATEMENTS]
        if refused:
            raise QueryRefused(f"ox-bb query is read-only: only SELECT (and EXPLAIN) statements run, not "
                               f"{', '.join(sorted(set(refused)))}; write results with --format csv > FILE")
        try:
            result = con.execute(sql)
        except duckdb.PermissionException as exc:
            raise QueryRefused(f"ox-bb query reads only the warehouse and the lake "
                               f"({lake_root(home)}): {str(exc).splitlines()[0]}") from None
        if result.description is None:
            return ""
        columns = [d[0] for d in result.description]
        rows = result.fetchall()
    finally:
        con.close()
    if fmt == "json":
        return json.dumps([dict(zip(columns, row)) for row in rows], indent=2, default=str)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_cell(v) for v in row] for row in rows)
        return out.getvalue()
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
        f", {more} not shown (use --format csv or --max-rows)" if more > 0 else "")
    return text + note


@click.command("query")
@click.argument("sql")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--max-rows", type=click.IntRange(1), default=100, show_default=True,
              help="Rows shown in table format (csv and json print all).")
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
    """reports/compliance.html and .csv, and exports/<table>.parquet, from the current warehouse."""
    return {**write_reports(), **{f"export {name}": path for name, path in export_tables().items()}}


@click.command("report")
def report_command() -> None:
    """Write the compliance report (HTML, CSV) and the Parquet exports from the built warehouse."""
    try:
        written = report()
    except FileNotFoundError as exc:
        raise click.ClickException(f"{exc} ({data_home_hint()})") from exc
    click.echo(f"compliance report: {written['html']}")
    click.echo(f"compliance CSV:    {written['csv']}")
    exports = [p for k, p in written.items() if k.startswith("export ")]
    if exports:
        click.echo(f"exports:           {len(exports)} tables in {exports[0].parent}")
