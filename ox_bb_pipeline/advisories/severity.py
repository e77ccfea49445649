"""An OSV record's severity: its CVSS vectors (v2, v3.x, v4, scored by the `cvss` package), else
the database's own label (GHSA's LOW / MODERATE / HIGH / CRITICAL), else medium."""

from __future__ import annotations

from dataclasses import dataclass

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

LABELS = {"CRITICAL": "critical", "HIGH": "high", "MODERATE": "medium", "MEDIUM": "medium", "LOW": "low"}
DEFAULT = "medium"
# The newest CVSS version a record gives is the one we trust: v4 re-scores what v3 over- or under-rated.
SCORERS = {"CVSS_V4": CVSS4, "CVSS_V3": CVSS3, "CVSS_V2": CVSS2}


@dataclass(frozen=True)
class Severity:
    level: str  # info | low | medium | high | critical
    score: float | None = None  # CVSS base score, when a vector was given and valid
    vector: str | None = None


def level_of_score(score: float) -> str:
    """CVSS's qualitative rating (the same bands in v3 and v4; v2 has no critical band of its own)."""
    return (
        "critical"
        if score >= 9.0
        else "high"
        if score >= 7.0
        else "medium"
        if score >= 4.0
        else "low"
        if score > 0
        else "info"
    )


def cvss_score(kind: str, vector: str) -> float | None:
    """The base score of one OSV `severity` entry (`CVSS_V2|V3|V4` and its vector); None if malformed."""
    scorer = SCORERS.get(kind)
    if scorer is None or not vector:
        return None
    try:
        return float(scorer(vector).base_score)
    except (CVSSError, ValueError, KeyError, IndexError, TypeError):
        return None


def severity_of(record: dict) -> Severity:
    """The severity of an OSV record, best evidence first: the newest valid CVSS vector, the
    database's label, then medium."""
    entries = [e for e in record.get("severity") or [] if isinstance(e, dict)]
    for kind in SCORERS:  # in order of preference
        for entry in entries:
            if entry.get("type") != kind:
                continue
            vector = str(entry.get("score", ""))
            score = cvss_score(kind, vector)
            if score is not None:
                return Severity(level_of_score(score), score, vector)
    label = str((record.get("database_specific") or {}).get("severity", "")).upper()
    return Severity(LABELS.get(label, DEFAULT))
