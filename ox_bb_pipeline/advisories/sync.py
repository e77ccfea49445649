"""`ox-bb advisories sync`: download OSV's per-ecosystem exports and the KEV / EPSS feeds into
`OX_BB_HOME/advisories/`, then rebuild the index.

Every download is conditional (If-None-Match / If-Modified-Since from the last answer), written to a
temporary file, checked (a zip must open and pass its CRCs; a feed must parse) and only then renamed
over the previous copy: a truncated or corrupt download is refused and the old data and index stay.
A missing KEV or EPSS feed is a warning; the OSV data is what SCA needs.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from ..clock import Clock, SystemClock
from ..files import atomic_write_text
from .ecosystems import ECOSYSTEMS
from .index import INDEX_FILE, IndexSummary, IntegrityError, Source, build_index, check_zip, parse_epss, parse_kev
from .settings import advisories_home, epss_url, kev_url, osv_mirror

CHUNK = 1 << 16
TIMEOUT = (10, 120)  # connect, read (seconds)


@dataclass
class Fetch:
    """What happened to one download."""

    name: str  # an ecosystem, or "KEV" / "EPSS"
    url: str
    outcome: str  # downloaded | not_modified | refused | failed
    bytes: int = 0
    detail: str = ""


@dataclass
class SyncReport:
    fetches: list[Fetch] = field(default_factory=list)
    index: IndexSummary | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Fetch]:
        """OSV downloads that were refused or failed (feeds only warn)."""
        return [f for f in self.fetches if f.name in ECOSYSTEMS and f.outcome in ("refused", "failed")]


def osv_zip(home: Path, ecosystem: str) -> Path:
    return home / "osv" / ecosystem / "all.zip"


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".meta.json")


def read_meta(path: Path) -> dict:
    try:
        return json.loads(_meta_path(path).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def fetch(
    session: requests.Session,
    name: str,
    url: str,
    dest: Path,
    check: Callable[[Path], object],
    clock: Clock,
    progress=None,
) -> Fetch:
    """Download `url` to `dest` if it changed since the last download; `check(tmp)` must pass first."""
    meta = read_meta(dest) if dest.exists() else {}
    headers = {}
    if meta.get("etag"):
        headers["If-None-Match"] = meta["etag"]
    if meta.get("last_modified"):
        headers["If-Modified-Since"] = meta["last_modified"]
    try:
        response = session.get(url, headers=headers, stream=True, timeout=TIMEOUT)
    except requests.RequestException as exc:
        return Fetch(name, url, "failed", detail=f"{type(exc).__name__}: {exc}")
    with response:
        if response.status_code == 304:
            return Fetch(name, url, "not_modified")
        if response.status_code != 200:
            return Fetch(name, url, "failed", detail=f"HTTP {response.status_code} from {url}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}-", suffix=".part", dir=dest.parent)
        tmp = Path(tmp_name)
        try:
            digest, size = hashlib.sha256(), 0
            expected = response.headers.get("Content-Length") if "Content-Encoding" not in response.headers else None
            task = progress.add_task(name, total=int(expected) if expected else None) if progress else None
            with os.fdopen(fd, "wb") as out:
                for chunk in response.iter_content(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    if task is not None:
                        progress.update(task, advance=len(chunk))
            if expected and int(expected) != size:
                raise IntegrityError(f"received {size} of {expected} bytes")
            check(tmp)
        except (IntegrityError, requests.RequestException, OSError) as exc:
            tmp.unlink(missing_ok=True)
            kept = " (the previous copy is kept)" if dest.exists() else ""
            return Fetch(name, url, "refused", size, f"{url}: {exc}{kept}")
        os.replace(tmp, dest)
        atomic_write_text(
            _meta_path(dest),
            json.dumps(
                {
                    "url": url,
                    "etag": response.headers.get("ETag"),
                    "last_modified": response.headers.get("Last-Modified"),
                    "fetched_at": clock.now().isoformat(),
                    "sha256": digest.hexdigest(),
                    "bytes": size,
                }
            ),
        )
        return Fetch(name, url, "downloaded", size)


def _check_feed(parse: Callable[[bytes], object]) -> Callable[[Path], object]:
    return lambda path: parse(path.read_bytes())


def sync(
    ecosystems: Iterable[str] | None = None,
    *,
    home: Path,
    mirror: str | None = None,
    kev: str | None = None,
    epss: str | None = None,
    session: requests.Session | None = None,
    clock: Clock | None = None,
    show_progress: bool = False,
) -> SyncReport:
    """Bring the OSV exports of `ecosystems` (default: all we understand) and the feeds up to date,
    and rebuild the index when anything changed. Never raises for a download problem: see the report."""
    root = advisories_home(home)
    clock = clock or SystemClock()
    session = session or requests.Session()
    wanted = list(ecosystems or ECOSYSTEMS)
    unknown = [e for e in wanted if e not in ECOSYSTEMS]
    if unknown:
        raise ValueError(f"unknown ecosystem(s) {', '.join(unknown)}; use OSV's spelling: {', '.join(ECOSYSTEMS)}")
    base = (mirror or osv_mirror()).rstrip("/")
    feeds = {
        "KEV": (kev or kev_url(), root / "feeds" / "kev.json", parse_kev),
        "EPSS": (epss or epss_url(), root / "feeds" / "epss.csv", parse_epss),
    }
    report = SyncReport()
    with _progress(show_progress) as progress:
        for ecosystem in wanted:
            report.fetches.append(
                fetch(
                    session,
                    ecosystem,
                    f"{base}/{ecosystem}/all.zip",
                    osv_zip(root, ecosystem),
                    check_zip,
                    clock,
                    progress,
                )
            )
        for name, (url, dest, parse) in feeds.items():
            result = fetch(session, name, url, dest, _check_feed(parse), clock, progress)
            report.fetches.append(result)
            if result.outcome in ("refused", "failed"):
                report.warnings.append(f"{name} feed not updated: {result.detail}")
    for result in report.failed:
        report.warnings.append(f"{result.name}: {result.outcome}: {result.detail}")
    changed = any(f.outcome == "downloaded" for f in report.fetches)
    if changed or not (root / INDEX_FILE).exists():
        report.index = rebuild_index(root, clock)
    return report


def rebuild_index(root: Path, clock: Clock | None = None) -> IndexSummary:
    """The index of every export and feed stored under `root` (whichever ecosystems were synced)."""
    sources = []
    for ecosystem in ECOSYSTEMS:
        path = osv_zip(root, ecosystem)
        if path.exists():
            meta = read_meta(path)
            sources.append(
                Source(ecosystem, path, meta.get("url", ""), meta.get("fetched_at", ""), meta.get("sha256", ""))
            )
    feed = {
        name: (root / "feeds" / name).read_bytes() if (root / "feeds" / name).exists() else None
        for name in ("kev.json", "epss.csv")
    }
    return build_index(
        sources, root / INDEX_FILE, kev=feed["kev.json"], epss=feed["epss.csv"], built_at=(clock or SystemClock()).now()
    )


class _progress:
    """A rich progress bar on the terminal (nothing when not wanted)."""

    def __init__(self, show: bool) -> None:
        self.show = show
        self.bar = None

    def __enter__(self):
        if not self.show:
            return None
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        self.bar = Progress(TextColumn("{task.description:>10}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
        self.bar.start()
        return self.bar

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
