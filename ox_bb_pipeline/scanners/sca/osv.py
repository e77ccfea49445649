"""OSV advisories: load them from JSON records and/or per-ecosystem `all.zip` files, index them by
package, and decide whether a version is affected, with the fixed version to upgrade to.

Affected (OSV schema): within a range's events sorted in the ecosystem's native order, the last
event at or below the version is `introduced` ("0" = from the start), with `fixed` / `limit`
exclusive and `last_affected` inclusive; ranges are OR'd, and so is the explicit `versions[]`.
Withdrawn records are dropped at load time. GIT ranges (commit graphs) are not evaluated.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from univers.versions import Version

from ...advisories.index import INDEX_FILE, AdvisoryIndex, json_documents
from ...advisories.settings import advisories_home
from ...advisories.severity import severity_of
from .ecosystems import ECOSYSTEMS, name_key, osv_version, parse_version

RANGE_TYPES = ("ECOSYSTEM", "SEMVER")


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
    score: float | None  # CVSS base score, when a valid vector was given
    vector: str | None  # that CVSS vector
    cwe: str | None
    modified: str
    affected: tuple[AffectedPackage, ...]


@dataclass(frozen=True)
class Match:
    advisory: Advisory
    affected_range: str  # the range(s) the version falls in, in words
    fixed_version: str | None  # smallest fixed version above the installed one that leaves every range


# -- records ----------------------------------------------------------------------------------------


def _affected(entry: dict) -> AffectedPackage | None:
    package = entry.get("package") or {}
    if package.get("ecosystem") not in ECOSYSTEMS or not package.get("name"):
        return None
    ranges = tuple(
        Range(r["type"], tuple((kind, str(value)) for event in r.get("events") or [] for kind, value in event.items()))
        for r in entry.get("ranges") or []
        if r.get("type") in RANGE_TYPES
    )
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
    severity = severity_of(record)
    cwes = (record.get("database_specific") or {}).get("cwe_ids") or []
    summary = record.get("summary") or (record.get("details") or "").strip().split("\n", 1)[0][:200]
    return Advisory(
        record["id"],
        summary or record["id"],
        tuple(record.get("aliases") or ()),
        severity.level,
        severity.score,
        severity.vector,
        cwes[0] if cwes else None,
        str(record.get("modified", "")),
        affected,
    )


# -- affectedness -----------------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def _ordered_events(ecosystem: str, rng: Range) -> tuple[tuple[Version | None, str], ...] | None:
    """A range's events in the ecosystem's order (computed once per range: sorting versions is the
    costly part of matching); None when a bound cannot be ordered."""
    events = []
    for kind, value in rng.events:
        from_start = kind == "introduced" and value == "0"
        bound = None if from_start else parse_version(ecosystem, value)
        if bound is None and not from_start:
            return None
        events.append((bound, kind))
    events.sort(key=lambda e: (0,) if e[0] is None else (1, e[0]))
    return tuple(events)


def _in_range(ecosystem: str, version: Version, rng: Range) -> bool:
    events = _ordered_events(ecosystem, rng)
    if events is None:
        return False  # a bound we cannot order: the range cannot be judged, so it does not match
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
    if parsed is None:
        return False
    ordered = _ordered_listing(ecosystem, listed)
    at = bisect_left(ordered, parsed)
    return at < len(ordered) and ordered[at] == parsed


@lru_cache(maxsize=16384)
def _ordered_listing(ecosystem: str, listed: tuple[str, ...]) -> list[Version]:
    """The listed versions that parse, sorted, for a binary search (long `versions[]` lists are common)."""
    return sorted(p for v in listed if (p := parse_version(ecosystem, v)) is not None)


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
        if not any(_in_range(ecosystem, parsed, r) for e in entries for r in e.ranges) and not any(
            _listed(ecosystem, text, parsed, e.versions) for e in entries
        ):
            return text
    return None


class AdvisoryDatabase:
    """Advisories indexed by (ecosystem, normalised package name), held in memory (OX_BB_OSV_PATH)."""

    source = "OX_BB_OSV_PATH"

    def __init__(
        self,
        advisories: Iterable[Advisory],
        digest: str = "",
        withdrawn: int = 0,
        unreadable: int = 0,
        ecosystems: Iterable[str] | None = None,
    ) -> None:
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
        # The ecosystems this data evaluates: those its records cover, unless the caller knows better.
        self.ecosystems = set(ecosystems) if ecosystems is not None else {eco for eco, _ in self._index}

    def __len__(self) -> int:
        return len(self.advisories)

    def _candidates(self, ecosystem: str, key: str) -> list[Advisory]:
        return self._index.get((ecosystem, key), [])

    def exploitation(self, advisory: Advisory) -> tuple[bool | None, float | None]:
        """(in CISA's KEV, EPSS probability) of an advisory's CVEs; None where no feed was synced."""
        return None, None

    def matches(self, ecosystem: str, name: str, version: str | None) -> list[Match]:
        """Every advisory affecting this exact package version, in id order."""
        if not version:
            return []
        key = name_key(ecosystem, name)
        parsed = parse_version(ecosystem, version)
        found = []
        for advisory in sorted(self._candidates(ecosystem, key), key=lambda a: a.id):
            entries = [a for a in advisory.affected if a.ecosystem == ecosystem and name_key(ecosystem, a.name) == key]
            hits = [r for e in entries for r in e.ranges if parsed is not None and _in_range(ecosystem, parsed, r)]
            listed = any(_listed(ecosystem, version, parsed, e.versions) for e in entries)
            if not hits and not listed:
                continue
            where = " or ".join(dict.fromkeys(describe(r) for r in hits)) or "listed affected version"
            fixed = _upgrade_target(ecosystem, parsed, entries) if parsed is not None else None
            found.append(Match(advisory, where, fixed))
        return found


class IndexedAdvisories(AdvisoryDatabase):
    """Advisories looked up in the index `ox-bb advisories sync` builds: only the records of the
    packages met are read and parsed."""

    source = "index"

    MEMO_SIZE = 200_000  # (ecosystem, name, version) answers kept: one scan meets the same pins many times

    def __init__(self, index: AdvisoryIndex) -> None:
        super().__init__([], digest=index.digest, ecosystems=index.ecosystems)
        self.index = index
        self._parsed: dict[tuple[str, str], list[Advisory]] = {}
        self._answers: dict[tuple[str, str, str | None], list[Match]] = {}

    def matches(self, ecosystem: str, name: str, version: str | None) -> list[Match]:
        key = (ecosystem, name_key(ecosystem, name), version)
        if key not in self._answers:
            if len(self._answers) >= self.MEMO_SIZE:
                self._answers.clear()
            self._answers[key] = super().matches(ecosystem, name, version)
        return list(self._answers[key])

    def __len__(self) -> int:
        return sum(s["records"] or 0 for s in self.index.sources.values())

    def _candidates(self, ecosystem: str, key: str) -> list[Advisory]:
        if (ecosystem, key) not in self._parsed:
            parsed = (advisory_from_osv(r) for r in self.index.records(ecosystem, key))
            self._parsed[(ecosystem, key)] = [a for a in parsed if a]
        return self._parsed[(ecosystem, key)]

    def exploitation(self, advisory: Advisory) -> tuple[bool | None, float | None]:
        return self.index.exploitation((advisory.id, *advisory.aliases))


# -- loading ----------------------------------------------------------------------------------------


def osv_paths() -> list[Path]:
    """`OX_BB_OSV_PATH` (directories of records and/or all.zip files, or single files, separated by
    the OS path separator); empty when unset (then the synced index is used)."""
    value = os.environ.get("OX_BB_OSV_PATH", "").strip()
    return [Path(p) for p in value.split(os.pathsep) if p]


def index_path(home: Path) -> Path:
    return advisories_home(home) / INDEX_FILE


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


def advisory_digest(paths: Iterable[Path] | None = None, index: Path | None = None) -> str:
    """A short content hash of the advisory set (zip members by their CRCs, so a large all.zip is not
    reread; the synced index by its recorded digest): a new or changed advisory invalidates cached SCA
    results. "none" when there is no data at all. `index`: the synced index file (`index_path(home)`)."""
    paths = list(paths or osv_paths())
    if not paths:
        synced = _synced_index(index)
        return synced.digest if synced else "none"
    digest = hashlib.sha256()
    for source in _sources(paths):
        digest.update(source.name.encode())
        if source.suffix == ".zip":
            with zipfile.ZipFile(source) as archive:
                for info in archive.infolist():
                    digest.update(f"{info.filename}:{info.CRC}:{info.file_size}".encode())
        else:
            digest.update(source.read_bytes())
    return digest.hexdigest()[:12]


def load_database(paths: Iterable[Path] | None = None, index: Path | None = None) -> AdvisoryDatabase:
    """The advisory set at `paths` (default `osv_paths()`), loaded once per content digest; without
    paths, the synced `index` file; without an index, an empty set that evaluates no ecosystem."""
    paths = tuple(Path(p).resolve() for p in (paths or osv_paths()))
    if not paths:
        synced = _synced_index(index)
        if synced:
            return IndexedAdvisories(synced)
        nothing = AdvisoryDatabase([], "none", ecosystems=())
        nothing.source = "index"  # not synced yet: every ecosystem is missing from the (absent) index
        return nothing
    return _load(paths, advisory_digest(paths))


def _synced_index(path: Path | None) -> AdvisoryIndex | None:
    """The index file (under the data home), opened once per build (a sync renames a new file into place)."""
    if path is None:
        return None
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return _open_index(path, stat.st_ino, stat.st_mtime_ns)


@lru_cache(maxsize=4)
def _open_index(path: Path, inode: int, mtime_ns: int) -> AdvisoryIndex:
    return AdvisoryIndex(path)


@lru_cache(maxsize=4)
def _load(paths: tuple[Path, ...], digest: str) -> AdvisoryDatabase:
    advisories, withdrawn, unreadable = [], 0, 0
    for source in _sources(paths):
        for _, parsed in json_documents(source):
            if parsed is None:
                unreadable += 1
                continue
            for record in parsed if isinstance(parsed, list) else [parsed]:
                withdrawn += bool(isinstance(record, dict) and record.get("withdrawn"))
                advisory = advisory_from_osv(record)
                if advisory:
                    advisories.append(advisory)
    return AdvisoryDatabase(advisories, digest, withdrawn, unreadable)
