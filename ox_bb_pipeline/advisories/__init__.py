"""Vulnerability data for SCA: OSV's per-ecosystem exports synced into a local index, CVSS
severities, and CISA's Known Exploited Vulnerabilities and FIRST's EPSS scores.

`sync` downloads (conditional, atomic, checked) and rebuilds the index; `status` says what data there
is, how old it is and what is missing. The scanner reads the index through `scanners/sca/osv.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from .ecosystems import ECOSYSTEMS
from .index import INDEX_FILE, AdvisoryIndex
from .settings import SYNC_HINT, advisories_home, max_age_days

__all__ = ["ECOSYSTEMS", "AdvisoryStatus", "status"]


@dataclass
class AdvisoryStatus:
    """What advisory data SCA has: where from, which ecosystems, how old, and what to warn about."""

    source: str  # "OX_BB_OSV_PATH", "index" or "none"
    digest: str = "none"
    ecosystems: dict[str, int] = field(default_factory=dict)  # ecosystem -> records
    built_at: datetime | None = None
    age_days: float | None = None
    known_exploited: bool = False
    epss: bool = False
    warnings: list[str] = field(default_factory=list)

    def missing(self, needed: list[str] | set[str] = ECOSYSTEMS) -> list[str]:
        return sorted(set(needed) - set(self.ecosystems)) if self.source != "OX_BB_OSV_PATH" else []


def status(now: datetime, home: Path, osv_path: str = "") -> AdvisoryStatus:
    """The advisory data SCA would use now, with warnings for no data, stale data and missing feeds."""
    if osv_path:
        return AdvisoryStatus("OX_BB_OSV_PATH", digest="")
    path = advisories_home(home) / INDEX_FILE
    if not path.exists():
        return AdvisoryStatus("none", warnings=[f"no advisory data: SCA is not evaluated; {SYNC_HINT}"])
    index = AdvisoryIndex(path)
    try:
        result = AdvisoryStatus(
            "index",
            index.digest,
            {e: s["records"] or 0 for e, s in index.sources.items()},
            index.built_at,
            known_exploited=index.has_kev,
            epss=index.has_epss,
        )
    finally:
        index.close()
    if result.built_at is not None:
        result.age_days = (now - result.built_at) / timedelta(days=1)
        if result.age_days > max_age_days():
            result.warnings.append(
                f"advisory data is {result.age_days:.0f} days old (more than "
                f"{max_age_days():g}, OX_BB_ADVISORIES_MAX_AGE_DAYS); run `ox-bb advisories sync`"
            )
    missing = result.missing()
    if missing:
        result.warnings.append(
            f"no advisory data for {', '.join(missing)}: manifests of these ecosystems are not evaluated; {SYNC_HINT}"
        )
    if not result.known_exploited:
        result.warnings.append("no CISA KEV data: findings are not marked known-exploited (OX_BB_KEV_URL)")
    if not result.epss:
        result.warnings.append("no EPSS data: findings carry no exploit probability (OX_BB_EPSS_URL)")
    return result
