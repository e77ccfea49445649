"""Where advisory data comes from and lives: the OSV bucket (or a mirror), the KEV and EPSS feeds,
`<data home>/advisories/`, and how old the data may get before it is a warning."""

from __future__ import annotations

import os
from pathlib import Path

OSV_BUCKET = "https://osv-vulnerabilities.storage.googleapis.com"
KEV_URL = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
EPSS_URL = "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz"
DEFAULT_MAX_AGE_DAYS = 7.0
SYNC_HINT = "run `ox-bb advisories sync` (or point OX_BB_OSV_PATH at OSV records)"


def advisories_home(home: Path) -> Path:
    return home / "advisories"


def osv_mirror() -> str:
    """The base URL holding `<Ecosystem>/all.zip` (OSV's public bucket unless `OX_BB_OSV_MIRROR`)."""
    return (os.environ.get("OX_BB_OSV_MIRROR", "").strip() or OSV_BUCKET).rstrip("/")


def kev_url() -> str:
    return os.environ.get("OX_BB_KEV_URL", "").strip() or KEV_URL


def epss_url() -> str:
    return os.environ.get("OX_BB_EPSS_URL", "").strip() or EPSS_URL


def max_age_days() -> float:
    """`OX_BB_ADVISORIES_MAX_AGE_DAYS` (default 7): older advisory data is reported as stale."""
    raw = os.environ.get("OX_BB_ADVISORIES_MAX_AGE_DAYS", "").strip()
    if not raw:
        return DEFAULT_MAX_AGE_DAYS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ValueError(f"OX_BB_ADVISORIES_MAX_AGE_DAYS must be a positive number of days, not {raw!r}")
    return value
