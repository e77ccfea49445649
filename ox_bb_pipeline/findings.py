"""One finding model for every scanner, and its stable fingerprint.

The fingerprint is a hash of the rule, the repository, the normalised path and a content anchor
(a secret's salted hash, a normalised snippet, package@version+advisory, or the setting checked).
Never the line number, the commit or a run id: those are metadata, so a finding keeps its
identity when lines move or unrelated commits land.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import PurePosixPath

import pyarrow as pa

CATEGORIES = ("secrets", "sast", "iac", "sca", "scm_posture", "cicd_posture", "external")
SEVERITIES = ("info", "low", "medium", "high", "critical")


@dataclass
class RepoRef:
    """Where a scan ran: the repository and the commit scanned."""

    connection: str
    workspace: str
    repository_uuid: str
    repository: str
    commit: str | None = None


@dataclass
class Finding:
    scanner: str
    scanner_version: str
    rule_id: str
    title: str
    category: str
    base_severity: str
    connection: str
    workspace: str
    repository_uuid: str
    repository: str
    anchor: str  # the content anchor of the fingerprint (never stored: it may derive from a secret)
    commit: str | None = None
    file_path: str | None = None
    start_line: int | None = None
    end_line: int | None = None
    evidence: str = ""  # redacted: never a raw secret
    remediation: str = ""
    cwe: str | None = None
    package: str | None = None
    version: str | None = None
    fixed_version: str | None = None
    vulnerability_ids: list[str] = field(default_factory=list)
    controls: list[str] = field(default_factory=list)
    scanned_at: datetime | None = None
    file_markers: list[str] = field(default_factory=list)  # code_context.yaml content rules its file matched
    finding_id: str = ""
    # Vulnerability evidence (SCA; other scanners leave them empty): the advisory's CVSS base score and
    # vector, whether CISA lists it as exploited (None: no KEV data), and its EPSS probability.
    cvss_score: float | None = None
    cvss_vector: str | None = None
    known_exploited: bool | None = None
    epss: float | None = None
    # Live check of a Bitbucket credential (opt-in per connection): active | revoked | unknown, and when.
    validity: str | None = None
    validity_checked_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"finding category {self.category!r} is not one of {CATEGORIES}")
        if self.base_severity not in SEVERITIES:
            raise ValueError(f"finding severity {self.base_severity!r} is not one of {SEVERITIES}")
        self.file_path = normalise_path(self.file_path) if self.file_path else self.file_path
        self.finding_id = self.finding_id or fingerprint(
            self.rule_id, self.repository_uuid, self.file_path, self.anchor
        )

    @classmethod
    def at(cls, repo: RepoRef, **fields) -> Finding:
        return cls(
            connection=repo.connection,
            workspace=repo.workspace,
            repository_uuid=repo.repository_uuid,
            repository=repo.repository,
            commit=fields.pop("commit", repo.commit),
            **fields,
        )

    def row(self) -> dict:
        row = asdict(self)
        row.pop("anchor")
        return row


def normalise_path(path: str) -> str:
    """Repository-relative POSIX path: no leading ./ or /, no backslashes, no `a/../`."""
    text = path.replace("\\", "/").lstrip("/")
    parts: list[str] = []
    for part in PurePosixPath(text).parts:
        if part == "..":
            if parts:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def normalise_snippet(text: str) -> str:
    """Whitespace-insensitive snippet anchor: indentation and spacing changes keep the identity."""
    return re.sub(r"\s+", " ", text).strip()


def fingerprint(rule_id: str, repository_uuid: str, file_path: str | None, anchor: str) -> str:
    material = "\x1f".join([rule_id, repository_uuid, normalise_path(file_path) if file_path else "", anchor])
    return hashlib.sha256(material.encode()).hexdigest()[:32]


FINDING_SCHEMA = pa.schema(
    [
        ("finding_id", pa.string()),
        ("scanner", pa.string()),
        ("scanner_version", pa.string()),
        ("rule_id", pa.string()),
        ("title", pa.string()),
        ("category", pa.string()),
        ("base_severity", pa.string()),
        ("connection", pa.string()),
        ("workspace", pa.string()),
        ("repository_uuid", pa.string()),
        ("repository", pa.string()),
        ("commit", pa.string()),
        ("file_path", pa.string()),
        ("start_line", pa.int64()),
        ("end_line", pa.int64()),
        ("evidence", pa.string()),
        ("remediation", pa.string()),
        ("cwe", pa.string()),
        ("package", pa.string()),
        ("version", pa.string()),
        ("fixed_version", pa.string()),
        ("vulnerability_ids", pa.list_(pa.string())),
        ("controls", pa.list_(pa.string())),
        ("scanned_at", pa.timestamp("us", tz="UTC")),
        ("cvss_score", pa.float64()),
        ("cvss_vector", pa.string()),
        ("known_exploited", pa.bool_()),
        ("epss", pa.float64()),
        ("file_markers", pa.list_(pa.string())),
        ("validity", pa.string()),
        ("validity_checked_at", pa.timestamp("us", tz="UTC")),
    ]
)
