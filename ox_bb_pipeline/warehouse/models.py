"""The warehouse models. `sql/` is a dbt project (see `project.py`): `models/<layer>/<table>.sql` with its docs,
columns and state in the layer's `schema.yml`; `discover()` reads them without running dbt. A plain SQL file
directly in `sql/` (`<table>.sql`, the format before dbt) is still built, after the dbt models, by the runner.

Header of a plain SQL file (comment lines at the top of the file, in any order):

    -- <what the table holds; several lines join into one description>
    -- depends: enriched_findings, scan_runs          inputs: models or registered input tables
    -- materialized: append                           optional: keep old rows, add this build's
                                                      (or `view`: stored as its query, run on read)
    -- state: finding_id VARCHAR, status VARCHAR      optional: columns carried from the previous
                                                      build, readable as previous_<table>
    -- column: finding_id: stable fingerprint         one per output column (the data dictionary)

`{{ name }}` anywhere in a file is replaced when it is read (`render`), from the scanner registry:
`findings_union` (every scanner's findings, one relation), `scanner_inputs` (their input tables, for
`depends:`) and `scanner_names` (for a column's text). Adding a scanner then needs no SQL edit.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import duckdb
import yaml

from ..scanners import registry
from .project import PackageDataError, sql_project_dir

SQL_DIR = sql_project_dir()
HEADER = re.compile(r"^--\s?(.*)$")
PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


class ModelError(ValueError):
    pass


@dataclass
class Model:
    name: str
    sql: str
    path: Path
    description: str = ""
    depends: list[str] = field(default_factory=list)
    materialized: str = "table"  # table | append | view
    state: list[tuple[str, str]] = field(default_factory=list)  # (column, type) carried across builds
    columns: dict[str, str] = field(default_factory=dict)  # column -> description

    @property
    def previous(self) -> str | None:
        return f"previous_{self.name}" if self.state else None


def substitutions() -> dict[str, str]:
    """What each `{{ name }}` of a model becomes: derived from the scanner registry at call time."""
    return {
        "findings_union": registry.findings_union_sql(),
        "scanner_inputs": ", ".join(registry.warehouse_inputs()),
        "scanner_names": " | ".join(registry.names()),
    }


def render(text: str, path: Path) -> str:
    values = substitutions()

    def value(match: re.Match) -> str:
        if match.group(1) not in values:
            raise ModelError(
                f"{path.name}: unknown placeholder {match.group(0)}; known: "
                f"{', '.join('{{ ' + k + ' }}' for k in values)}"
            )
        return values[match.group(1)]

    return PLACEHOLDER.sub(value, text)


def parse_model(path: Path) -> Model:
    text = render(path.read_text(), path)
    model = Model(name=path.stem, sql=text, path=path)
    description: list[str] = []
    for line in text.splitlines():
        match = HEADER.match(line.strip())
        if not match:
            break
        body = match.group(1).strip()
        key, sep, value = body.partition(":")
        key = key.strip().lower()
        if sep and key == "depends":
            model.depends += [d.strip() for d in value.split(",") if d.strip()]
        elif sep and key == "materialized":
            model.materialized = value.strip()
        elif sep and key == "state":
            for column in filter(None, (c.strip() for c in value.split(","))):
                name, _, dtype = column.partition(" ")
                model.state.append((name, dtype.strip()))
        elif sep and key == "column":
            name, _, doc = value.strip().partition(":")
            model.columns[name.strip()] = doc.strip()
        elif body:
            description.append(body)
    model.description = " ".join(description)
    if model.materialized not in ("table", "append", "view"):
        raise ModelError(f"{path.name}: materialized must be table, append or view, not {model.materialized!r}")
    if model.state and model.previous not in model.depends:
        model.depends.append(model.previous)
    return model


def discover(sql_dir: Path = SQL_DIR) -> list[Model]:
    """The dbt models, then the plain SQL models of the folder (built after the dbt models); a missing folder,
    or one without models, is an error (never an empty warehouse)."""
    if not Path(sql_dir).is_dir():
        raise PackageDataError(f"no SQL models: {sql_dir} is not a folder (see warehouse/project.py)")
    models = dbt_models(sql_dir) + plain_models(sql_dir)
    if not models:
        raise PackageDataError(f"no SQL models: {sql_dir} holds no dbt project and no *.sql file")
    return models


def plain_models(sql_dir: Path = SQL_DIR) -> list[Model]:
    return [parse_model(path) for path in sorted(Path(sql_dir).glob("*.sql"))]


REF = re.compile(r"""\bref\(\s*['"](\w+)['"]\s*\)""")
SOURCE = re.compile(r"""\bsource\(\s*['"]\w+['"]\s*,\s*['"](\w+)['"]\s*\)""")
INVOKER = re.compile(r"""\binvoker_input\(\s*['"](\w+)['"]\s*\)""")
MATERIALIZED = re.compile(r"""materialized\s*=\s*['"](\w+)['"]""")


def dbt_models(sql_dir: Path = SQL_DIR) -> list[Model]:
    """The models of the dbt project (name order), read from the files: refs, sources and invoker inputs as
    `depends`, the description, columns and `meta.state` from schema.yml. No dbt run, so it is cheap."""
    folder = Path(sql_dir) / "models"
    if not (Path(sql_dir) / "dbt_project.yml").is_file():
        return []  # not a dbt project (discover() says so when there are no plain models either)
    docs: dict[str, dict] = {}
    for path in sorted(folder.rglob("*.yml")):
        for entry in (yaml.safe_load(path.read_text()) or {}).get("models") or []:
            docs[entry["name"]] = entry
    scanners = (yaml.safe_load((Path(sql_dir) / "dbt_project.yml").read_text()).get("vars") or {}).get("scanners", [])
    models = []
    for path in sorted(folder.rglob("*.sql"), key=lambda p: p.stem):
        sql = path.read_text()
        doc = docs.get(path.stem, {})
        depends = list(dict.fromkeys(REF.findall(sql) + SOURCE.findall(sql) + INVOKER.findall(sql)))
        if "var('scanners')" in sql:
            depends = [f"findings_{s}" for s in scanners] + depends
        kind = (MATERIALIZED.findall(sql) or ["table"])[0]
        model = Model(
            name=path.stem,
            sql=sql,
            path=path,
            description=doc.get("description", ""),
            depends=depends,
            materialized={"incremental": "append"}.get(kind, kind),
            state=[tuple(s.split(" ", 1)) for s in (doc.get("meta") or {}).get("state", [])],
            columns={c["name"]: c.get("description", "") for c in doc.get("columns") or []},
        )
        models.append(model)
    return models


def build_order(models: list[Model], inputs: set[str]) -> list[Model]:
    """Models in dependency order. Every declared input must be a model or an input, and the SQL
    must read exactly what it declares (so the header can be trusted as the lineage)."""
    con = duckdb.connect()  # parses only
    by_name = {m.name: m for m in models}
    problems = []
    for model in models:
        unknown = [d for d in model.depends if d not in by_name and d not in inputs and d != model.previous]
        if unknown:
            problems.append(f"{model.path.name}: depends on unknown {', '.join(unknown)}")
        referenced = _referenced_tables(con, model.sql)
        if referenced is not None:
            undeclared = sorted(referenced - set(model.depends))
            unused = sorted(set(model.depends) - referenced)
            if undeclared:
                problems.append(
                    f"{model.path.name}: reads {', '.join(undeclared)} without declaring it in '-- depends:'"
                )
            if unused:
                problems.append(f"{model.path.name}: declares {', '.join(unused)} but never reads it")
    if problems:
        raise ModelError("; ".join(problems))
    sorter = TopologicalSorter({m.name: [d for d in m.depends if d in by_name] for m in models})
    try:
        return [by_name[name] for name in sorter.static_order()]
    except CycleError as exc:
        raise ModelError(f"models depend on each other in a cycle: {' -> '.join(exc.args[1])}") from exc


def _referenced_tables(con: duckdb.DuckDBPyConnection, sql: str) -> set[str] | None:
    """Tables the statement reads (CTE names excluded), from DuckDB's parse tree: nothing is bound,
    so inputs need not exist yet."""
    tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    if tree.get("error"):
        return None
    tables: set[str] = set()
    ctes: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            if node.get("type") == "BASE_TABLE":
                tables.add(node["table_name"])
            ctes.update(entry["key"] for entry in (node.get("cte_map") or {}).get("map", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree)
    return tables - ctes


def data_dictionary(models: list[Model], types: dict[str, dict[str, str]] | None = None) -> str:
    """Markdown: every model, its description, inputs, and each column with its type and meaning."""
    types = types or {}
    lines = [
        "# Data dictionary",
        "",
        "Generated from the dbt project's `sql/models/*/schema.yml` (and the headers of any plain `sql/*.sql`)",
        "by `ox_bb_pipeline.warehouse.exports.write_data_dictionary`;",
        "do not edit by hand. Every table is in `OX_BB_HOME/warehouse.duckdb` (with these texts as column",
        "comments) and in `OX_BB_HOME/exports/<table>.parquet`.",
        "",
    ]
    for model in sorted(models, key=lambda m: m.name):
        lines += [f"## {model.name}", "", model.description, ""]
        lines.append(f"Inputs: {', '.join(f'`{d}`' for d in model.depends)}." if model.depends else "Inputs: none.")
        if model.materialized == "append":
            lines.append(
                "Append-only (a dbt incremental model, append strategy): each build adds rows, none is ever "
                "rewritten or deleted."
            )
        elif model.materialized == "view":
            lines.append("A view: its rows are computed from the inputs when read.")
        lines += ["", "| column | type | description |", "|---|---|---|"]
        table_types = types.get(model.name, {})
        for column in table_types or model.columns:
            cells = (table_types.get(column, ""), model.columns.get(column, ""))
            lines.append(f"| `{column}` | " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)
