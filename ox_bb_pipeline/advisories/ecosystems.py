"""The OSV ecosystems we sync and index, and the key two spellings of one package name share."""

from __future__ import annotations

import re


def pep503(name: str) -> str:
    """PyPI's canonical project name: case, `-`, `_` and `.` runs do not distinguish projects."""
    return re.sub(r"[-_.]+", "-", name).lower()


# OSV spelling -> how its package names compare (others compare exactly).
NAME_RULES = {
    "PyPI": pep503,
    "npm": None,
    "Maven": None,
    "Go": None,
    "RubyGems": None,
    "crates.io": None,
    "NuGet": str.lower,
    "Packagist": str.lower,
}
ECOSYSTEMS = tuple(NAME_RULES)


def name_key(ecosystem: str, name: str) -> str:
    rule = NAME_RULES.get(ecosystem)
    return rule(name) if rule else name
