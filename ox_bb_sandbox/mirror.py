"""The sandbox's vulnerability-data mirror, in the shapes of the real feeds, built from its own
advisory set (`advisories/*.json`): OSV's bucket (`/osv/<Ecosystem>/all.zip`, with ETag,
Last-Modified and 304s), CISA's KEV catalogue (`/kev/known_exploited_vulnerabilities.json`) and
FIRST's EPSS scores (`/epss/epss_scores-current.csv.gz`).

Records can be replaced at run time (`POST /_sandbox/advisories`), so a test can change the data
and watch a re-sync pick it up; faults (`/_sandbox/faults`, e.g. `truncate` on `/osv/*`) apply here too.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import threading
import zipfile
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from werkzeug.wrappers import Request, Response

from .content import advisories_dir

OSV_PREFIX = "/osv/"
KEV_PATH = "/kev/known_exploited_vulnerabilities.json"
EPSS_PATH = "/epss/epss_scores-current.csv.gz"
# Which of the set's CVEs the feeds call exploited / likely exploited (both are in CISA's real catalogue).
KNOWN_EXPLOITED = ("CVE-2021-44228", "CVE-2022-22965")
EPSS_SCORES = {
    "CVE-2021-44228": 0.94358,
    "CVE-2022-22965": 0.94468,
    "CVE-2022-42889": 0.93898,
    "CVE-2021-44906": 0.01042,
}
EPSS_DEFAULT = 0.00043
# OSV's bucket has an export for every ecosystem, empty or not; so has the mirror, for these.
ECOSYSTEMS = ("PyPI", "npm", "Maven", "Go", "RubyGems", "crates.io", "NuGet", "Packagist")


def _modified(record: dict) -> datetime:
    try:
        return datetime.fromisoformat(str(record.get("modified", "")).replace("Z", "+00:00"))
    except ValueError:
        return datetime(2026, 1, 1, tzinfo=UTC)


class AdvisoryMirror:
    """The advisory set and the files built from it (rebuilt when a record changes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        files = sorted(advisories_dir().glob("*.json"))
        self.records = {r["id"]: r for r in (json.loads(p.read_text()) for p in files)}
        self._built: dict[str, tuple[bytes, str, datetime]] = {}

    def put(self, record: dict) -> None:
        if not isinstance(record, dict) or not record.get("id") or not isinstance(record.get("affected"), list):
            raise ValueError("an OSV record needs an id and an affected list")
        with self._lock:
            self.records[record["id"]] = record
            self._built.clear()

    def ecosystems(self, record: dict) -> set[str]:
        return {a.get("package", {}).get("ecosystem") for a in record.get("affected") or [] if isinstance(a, dict)}

    def file(self, name: str) -> tuple[bytes, str, datetime] | None:
        """(body, ETag, Last-Modified) of a served file; None if there is no such file."""
        with self._lock:
            if name not in self._built:
                built = self._build(name)
                if built is None:
                    return None
                body, modified = built
                self._built[name] = (body, f'"{hashlib.sha256(body).hexdigest()[:32]}"', modified)
            return self._built[name]

    def _build(self, name: str) -> tuple[bytes, datetime] | None:
        records = sorted(self.records.values(), key=lambda r: r["id"])
        newest = max((_modified(r) for r in records), default=datetime(2026, 1, 1, tzinfo=UTC))
        if name == KEV_PATH:
            cves = sorted({a for r in records for a in r.get("aliases") or [] if a in KNOWN_EXPLOITED})
            body = {
                "title": "CISA Catalog of Known Exploited Vulnerabilities (sandbox)",
                "catalogVersion": "sandbox",
                "count": len(cves),
                "vulnerabilities": [{"cveID": c, "vendorProject": "sandbox"} for c in cves],
            }
            return json.dumps(body, indent=1).encode(), newest
        if name == EPSS_PATH:
            cves = sorted({a for r in records for a in r.get("aliases") or [] if a.startswith("CVE-")})
            lines = ["#model_version:v2025.03.14,score_date:2026-11-01T00:00:00+0000", "cve,epss,percentile"]
            lines += [
                f"{c},{EPSS_SCORES.get(c, EPSS_DEFAULT):.5f},{0.999 if c in EPSS_SCORES else 0.1:.5f}" for c in cves
            ]
            return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0), newest
        if name.startswith(OSV_PREFIX) and name.endswith("/all.zip"):
            ecosystem = name[len(OSV_PREFIX) : -len("/all.zip")]
            chosen = [r for r in records if ecosystem in self.ecosystems(r)]
            if not chosen and ecosystem not in ECOSYSTEMS:
                return None
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for record in chosen:  # fixed member times: the same records make the same bytes (and ETag)
                    info = zipfile.ZipInfo(f"{record['id']}.json", date_time=(2026, 1, 1, 0, 0, 0))
                    info.compress_type = zipfile.ZIP_DEFLATED
                    archive.writestr(info, json.dumps(record, indent=2, sort_keys=True))
            return buffer.getvalue(), max((_modified(r) for r in chosen), default=newest)
        return None


def mirror_handler(app, request: Request) -> Response:
    """Serve a mirror file with conditional-request support."""
    found = app.mirror.file(request.path)
    if found is None:
        return Response("<Error><Code>NoSuchKey</Code></Error>", status=404, mimetype="application/xml")
    body, etag, modified = found
    headers = {"ETag": etag, "Last-Modified": format_datetime(modified.astimezone(UTC), usegmt=True)}
    if request.headers.get("If-None-Match") == etag or _not_modified_since(request, modified):
        return Response(status=304, headers=headers)
    mimetype = {".zip": "application/zip", ".json": "application/json"}.get(
        request.path[request.path.rfind(".") :], "application/gzip"
    )
    return Response(body, status=200, mimetype=mimetype, headers=headers)


def _not_modified_since(request: Request, modified: datetime) -> bool:
    if request.headers.get("If-None-Match"):  # an ETag given takes precedence (RFC 9110 13.2.2)
        return False
    since = request.headers.get("If-Modified-Since")
    try:
        return bool(since) and modified.replace(microsecond=0) <= parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
