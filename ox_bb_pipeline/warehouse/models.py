"""The warehouse models: `sql/` is a dbt project (see `project.py`), `models/<layer>/<table>.sql` with its docs,
columns and state in the layer's `schema.yml`. `discover()` reads them without running dbt (cheap, for the
Dagster definitions, the exports and the data dictionary).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..files import load_yaml
from .project import PackageDataError, sql_project_dir

SQL_DIR = sql_project_dir()


@dataclass
class Model:
    name: str
    sql: str
    path: Path
    description: str = ""
    depends: list[str] = field(default_factory=list)
    materialized: str = "table"  # table | append | incremental (rows of changed partitions replaced) | view
    state: list[tuple[str, str]] = field(default_factory=list)  # (column, type) carried across builds
    columns: dict[str, str] = field(default_factory=dict)  # column -> description

    @property
    def previous(self) -> str | None:
        return f"previous_{self.name}" if self.state else None


def discover(sql_dir: Path = SQL_DIR) -> list[Model]:
    """The dbt project's models; a missing folder, or one without a dbt project, is an error (never an empty
    warehouse)."""
    if not Path(sql_dir).is_dir():
        raise PackageDataError(f"no SQL models: {sql_dir} is not a folder (see warehouse/project.py)")
    models = dbt_models(sql_dir)
    if not models:
        raise PackageDataError(f"no SQL models: {sql_dir} holds no dbt project and no *.sql file")
    return models


REF = re.compile(r"""\bref\(\s*['"](\w+)['"]\s*\)""")
SOURCE = re.compile(r"""\bsource\(\s*['"]\w+['"]\s*,\s*['"](\w+)['"]\s*\)""")
INVOKER = re.compile(r"""\binvoker_input\(\s*['"](\w+)['"]\s*\)""")
MATERIALIZED = re.compile(r"""materialized\s*=\s*['"](\w+)['"]""")


def dbt_models(sql_dir: Path = SQL_DIR) -> list[Model]:
    """The models of the dbt project (name order), read from the files: refs, sources and invoker inputs as
    `depends`, the description, columns and `meta.state` from schema.yml. No dbt run, so it is cheap."""
    folder = Path(sql_dir) / "models"
    if not (Path(sql_dir) / "dbt_project.yml").is_file():
        return []  # not a dbt project (discover() says so)
    docs: dict[str, dict] = {}
    for path in sorted(folder.rglob("*.yml")):
        for entry in (load_yaml(path.read_text()) or {}).get("models") or []:
            docs[entry["name"]] = entry
    scanners = (load_yaml((Path(sql_dir) / "dbt_project.yml").read_text()).get("vars") or {}).get("scanners", [])
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
            # an incremental model that deletes before it appends (a pre-hook, whose DELETE may be a macro's) or
            # replaces rows by a unique_key replaces what changed; one that does neither only appends
            materialized=("incremental" if "pre_hook" in sql or "unique_key" in sql else "append")
            if kind == "incremental"
            else kind,
            state=[tuple(s.split(" ", 1)) for s in (doc.get("meta") or {}).get("state", [])],
            columns={c["name"]: c.get("description", "") for c in doc.get("columns") or []},
        )
        models.append(model)
    return models


def data_dictionary(models: list[Model], types: dict[str, dict[str, str]] | None = None) -> str:
    """Markdown: every model, its description, inputs, and each column with its type and meaning."""
    types = types or {}
    lines = [
        "# Data dictionary",
        "",
        "Generated from the dbt project's `sql/models/*/schema.yml` by",
        "`ox_bb_pipeline.warehouse.exports.write_data_dictionary`;",
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
        elif model.materialized == "incremental":
            lines.append(
                "Incremental (a dbt incremental model): a build deletes and computes again only the rows whose "
                "inputs changed since the last build (see above); the others are kept."
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
