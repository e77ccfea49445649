"""The advisory index: OSV records by (ecosystem, package name key), plus the KEV and EPSS feeds, in
one SQLite file under `OX_BB_HOME/advisories/`. It is built to a temporary file and renamed into place,
so a reader sees either the old index or the new one, never half of one.

Records are stored once (compressed JSON, the newest `modified` wins when an id comes twice) and
keyed by every package they affect; the scanner parses only the few records of the packages it meets.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import sqlite3
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .ecosystems import ECOSYSTEMS, name_key

INDEX_FILE = "index.sqlite"
MAX_RECORD_BYTES = 8 * 1024 * 1024
BATCH = 5000

SCHEMA = """
CREATE TABLE records (id TEXT PRIMARY KEY, modified TEXT NOT NULL, record BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE packages (ecosystem TEXT NOT NULL, name_key TEXT NOT NULL, id TEXT NOT NULL,
                       PRIMARY KEY (ecosystem, name_key, id)) WITHOUT ROWID;
CREATE TABLE sources (ecosystem TEXT PRIMARY KEY, source TEXT, fetched_at TEXT, sha256 TEXT,
                      records INTEGER, withdrawn INTEGER, unreadable INTEGER);
CREATE TABLE known_exploited (cve TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE epss (cve TEXT PRIMARY KEY, score REAL, percentile REAL) WITHOUT ROWID;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
"""


class IntegrityError(ValueError):
    """A download or file that is not what it claims to be (a truncated zip, a broken feed)."""


@dataclass
class ZipCheck:
    members: int = 0
    records: int = 0
    unreadable: int = 0  # members that are not JSON (or too large): counted, never fatal


def check_zip(path: Path) -> ZipCheck:
    """Refuse a zip that is truncated or corrupt (no central directory, a bad CRC); count the
    members that do not parse as JSON."""
    check = ZipCheck()
    try:
        with zipfile.ZipFile(path) as archive:
            for data in _members(archive, check):
                try:
                    json.loads(data)
                    check.records += 1
                except (ValueError, RecursionError):
                    check.unreadable += 1
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, zlib.error) as exc:
        raise IntegrityError(f"not a valid zip archive ({exc}): incomplete or corrupt") from exc
    return check


def _members(archive: zipfile.ZipFile, check: ZipCheck | None = None) -> Iterator[bytes]:
    for info in archive.infolist():
        if info.is_dir():
            continue
        if check is not None:
            check.members += 1
        if not info.filename.endswith(".json") or info.file_size > MAX_RECORD_BYTES:
            if check is not None:
                check.unreadable += 1
            continue
        with archive.open(info) as member:  # reading checks the CRC: a corrupt member raises BadZipFile
            data = member.read(MAX_RECORD_BYTES + 1)  # the header's size may lie
        if len(data) > MAX_RECORD_BYTES:
            if check is not None:
                check.unreadable += 1
            continue
        yield data


def raw_records(path: Path) -> Iterator[bytes]:
    """The JSON documents of an OSV source: an all.zip, a folder of records (and zips), or one file."""
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.suffix in (".json", ".zip") and p.is_file()):
            yield from raw_records(child)
    elif path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            yield from _members(archive)
    elif path.stat().st_size <= MAX_RECORD_BYTES:
        yield path.read_bytes()


def json_documents(path: Path) -> Iterator[tuple[bytes, object]]:
    """Each JSON document of an OSV source with its parsed value (None where it does not parse)."""
    for data in raw_records(path):
        try:
            yield data, json.loads(data)
        except (ValueError, RecursionError):
            yield data, None


# -- feeds --------------------------------------------------------------------------------------------


def parse_kev(data: bytes) -> set[str]:
    """CVE ids of CISA's Known Exploited Vulnerabilities catalogue (JSON, `vulnerabilities[].cveID`)."""
    try:
        body = json.loads(data)
        return {str(v["cveID"]).upper() for v in body["vulnerabilities"] if v.get("cveID")}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IntegrityError(f"the KEV feed is not CISA's catalogue JSON ({exc})") from exc


def parse_epss(data: bytes) -> dict[str, tuple[float, float | None]]:
    """FIRST's EPSS scores (CSV, gzipped or not; a `#model_version…` comment line, then
    `cve,epss,percentile`): CVE id -> (probability, percentile)."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise IntegrityError(f"the EPSS feed is a truncated gzip file ({exc})") from exc
    lines = [line for line in data.decode("utf-8", "replace").splitlines() if line and not line.startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    if not reader.fieldnames or not {"cve", "epss"} <= set(reader.fieldnames):
        raise IntegrityError(f"the EPSS feed has no cve,epss header (got {reader.fieldnames})")
    scores = {}
    for row in reader:
        try:
            percentile = float(row["percentile"]) if row.get("percentile") else None
            scores[row["cve"].upper()] = (float(row["epss"]), percentile)
        except (ValueError, AttributeError):
            continue  # a malformed row costs that row only
    return scores


# -- build --------------------------------------------------------------------------------------------


@dataclass
class Source:
    """One OSV source to index: an ecosystem's all.zip (or a folder), with where it came from."""

    ecosystem: str
    path: Path
    origin: str = ""  # the URL or path it came from
    fetched_at: str = ""
    sha256: str = ""


@dataclass
class IndexSummary:
    path: Path
    digest: str
    records: dict[str, int] = field(default_factory=dict)  # per ecosystem
    withdrawn: int = 0
    unreadable: int = 0
    known_exploited: int | None = None
    epss: int | None = None


def build_index(
    sources: Iterable[Source],
    target: Path,
    *,
    kev: bytes | None = None,
    epss: bytes | None = None,
    built_at: datetime | None = None,
) -> IndexSummary:
    """Index `sources` (and the feeds, when given) into a new file, then rename it over `target`."""
    sources = list(sources)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".index-", suffix=".sqlite", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    summary = IndexSummary(target, "")
    try:
        con = sqlite3.connect(tmp)
        con.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + SCHEMA)
        for source in sources:
            count = _index_source(con, source, summary)
            summary.records[source.ecosystem] = summary.records.get(source.ecosystem, 0) + count
            digest.update(f"{source.ecosystem}:{source.sha256 or _sha256(source.path)}\n".encode())
        if kev is not None:
            cves = parse_kev(kev)
            con.executemany("INSERT OR IGNORE INTO known_exploited VALUES (?)", ((c,) for c in cves))
            summary.known_exploited = len(cves)
            digest.update(b"kev:" + hashlib.sha256(kev).digest())
        if epss is not None:
            scores = parse_epss(epss)
            con.executemany("INSERT OR REPLACE INTO epss VALUES (?, ?, ?)", ((c, s, p) for c, (s, p) in scores.items()))
            summary.epss = len(scores)
            digest.update(b"epss:" + hashlib.sha256(epss).digest())
        summary.digest = digest.hexdigest()[:12]
        meta = {
            "digest": summary.digest,
            "built_at": (built_at or datetime.now(UTC)).isoformat(),
            "kev": "" if kev is None else "1",
            "epss": "" if epss is None else "1",
        }
        con.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        con.commit()
        con.close()
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return summary


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    for data in raw_records(path) if path.is_dir() else [path.read_bytes()]:
        digest.update(data)
    return digest.hexdigest()


def _index_source(con: sqlite3.Connection, source: Source, summary: IndexSummary) -> int:
    count, withdrawn, unreadable, records, packages = 0, 0, 0, [], []

    def flush():
        con.executemany(
            """INSERT INTO records VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE
                           SET modified = excluded.modified, record = excluded.record
                           WHERE excluded.modified > records.modified""",
            records,
        )
        con.executemany("INSERT OR IGNORE INTO packages VALUES (?, ?, ?)", packages)
        records.clear()
        packages.clear()

    for data, parsed in json_documents(source.path):
        if parsed is None:
            unreadable += 1
            continue
        for record in parsed if isinstance(parsed, list) else [parsed]:
            if not isinstance(record, dict) or not record.get("id"):
                unreadable += 1
                continue
            if record.get("withdrawn"):
                withdrawn += 1
                continue
            keys = {
                (p.get("ecosystem"), name_key(p["ecosystem"], p["name"]))
                for a in record.get("affected") or []
                if isinstance(a, dict)
                for p in [a.get("package") or {}]
                if p.get("ecosystem") in ECOSYSTEMS and p.get("name")
            }
            if not keys:
                continue
            count += 1
            text = data if not isinstance(parsed, list) else json.dumps(record).encode()
            records.append((record["id"], str(record.get("modified", "")), zlib.compress(text, 6)))
            packages += [(eco, key, record["id"]) for eco, key in keys]
            if len(records) >= BATCH:
                flush()
    flush()
    con.execute(
        "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            source.ecosystem,
            source.origin or str(source.path),
            source.fetched_at,
            source.sha256,
            count,
            withdrawn,
            unreadable,
        ),
    )
    summary.withdrawn += withdrawn
    summary.unreadable += unreadable
    return count


# -- lookups ------------------------------------------------------------------------------------------


class AdvisoryIndex:
    """Read-only lookups in a built index (thread-safe)."""

    def __init__(self, path: Path) -> None:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no advisory index at {path}")
        self.path = Path(path)
        self._con = sqlite3.connect(f"file:{self.path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        meta = dict(self._query("SELECT key, value FROM meta"))
        self.digest = meta.get("digest", "")
        self.built_at = datetime.fromisoformat(meta["built_at"]) if meta.get("built_at") else None
        self.has_kev, self.has_epss = bool(meta.get("kev")), bool(meta.get("epss"))
        self.sources = {
            row[0]: {"source": row[1], "fetched_at": row[2], "records": row[3]}
            for row in self._query("SELECT ecosystem, source, fetched_at, records FROM sources")
        }

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._con.execute(sql, params).fetchall()

    @property
    def ecosystems(self) -> set[str]:
        """The ecosystems with advisory data (an empty export still counts: it was evaluated)."""
        return set(self.sources)

    def records(self, ecosystem: str, name: str) -> list[dict]:
        """The OSV records affecting this package (any version), in id order."""
        rows = self._query(
            """SELECT r.record FROM packages p JOIN records r USING (id)
                              WHERE p.ecosystem = ? AND p.name_key = ? ORDER BY r.id""",
            (ecosystem, name_key(ecosystem, name)),
        )
        return [json.loads(zlib.decompress(blob)) for (blob,) in rows]

    def exploitation(self, ids: Iterable[str]) -> tuple[bool | None, float | None]:
        """(known exploited, highest EPSS) over the CVE ids among `ids`; None where the feed is missing."""
        cves = sorted({i.upper() for i in ids if i.upper().startswith("CVE-")})
        marks = ",".join("?" * len(cves))
        known = None
        if self.has_kev:
            known = bool(cves) and bool(
                self._query(f"SELECT 1 FROM known_exploited WHERE cve IN ({marks})", tuple(cves))
            )
        epss = None
        if self.has_epss and cves:
            (epss,) = self._query(f"SELECT max(score) FROM epss WHERE cve IN ({marks})", tuple(cves))[0]
        return known, epss

    def close(self) -> None:
        self._con.close()
