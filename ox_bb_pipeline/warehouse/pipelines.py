"""bitbucket-pipelines.yml into one row per pipeline definition: the `pipeline_definitions` input
of sql/cicd_pipelines.sql (DuckDB cannot read YAML). Parsing is the posture scanner's safe parser
(size cap, alias expansion budget); a file it refuses becomes one row with `parse_error`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import pyarrow as pa

from ..scanners.posture.pipelines_yml import PipelinesFile, PipelinesYmlError, parse

SCHEMA = pa.schema(
    [
        ("connection", pa.string()),
        ("workspace", pa.string()),
        ("repository_uuid", pa.string()),
        ("repository", pa.string()),
        ("main_commit", pa.string()),
        ("pipeline_key", pa.string()),
        ("selector_type", pa.string()),
        ("selector_pattern", pa.string()),
        ("imported", pa.string()),
        ("step_count", pa.int64()),
        ("steps", pa.list_(pa.string())),
        ("images", pa.list_(pa.string())),
        ("pipes", pa.list_(pa.string())),
        ("deployments", pa.list_(pa.string())),
        ("manual_steps", pa.int64()),
        ("runners", pa.list_(pa.string())),
        ("services", pa.list_(pa.string())),
        ("parse_error", pa.string()),
        ("yml_sha256", pa.string()),
    ]
)
REPOSITORY_COLUMNS = ("connection", "workspace", "repository_uuid", "repository", "main_commit")


def definition_rows(parsed: PipelinesFile) -> list[dict]:
    """One row per pipeline (default, each branch/pull-request/tag pattern, each custom pipeline)."""
    global_image = parsed.image.ref.text if parsed.image else None
    rows = []
    for pipeline in parsed.pipelines:
        steps = pipeline.steps
        rows.append(
            {
                "pipeline_key": pipeline.section
                if pipeline.pattern is None
                else f"{pipeline.section}:{pipeline.pattern}",
                "selector_type": pipeline.section,
                "selector_pattern": pipeline.pattern,
                "imported": pipeline.imported,
                "step_count": len(steps),
                "steps": [s.name or f"step {i}" for i, s in enumerate(steps, 1)],
                "images": _unique(s.image.ref.text if s.image else global_image for s in steps),
                "pipes": _unique(p.ref.text for s in steps for p in s.pipes),
                "deployments": _unique(str(s.deployment) for s in steps if s.deployment),
                "manual_steps": sum(1 for s in steps if s.trigger == "manual"),
                "runners": _unique("+".join(s.runs_on) for s in steps if s.runs_on),
                "services": _unique(v for s in steps for v in s.services),
                "parse_error": None,
            }
        )
    return rows


def pipeline_definitions(configs: Iterable[dict], known: Iterable[dict] = ()) -> pa.Table:
    """Rows for every `raw_pipeline_configs` row with a file. A file is parsed once however many
    repositories hold it, and not at all when `known` (the last build's rows) has its hash."""
    parsed: dict[str, list[dict]] = {}
    holder: dict[str, tuple] = {}  # the one repository whose rows stand for each known file
    for row in known:
        key, repository = row.get("yml_sha256"), (row.get("connection"), row.get("repository_uuid"))
        if key and holder.setdefault(key, repository) == repository:
            parsed.setdefault(key, []).append({k: v for k, v in row.items() if k not in REPOSITORY_COLUMNS})
    rows = []
    for config in configs:
        text = config.get("yml") or ""
        key = hashlib.sha256(text.encode()).hexdigest()
        if key not in parsed:
            parsed[key] = file_rows(text, key)
        base = {k: config.get(k) for k in REPOSITORY_COLUMNS}
        rows += [{**base, **row} for row in parsed[key]]
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def file_rows(text: str, key: str) -> list[dict]:
    """The rows of one file (`key`: its sha256), without the repository columns; one `parse_error` row when the
    parser refuses it."""
    try:
        return [{**row, "yml_sha256": key} for row in definition_rows(parse(text))]
    except PipelinesYmlError as exc:
        return [{"parse_error": str(exc), "yml_sha256": key}]


def _unique(values: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))
