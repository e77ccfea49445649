"""Failed (and degraded) pipeline runs as rows analysts can query beside the data (`pipeline_failures` in the
warehouse), so a connection missing from tonight's findings is explained where they look.

One Parquet file per failed run, `lake/ops/run_failures/connection=<name>/run-<run id>.parquet`
(`connection=_pipeline` for runs of no connection, e.g. the warehouse): each is written atomically
and named by its run, so appending never rewrites another record and recording the same failure
twice changes nothing. Error texts are redacted like snippets (long random tokens masked) and cut
short: Bitbucket errors name no secret, but a stack's message from a library might.
"""

from __future__ import annotations

import io
import re
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .files import atomic_write_bytes
from .lake import lake_root
from .redaction import redact_snippet

NO_CONNECTION = "_pipeline"
MAX_ERROR_CHARS = 2000
RUN_FAILURE_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("job_name", pa.string()),
        ("connection", pa.string()),
        ("trigger", pa.string()),
        ("night", pa.string()),
        ("failed_steps", pa.list_(pa.string())),
        ("error", pa.string()),
        ("failed_at", pa.timestamp("us", tz="UTC")),
        ("status", pa.string()),  # failed | degraded (the run finished, but some repositories or scanners failed)
    ]
)


def failure_path(connection: str | None, run_id: str, home: Path) -> Path:
    return (
        lake_root(home) / "ops" / "run_failures" / f"connection={connection or NO_CONNECTION}" / f"run-{run_id}.parquet"
    )


def record_run_failure(
    *,
    run_id: str,
    job_name: str,
    connection: str | None,
    trigger: str,
    night: str | None,
    failed_steps: list[str],
    error: str,
    failed_at: datetime,
    home: Path,
    status: str = "failed",
) -> Path:
    """Write the failure's record (replacing an earlier record of the same run)."""
    text = redact_snippet(error.strip())
    if len(text) > MAX_ERROR_CHARS:
        text = text[:MAX_ERROR_CHARS] + " …"
    row = {
        "run_id": run_id,
        "job_name": job_name,
        "connection": connection or NO_CONNECTION,
        "trigger": trigger,
        "night": night,
        "failed_steps": sorted(failed_steps),
        "error": text,
        "failed_at": failed_at,
        "status": status,
    }
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([row], schema=RUN_FAILURE_SCHEMA), buffer, compression="zstd")
    return atomic_write_bytes(failure_path(connection, run_id, home), buffer.getvalue())


def root_cause_message(error) -> str:
    """The innermost message of a Dagster error chain: the step wrapper says nothing, its cause
    says what to fix."""
    while error.cause is not None:
        error = error.cause
    # "ox_bb_pipeline.bitbucket.errors.UnreachableError: …" reads better without the module path
    return re.sub(r"^(?:\w+\.)+(\w+: )", r"\1", error.message.strip())
