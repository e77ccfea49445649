"""Workflow decisions, the durable half of `assign` and `set_severity`: one row per applied action
and finding in `OX_BB_HOME/workflows/decisions.parquet`, replaced whole (temp file, then rename).

The warehouse is rebuilt from the lake every time, so a decision kept only in its tables would be
lost with the file or fought over by the next build. Instead `workflows.apply` records what it
decided here and every build reads the file as the input table `workflow_decisions`:
`enriched_findings` takes the final severity from it, `findings_queue` the assignment. A missing
or empty file means no decision.
"""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..config import ConfigError
from ..files import atomic_write_bytes

DECISION_SCHEMA = pa.schema(
    [
        ("rule", pa.string()),  # the workflows.yaml rule that decided
        ("action", pa.string()),  # assign | set_severity
        ("finding_id", pa.string()),
        ("field", pa.string()),  # team | owner | final_severity
        ("old", pa.string()),  # what the built queue showed when it was decided
        ("new", pa.string()),
        ("reason", pa.string()),
        ("decided_at", pa.timestamp("us", tz="UTC")),
    ]
)
KEY = ("rule", "action", "finding_id")  # as the action log's: one per rule, action, finding


def decisions_path(home: Path) -> Path:
    return home / "workflows" / "decisions.parquet"


def read_decisions(home: Path) -> pa.Table:
    """Every decision so far, in DECISION_SCHEMA (empty when the file is missing or empty)."""
    path = decisions_path(home)
    if not path.exists() or path.stat().st_size == 0:
        return DECISION_SCHEMA.empty_table()
    try:
        return pq.read_table(path).select(DECISION_SCHEMA.names).cast(DECISION_SCHEMA)
    except (pa.ArrowException, KeyError) as exc:
        problem = (
            f"not a readable decisions file ({exc}); restore it from a backup, or delete it "
            "to drop every assignment and severity change made by workflows (the "
            "warehouse's workflow_audit lists them)"
        )
        raise ConfigError(str(path), [problem]) from exc


def _keys(table: pa.Table) -> list[tuple[str, str, str]]:
    return [tuple(row[k] for k in KEY) for row in table.select(list(KEY)).to_pylist()]


def decided_keys(home: Path) -> set[tuple[str, str, str]]:
    """(rule, action, finding_id) of every decision: done, even if the action log was lost."""
    return set(_keys(read_decisions(home)))


def record_decisions(rows: list[dict], home: Path) -> Path | None:
    """Add `rows` (DECISION_SCHEMA dicts); a row with the key of an existing one replaces it."""
    if not rows:
        return None
    new = pa.Table.from_pylist(rows, schema=DECISION_SCHEMA)
    old = read_decisions(home)
    replaced = set(_keys(new))
    kept = old.filter(pa.array([key not in replaced for key in _keys(old)], type=pa.bool_()))
    buffer = io.BytesIO()
    pq.write_table(pa.concat_tables([kept, new]), buffer, compression="zstd")
    return atomic_write_bytes(decisions_path(home), buffer.getvalue())
