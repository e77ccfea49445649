"""OSV advisories: load them from JSON records and/or per-ecosystem `all.zip` files, index them by
package, and decide whether a version is affected, with the fixed version to upgrade to.

Affected (OSV schema): within a range's events sorted in the ecosystem's native order, the last
event at or below the version is `introduced` ("0" = from the start), with `fixed` / `limit`
exclusive and `last_affected` inclusive; ranges are OR'd, and so is the explicit `versions[]`.
Withdrawn records are dropped at load time. GIT ranges (commit graphs) are not evaluated.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from univers.versions import Version

from .ecosystems import ECOSYSTEMS, name_key, osv_version, parse_version

MAX_RECORD_BYTES = 8 * 1024 * 1024
RANGE_TYPES = ("ECOSYSTEM", "SEMVER")
SEVERITY_LABELS = {"CRITICAL": "critical", "HIGH": "high", "MODERATE": "medium", "MEDIUM": "medium", "LOW": "low"}
DEFAULT_SEVERITY = "medium"


@dataclass(frozen=True)
class Range:
    kind: str  # ECOSYSTEM | SEMVER
    events: tuple[tuple[str, str], ...]  # (introduced | fixed | last_affected | limit, version)


@dataclass(frozen=True)
class AffectedPackage:
    ecosystem: str
    name: str
    ranges: tuple[Range, ...]
    versions: tuple[str, ...]


@dataclass(frozen=True)
class Advisory:
    id: str
    summary: str
    aliases: tuple[str, ...]
    severity: str  # our level: info | low | medium | high | critical
    score: float | None  # CVSS base score, when a v3 vector was given
    cwe: str | None
    modified: str
    affected: tuple[AffectedPackage, ...]


@dataclass(frozen=True)
class Match:
    advisory: Advisory
    affected_range: str  # the range(s) the version falls in, in words
    fixed_version: str | None  # smallest fixed version above the installed one that leaves every range


# -- severity ---------------------------------------------------------------------------------------

_CVSS3 = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "CIA": {"H": 0.56, "L": 0.22, "N": 0.0},
}
_CVSS3_PR = {"U": {"N": 0.85, "L": 0.62, "H": 0.27}, "C": {"N": 0.85, "L": 0.68, "H": 0.5}}


def _roundup(value: float) -> float:
    """CVSS 3.1 Roundup: the smallest one-decimal number >= value, immune to float noise."""
    scaled = round(value * 100000)
    return scaled / 100000.0 if scaled % 10000 == 0 else (math.floor(scaled / 10000) + 1) / 10.0


def cvss3_base_score(vector: str) -> float | None:
    """Base score of a CVSS v3.0/v3.1 vector (FIRST's specification formulas); None if malformed."""
    if not vector.startswith("CVSS:3"):
        return None
    metrics = dict(part.split(":", 1) for part in vector.split("/")[1:] if ":" in part)
    try:
        scope = metrics["S"]
        iss = 1 - math.prod(1 - _CVSS3["CIA"][metrics[m]] for m in ("C", "I", "A"))
        exploitability = (8.22 * _CVSS3["AV"][metrics["AV"]] * _CVSS3["AC"][metrics["AC"]]
                          * _CVSS3_PR[scope][metrics["PR"]] * _CVSS3["UI"][metrics["UI"]])
    except KeyError:
        return None
    impact = 6.42 * iss if scope == "U" else 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15
    if impact <= 0:
        return 0.0
    total = impact + exploitability if scope == "U" else 1.08 * (impact + exploitability)
    return _roundup(min(total, 10.0))


def severity_of_score(score: float) -> str:
    return ("critical" if score >= 9.0 else "high" if score >= 7.0 else "medium" if score >= 4.0
            else "low" if score > 0 else "info")


def _severity(record: dict) -> tuple[str, float | None]:
    """A CVSS v3 vector scores it; otherwise the database's label (GHSA's MODERATE…); else medium."""
    for entry in record.get("severity") or []:
        score = cvss3_base_score(str(entry.get("score", ""))) if entry.get("type") == "CVSS_V3" else None
        if score is not None:
            return severity_of_score(score), score
    label = str((record.get("database_specific") or {}).get("severity", "")).upper()
    return SEVERITY_LABELS.get(label, DEFAULT_SEVERITY), None


# -- records ----------------------------------------------------------------------------------------

def _affected(entry: dict) -> AffectedPackage | None:
    package = entry.get("package") or {}
    if package.get("ecosystem") not in ECOSYSTEMS or not package.get("name"):
        return None
    ranges = tuple(
        Range(r["type"], tuple((kind, str(value)) for event in r.get("events") or [] for kind, value in event.items()))
        for r in entry.get("ranges") or [] if r.get("type") in RANGE_TYPES)
    versions = tuple(str(v) for v in entry.get("versions") or [])
    if not ranges and not versions:
        return None
    return AffectedPackage(package["ecosystem"], package["name"], ranges, versions)


def advisory_from_osv(record: dict) -> Advisory | None:
    """The parts of an OSV record we match and report on; None when withdrawn or matching nothing."""
    if not isinstance(record, dict) or not record.get("id") or record.get("withdrawn"):
        return None
    affected = tuple(a for a in (_affected(e) for e in record.get("affected") or [] if isinstance(e, dict)) if a)
    if not affected:
        return None
    severity, score = _severity(record)
    cwes = (record.get("database_specific") or {}).get("cwe_ids") or []
    summary = record.get("summary") or (record.get("details") or "").strip().split("\n", 1)[0][:200]
    return Advisory(record["id"], summary or record["id"], tuple(record.get("aliases") or ()), severity, score,
                    cwes[0] if cwes else None, str(record.get("modified", "")), affected)


# -- affectedness -----------------------------------------------------------------------------------

def _in_range(ecosystem: str, version: Version, rng: Range) -> bool:
    events = []
    for kind, value in rng.events:
        from_start = kind == "introduced" and value == "0"
        bound = None if from_start else parse_version(ecosystem, value)
        if bound is None and not from_start:
            return False  # a bound we cannot order: the range cannot be judged, so it does not match
        events.append((bound, kind))
    events.sort(key=lambda e: (0,) if e[0] is None else (1, e[0]))
    affected = False
    for bound, kind in events:
        if kind == "introduced" and (bound is None or version >= bound):
            affected = True
        elif kind in ("fixed", "limit") and version >= bound:
            affected = False
        elif kind == "last_affected" and version > bound:
            affected = False
    return affected


def _listed(ecosystem: str, version: str, parsed: Version | None, listed: tuple[str, ...]) -> bool:
    """In `versions[]`: the same string, or the same version in the ecosystem's order (2.10 == 2.10.0)."""
    if osv_version(ecosystem, version) in listed or version in listed:
        return True
    return parsed is not None and any(parse_version(ecosystem, v) == parsed for v in listed)


def describe(rng: Range) -> str:
    """A range in words: `>=2.13.0, <2.15.0`; `<5.4` when introduced at the start."""
    parts = []
    for kind, value in rng.events:
        if kind == "introduced":
            parts.append(f">={value}" if value != "0" else "")
        else:
            parts.append({"fixed": "<", "limit": "<", "last_affected": "<="}.get(kind, "?") + value)
    text = ", ".join(p for p in parts if p)
    return text or "all versions"


def _upgrade_target(ecosystem: str, version: Version, entries: list[AffectedPackage]) -> str | None:
    """The smallest fixed version above the installed one that no range or listing still covers
    (one range's fix may lie inside another range, or be listed in `versions[]`)."""
    candidates = {value for e in entries for r in e.ranges for kind, value in r.events if kind == "fixed"}
    ordered = sorted((p, v) for v in candidates if (p := parse_version(ecosystem, v)) is not None and p > version)
    for parsed, text in ordered:
        if not any(_in_range(ecosystem, parsed, r) for e in entries for r in e.ranges) and \
                not any(_listed(ecosystem, text, parsed, e.versions) for e in entries):
            return text
    return None


class AdvisoryDatabase:
    """Advisories indexed by (ecosystem, normalised package name)."""

    def __init__(self, advisories: Iterable[Advisory], digest: str = "", withdrawn: int = 0,
                 unreadable: int = 0) -> None:
        latest: dict[str, Advisory] = {}
        for advisory in advisories:  # one id in two sources (a record beside a zip): the newest wins
            if advisory.id not in latest or advisory.modified > latest[advisory.id].modified:
                latest[advisory.id] = advisory
        self.advisories = latest
        self.digest, self.withdrawn, self.unreadable = digest, withdrawn, unreadable
        self._index: dict[tuple[str, str], list[Advisory]] = defaultdict(list)
        for advisory in latest.values():
            for key in dict.fromkeys((a.ecosystem, name_key(a.ecosystem, a.name)) for a in advisory.affected):
                self._index[key].append(advisory)

    def __len__(self) -> int:
        return len(self.advisories)

    def matches(self, ecosystem: str, name: str, version: str | None) -> list[Match]:
        """Every advisory affecting this exact package version, in id order."""
        if not version:
            return []
        key = name_key(ecosystem, name)
        parsed = parse_version(ecosystem, version)
        found = []
        for advisory in sorted(self._index.get((ecosystem, key), ()), key=lambda a: a.id):
            entries = [a for a in advisory.affected if a.ecosystem == ecosystem and name_key(ecosystem, a.name) == key]
            hits = [r for e in entries for r in e.ranges if parsed is not None and _in_range(ecosystem, parsed, r)]
            listed = any(_listed(ecosystem, version, parsed, e.versions) for e in entries)
            if not hits and not listed:
                continue
            where = " or ".join(dict.fromkeys(describe(r) for r in hits)) or "listed affected version"
            fixed = _upgrade_target(ecosystem, parsed, entries) if parsed is not None else None
            found.append(Match(advisory, where, fixed))
        return found


# -- loading ----------------------------------------------------------------------------------------

def osv_paths() -> list[Path]:
    """`OX_BB_OSV_PATH` (directories of records and/or all.zip files, or single files, separated by
    the OS path separator); empty when unset (then the synced index is used)."""
    value = os.environ.get("OX_BB_OSV_PATH", "").strip()
    return [Path(p) for p in value.split(os.pathsep) if p]


def _sources(paths: Iterable[Path]) -> list[Path]:
    files = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in (".json", ".zip") and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"OSV data not found at {path} (OX_BB_OSV_PATH)")
    return files


def advisory_digest(paths: Iterable[Path] | None = None) -> str:
    """A short content hash of the advisory set (zip members by their CRCs, so a large all.zip is not
    reread): a new or changed advisory invalidates cached SCA results."""
    digest = hashlib.sha256()
    for source in _sources(paths or osv_paths()):
        digest.update(source.name.encode())
        if source.suffix == ".zip":
            with zipfile.ZipFile(source) as archive:
                for info in archive.infolist():
                    digest.update(f"{info.filename}:{info.CRC}:{info.file_size}".encode())
        else:
            digest.update(source.read_bytes())
    return digest.hexdigest()[:12]


def _raw_records(source: Path) -> Iterator[bytes]:
    if source.suffix == ".zip":
        with zipfile.ZipFile(source) as archive:
            for info in archive.infolist():
                if info.filename.endswith(".json") and info.file_size <= MAX_RECORD_BYTES:
                    with archive.open(info) as member:
                        data = member.read(MAX_RECORD_BYTES + 1)  # the header's size may lie
                    if len(data) <= MAX_RECORD_BYTES:
                        yield data
    elif source.stat().st_size <= MAX_RECORD_BYTES:
        yield source.read_bytes()


def load_database(paths: Iterable[Path] | None = None) -> AdvisoryDatabase:
    """The advisory set at `paths` (default `osv_paths()`), loaded once per content digest."""
    paths = tuple(Path(p).resolve() for p in (paths or osv_paths()))
    return _load(paths, advisory_digest(paths))


@lru_cache(maxsize=4)
def _load(paths: tuple[Path, ...], digest: str) -> AdvisoryDatabase:
    advisories, withdrawn, unreadable = [], 0, 0
    for source in _sources(paths):
        for data in _raw_records(source):
            try:
                parsed = json.loads(data)
            except (ValueError, RecursionError):
                unreadable += 1
                continue
            for record in parsed if isinstance(parsed, list) else [parsed]:
                withdrawn += bool(isinstance(record, dict) and record.get("withdrawn"))
                advisory = advisory_from_osv(record)
                if advisory:
                    advisories.append(advisory)
    return AdvisoryDatabase(advisories, digest, withdrawn, unreadable)
