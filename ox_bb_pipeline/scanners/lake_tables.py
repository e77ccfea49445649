"""The lake tables scanners write besides their findings: names and schemas. Apart from the scanners, so that the
warehouse build, which reads these tables, imports none of the scanners' dependencies (SCA's parsers and CycloneDX
alone cost a standalone build ~0.15 s)."""

from __future__ import annotations

import pyarrow as pa

PULL_REQUEST_FINDINGS_TABLE = "pull_requests"  # lake/findings/pull_requests
PULL_REQUEST_SCANS_TABLE = "pull_request_scans"  # lake/scans/pull_request_scans

_REPOSITORY_FIELDS = [
    ("connection", pa.string()),
    ("workspace", pa.string()),
    ("repository_uuid", pa.string()),
    ("repository", pa.string()),
    ("commit", pa.string()),
]
COMPONENT_SCHEMA = pa.schema(  # lake/inventory/components: SCA's inventory
    _REPOSITORY_FIELDS
    + [
        ("ecosystem", pa.string()),
        ("name", pa.string()),
        ("version", pa.string()),
        ("purl", pa.string()),
        ("manifest", pa.string()),
        ("line", pa.int64()),
        ("direct", pa.bool_()),
        ("dev_only", pa.bool_()),
        ("requirement", pa.string()),
    ]
)
MANIFEST_ERROR_SCHEMA = pa.schema(_REPOSITORY_FIELDS + [("manifest", pa.string()), ("error", pa.string())])

PULL_REQUEST_SCAN_SCHEMA = pa.schema(
    [
        ("connection", pa.string()),
        ("workspace", pa.string()),
        ("repository_uuid", pa.string()),
        ("repository", pa.string()),
        ("pull_request_id", pa.int64()),
        ("title", pa.string()),
        ("source_branch", pa.string()),
        ("destination_branch", pa.string()),
        ("source_commit", pa.string()),
        ("destination_commit", pa.string()),
        ("merge_base", pa.string()),
        ("changed_files", pa.int64()),
        ("scanned_files", pa.int64()),
        ("introduced", pa.int64()),
        ("resolved", pa.int64()),
        ("severity_threshold", pa.string()),
        ("result", pa.string()),
        ("scanner_errors", pa.list_(pa.string())),
        ("written_to_bitbucket", pa.bool_()),
        ("duration_seconds", pa.float64()),
        ("scanned_at", pa.timestamp("us", tz="UTC")),
    ]
)
