"""The package ecosystems we understand, as data: OSV spelling, purl type, version ordering, name rules.

Every ecosystem-specific decision of the SCA scanner (how names compare, how versions order,
how a purl is spelled) is looked up here rather than branched on in code.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from packageurl import PackageURL
from univers.versions import (
    ComposerVersion,
    GolangVersion,
    MavenVersion,
    NugetVersion,
    PypiVersion,
    RubygemsVersion,
    SemverVersion,
    Version,
)

# Name rules live with the advisory index, which must key package names the same way.
from ...advisories.ecosystems import name_key, pep503

__all__ = ["ECOSYSTEMS", "display_version", "name_key", "osv_version", "parse_version", "pep503", "purl"]


@dataclass(frozen=True)
class Ecosystem:
    name: str  # OSV spelling
    purl_type: str
    version_class: type[Version]  # the ecosystem's native ordering (PEP 440, Maven, RubyGems, semver…)
    version_prefix: str = ""  # what manifests write before a version and OSV drops (Go's "v")


ECOSYSTEMS: dict[str, Ecosystem] = {
    e.name: e
    for e in (
        Ecosystem("PyPI", "pypi", PypiVersion),
        Ecosystem("npm", "npm", SemverVersion),
        Ecosystem("Maven", "maven", MavenVersion),
        Ecosystem("Go", "golang", GolangVersion, version_prefix="v"),
        Ecosystem("RubyGems", "gem", RubygemsVersion),
        Ecosystem("crates.io", "cargo", SemverVersion),
        Ecosystem("NuGet", "nuget", NugetVersion),
        Ecosystem("Packagist", "composer", ComposerVersion),
    )
}


def osv_version(ecosystem: str, version: str) -> str:
    """A manifest's version in OSV spelling (Go: without the leading "v")."""
    prefix = ECOSYSTEMS[ecosystem].version_prefix if ecosystem in ECOSYSTEMS else ""
    return version[len(prefix) :] if prefix and version.startswith(prefix) else version


def display_version(ecosystem: str, version: str) -> str:
    """An OSV-spelled version as the ecosystem's users write it (Go: with "v")."""
    prefix = ECOSYSTEMS[ecosystem].version_prefix if ecosystem in ECOSYSTEMS else ""
    return prefix + version if prefix and not version.startswith(prefix) else version


@lru_cache(maxsize=65536)
def parse_version(ecosystem: str, text: str) -> Version | None:
    """The version in the ecosystem's native ordering, or None when it does not parse (then no
    range can be judged for it; an exact `versions[]` listing still can)."""
    eco = ECOSYSTEMS.get(ecosystem)
    if eco is None or not text:
        return None
    try:
        return eco.version_class(osv_version(ecosystem, text.strip()))
    except Exception:  # univers raises assorted types on odd input; all mean "unordered"
        return None


def purl(ecosystem: str, name: str, version: str | None) -> str:
    """The package URL of a component (purl spec: Maven group as namespace, npm scope as namespace,
    Go module path split at its last segment and version with "v", PyPI name normalised)."""
    eco = ECOSYSTEMS.get(ecosystem)
    kind = eco.purl_type if eco else ecosystem.lower()
    namespace = None
    if ecosystem == "Maven" and ":" in name:
        namespace, name = name.split(":", 1)
    elif ecosystem in ("npm", "Go", "Packagist") and "/" in name:
        namespace, name = name.rsplit("/", 1)
    elif ecosystem == "PyPI":
        name = pep503(name)
    if version is not None and ecosystem == "Go":
        version = display_version(ecosystem, version)
    return PackageURL(type=kind, namespace=namespace, name=name, version=version).to_string()
